-- Rules version 5: a record names its payroll platform (health.Record.Item),
-- '' until the rebuild that the new rules version triggers derives it from
-- the log.
ALTER TABLE records ADD COLUMN item TEXT NOT NULL DEFAULT '';
-- ListHealth's item filter, in page order.
CREATE INDEX records_item ON records (item, account_id);

-- Per item, its records by state (a column per health.State from
-- CONNECTING), and per item and minute, how many of its records began an
-- incident in a provider-side or login error (AUTH_FAILED 3, DEGRADED 5)
-- (store.ItemSignals): a move into one of those from another state, unless
-- the record's incident was already in one (incident_state, as after a
-- failed retry through CONNECTING), so that one account trying again and
-- again counts once. The minute is the account object's time when the
-- delivery carried it (snapshot_received_at = last_event_at), else its
-- arrival (state_since), whichever is earlier: a backfill or a fetch of
-- accounts long in error is no burst of failures.
-- A trigger keeps both in the statement that writes a record, as
-- record_counts (0006), so they commit with it whoever writes; a minute
-- older than store.ItemFailureRetention (48 h, 2880 minutes) before the
-- newest of its item is pruned as the item's next one is counted, so an
-- item keeps at most that many rows.
CREATE TABLE item_counts (
	item         TEXT   PRIMARY KEY,
	connecting   BIGINT NOT NULL,
	healthy      BIGINT NOT NULL,
	auth_failed  BIGINT NOT NULL,
	disconnected BIGINT NOT NULL,
	degraded     BIGINT NOT NULL,
	removed      BIGINT NOT NULL
);
CREATE TABLE item_failures (
	item   TEXT   NOT NULL,
	minute BIGINT NOT NULL, -- Unix minutes
	n      BIGINT NOT NULL,
	PRIMARY KEY (item, minute)
);

-- A list reads the history of the items failing now only, and a page of
-- the quiet items in their order (store.QuietItems).
CREATE INDEX item_failures_minute ON item_failures (minute);
CREATE INDEX item_counts_failing ON item_counts ((auth_failed + disconnected + degraded) DESC, item);

-- Record writers hold the append lock (see the driver's Ingest), as for
-- count_records.
CREATE FUNCTION count_item_records() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	bucket BIGINT;
BEGIN
	IF TG_OP <> 'INSERT' AND OLD.item <> '' THEN
		UPDATE item_counts SET
			connecting = connecting - (OLD.state = 1)::int, healthy = healthy - (OLD.state = 2)::int,
			auth_failed = auth_failed - (OLD.state = 3)::int, disconnected = disconnected - (OLD.state = 4)::int,
			degraded = degraded - (OLD.state = 5)::int, removed = removed - (OLD.state = 6)::int
			WHERE item = OLD.item;
	END IF;
	IF TG_OP = 'DELETE' OR NEW.item = '' THEN
		RETURN NULL;
	END IF;
	INSERT INTO item_counts AS c (item, connecting, healthy, auth_failed, disconnected, degraded, removed)
		VALUES (NEW.item, (NEW.state = 1)::int, (NEW.state = 2)::int, (NEW.state = 3)::int,
			(NEW.state = 4)::int, (NEW.state = 5)::int, (NEW.state = 6)::int)
		ON CONFLICT (item) DO UPDATE SET
			connecting = c.connecting + excluded.connecting, healthy = c.healthy + excluded.healthy,
			auth_failed = c.auth_failed + excluded.auth_failed, disconnected = c.disconnected + excluded.disconnected,
			degraded = c.degraded + excluded.degraded, removed = c.removed + excluded.removed;
	IF NEW.state IN (3, 5) AND NEW.state_since IS NOT NULL AND (TG_OP = 'INSERT' OR (OLD.state NOT IN (3, 5) AND OLD.incident_state NOT IN (3, 5))) THEN
		bucket := div(LEAST(CASE WHEN NEW.snapshot_received_at = NEW.last_event_at THEN NEW.snapshot_at END, NEW.state_since), 60000000000);
		INSERT INTO item_failures AS f (item, minute, n) VALUES (NEW.item, bucket, 1)
			ON CONFLICT (item, minute) DO UPDATE SET n = f.n + 1;
		DELETE FROM item_failures f WHERE f.item = NEW.item AND f.minute < bucket - 2880;
	END IF;
	RETURN NULL;
END
$$;
-- Records that name no item (rules of before, no account object yet) cost
-- no call.
CREATE TRIGGER records_item_counted_insert AFTER INSERT ON records
	FOR EACH ROW WHEN (NEW.item <> '') EXECUTE FUNCTION count_item_records();
CREATE TRIGGER records_item_counted_delete AFTER DELETE ON records
	FOR EACH ROW WHEN (OLD.item <> '') EXECUTE FUNCTION count_item_records();
CREATE TRIGGER records_item_counted_update AFTER UPDATE OF state, item ON records
	FOR EACH ROW WHEN ((OLD.state <> NEW.state OR OLD.item <> NEW.item) AND (OLD.item <> '' OR NEW.item <> ''))
	EXECUTE FUNCTION count_item_records();

-- The newest items.updated of each item (health.ItemReport), by arrival.
CREATE TABLE item_reports (
	item        TEXT   PRIMARY KEY,
	name        TEXT   NOT NULL,
	status      TEXT   NOT NULL,
	details     TEXT   NOT NULL,
	received_at BIGINT
);

-- Item outages: whether the log last told an item in an outage (the last
-- items.outage_* entry that changed it, health.ItemOutage), which records
-- were told so (health.Record.ItemOutage: their remedy is to wait), and
-- the item of each change (the account's, or that of an item-wide one),
-- which streams filter on. '' and false for the changes and records of
-- before, as under the rules of before.
ALTER TABLE records ADD COLUMN item_outage BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE changes ADD COLUMN item TEXT NOT NULL DEFAULT '';
CREATE TABLE item_outages (
	item       TEXT    PRIMARY KEY,
	in_outage  BOOLEAN NOT NULL,
	status     INTEGER NOT NULL,
	since      BIGINT,
	changed_at BIGINT
);
