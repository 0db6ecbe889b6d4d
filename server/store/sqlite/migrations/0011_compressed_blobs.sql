-- Delivery bodies and account objects are kept zstd-compressed where that
-- saves bytes (sqlstore's blob codec): how each value is stored, 0 as
-- given, 1 zstd. Rows of before stay as given and read back as they were.
ALTER TABLE entries ADD COLUMN body_codec INTEGER NOT NULL DEFAULT 0;
ALTER TABLE records ADD COLUMN snapshot_codec INTEGER NOT NULL DEFAULT 0;
