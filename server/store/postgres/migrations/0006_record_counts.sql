-- Summary (and /metrics) read these counts instead of counting every
-- record: how many records are in each state with each current error code
-- ('' for none). A trigger keeps them in the statement that writes a
-- record, so they commit with it whoever writes (ingest, confirmation,
-- rebuild), and a read is a few rows. A pair whose records are all gone
-- keeps its row at 0: pairs are few (states times the provider's error
-- codes).
CREATE TABLE record_counts (
	state      INTEGER NOT NULL,
	error_code TEXT    NOT NULL,
	n          BIGINT  NOT NULL,
	PRIMARY KEY (state, error_code)
);
INSERT INTO record_counts (state, error_code, n)
	SELECT state, error_code, COUNT(*) FROM records GROUP BY state, error_code;

-- Record writers hold the append lock (see the driver's Ingest), so they
-- do not race here; should two ever run at once, each touches its rows in
-- key order, in one statement, and n = n + delta loses no update.
CREATE FUNCTION count_records() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO record_counts AS c (state, error_code, n)
	SELECT d.state, d.error_code, SUM(d.delta) FROM (
		SELECT OLD.state, OLD.error_code, -1 WHERE TG_OP <> 'INSERT'
		UNION ALL
		SELECT NEW.state, NEW.error_code, 1 WHERE TG_OP <> 'DELETE'
	) AS d (state, error_code, delta)
	GROUP BY d.state, d.error_code ORDER BY d.state, d.error_code
	ON CONFLICT (state, error_code) DO UPDATE SET n = c.n + excluded.n;
	RETURN NULL;
END
$$;
CREATE TRIGGER records_counted AFTER INSERT OR DELETE ON records
	FOR EACH ROW EXECUTE FUNCTION count_records();
CREATE TRIGGER records_counted_update AFTER UPDATE OF state, error_code ON records
	FOR EACH ROW WHEN (OLD.state <> NEW.state OR OLD.error_code <> NEW.error_code)
	EXECUTE FUNCTION count_records();
