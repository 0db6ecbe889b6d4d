-- Rules version 6: the freshness of HEALTHY accounts' data
-- (health.Record.Freshness, its since, and the verdicts it follows from:
-- failed datasets, a comma-separated list; refresh disabled; the last scan;
-- stale since; fresh as of). 0, '' and NULL until the rebuild that the new
-- rules version triggers derives them from the log.
ALTER TABLE records ADD COLUMN freshness INTEGER NOT NULL DEFAULT 0;
ALTER TABLE records ADD COLUMN freshness_since INTEGER;
ALTER TABLE records ADD COLUMN failed_datasets TEXT NOT NULL DEFAULT '';
ALTER TABLE records ADD COLUMN refresh_disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE records ADD COLUMN scanned_at INTEGER;
ALTER TABLE records ADD COLUMN stale_since INTEGER;
ALTER TABLE records ADD COLUMN fresh_as_of INTEGER;
-- The staleness sweeper reads the HEALTHY records not judged stale, the
-- oldest data first (store.StaleCandidates).
CREATE INDEX records_fresh_as_of ON records (fresh_as_of) WHERE fresh_as_of IS NOT NULL;
-- ListHealth's freshness filter for the problems (STALE and after), which
-- are few: the query states the index's condition when it asks for those.
CREATE INDEX records_freshness ON records (freshness, account_id) WHERE freshness >= 2;

-- A change carries the account's freshness after it, and before it (which
-- differ for freshness events only), as under the rules of before: 0.
ALTER TABLE changes ADD COLUMN freshness INTEGER NOT NULL DEFAULT 0;
ALTER TABLE changes ADD COLUMN previous_freshness INTEGER NOT NULL DEFAULT 0;
ALTER TABLE changes ADD COLUMN failed_datasets TEXT NOT NULL DEFAULT '';

-- Summary reads the records by freshness from counts that triggers keep,
-- as record_counts (0006).
CREATE TABLE freshness_counts (
	freshness INTEGER PRIMARY KEY,
	n         INTEGER NOT NULL
) STRICT;
INSERT INTO freshness_counts (freshness, n) SELECT freshness, COUNT(*) FROM records GROUP BY freshness;
CREATE TRIGGER records_freshness_counted_insert AFTER INSERT ON records BEGIN
	INSERT INTO freshness_counts (freshness, n) VALUES (NEW.freshness, 1)
		ON CONFLICT (freshness) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER records_freshness_counted_delete AFTER DELETE ON records BEGIN
	UPDATE freshness_counts SET n = n - 1 WHERE freshness = OLD.freshness;
END;
CREATE TRIGGER records_freshness_counted_update AFTER UPDATE OF freshness ON records
	WHEN OLD.freshness <> NEW.freshness BEGIN
	UPDATE freshness_counts SET n = n - 1 WHERE freshness = OLD.freshness;
	INSERT INTO freshness_counts (freshness, n) VALUES (NEW.freshness, 1)
		ON CONFLICT (freshness) DO UPDATE SET n = n + 1;
END;
