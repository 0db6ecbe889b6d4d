-- Summary (and /metrics) read these counts instead of counting every
-- record: how many records are in each state with each current error code
-- ('' for none). Triggers keep them in the statement that writes a record,
-- so they commit with it whoever writes (ingest, confirmation, rebuild),
-- and a read is a few rows. A pair whose records are all gone keeps its row
-- at 0: pairs are few (states times the provider's error codes).
CREATE TABLE record_counts (
	state      INTEGER NOT NULL,
	error_code TEXT    NOT NULL,
	n          INTEGER NOT NULL,
	PRIMARY KEY (state, error_code)
) STRICT;
INSERT INTO record_counts (state, error_code, n)
	SELECT state, error_code, COUNT(*) FROM records GROUP BY state, error_code;

CREATE TRIGGER records_counted_insert AFTER INSERT ON records BEGIN
	INSERT INTO record_counts (state, error_code, n) VALUES (NEW.state, NEW.error_code, 1)
		ON CONFLICT (state, error_code) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER records_counted_delete AFTER DELETE ON records BEGIN
	UPDATE record_counts SET n = n - 1 WHERE state = OLD.state AND error_code = OLD.error_code;
END;
CREATE TRIGGER records_counted_update AFTER UPDATE OF state, error_code ON records
	WHEN OLD.state <> NEW.state OR OLD.error_code <> NEW.error_code BEGIN
	UPDATE record_counts SET n = n - 1 WHERE state = OLD.state AND error_code = OLD.error_code;
	INSERT INTO record_counts (state, error_code, n) VALUES (NEW.state, NEW.error_code, 1)
		ON CONFLICT (state, error_code) DO UPDATE SET n = n + 1;
END;
