-- Rules version 3: when the account object was last seen
-- (health.Record.ConfirmedAt). Unknown for records of before: NULL, until
-- the rebuild that the new rules version triggers derives it from the log.
ALTER TABLE records ADD COLUMN confirmed_at INTEGER;

