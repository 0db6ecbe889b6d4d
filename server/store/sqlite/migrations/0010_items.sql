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
-- Triggers keep both in the statement that writes a record, as
-- record_counts (0006), so they commit with it whoever writes; a minute
-- older than store.ItemFailureRetention (48 h, 2880 minutes) before the
-- newest of its item is pruned as the item's next one is counted, so an
-- item keeps at most that many rows.
CREATE TABLE item_counts (
	item         TEXT    PRIMARY KEY,
	connecting   INTEGER NOT NULL,
	healthy      INTEGER NOT NULL,
	auth_failed  INTEGER NOT NULL,
	disconnected INTEGER NOT NULL,
	degraded     INTEGER NOT NULL,
	removed      INTEGER NOT NULL
) STRICT;
CREATE TABLE item_failures (
	item   TEXT    NOT NULL,
	minute INTEGER NOT NULL, -- Unix minutes
	n      INTEGER NOT NULL,
	PRIMARY KEY (item, minute)
) STRICT;

-- A list reads the history of the items failing now only, and a page of
-- the quiet items in their order (store.QuietItems).
CREATE INDEX item_failures_minute ON item_failures (minute);
CREATE INDEX item_counts_failing ON item_counts ((auth_failed + disconnected + degraded) DESC, item);

CREATE TRIGGER records_item_counted_insert AFTER INSERT ON records WHEN NEW.item <> '' BEGIN
	INSERT INTO item_counts (item, connecting, healthy, auth_failed, disconnected, degraded, removed)
		VALUES (NEW.item, NEW.state = 1, NEW.state = 2, NEW.state = 3, NEW.state = 4, NEW.state = 5, NEW.state = 6)
		ON CONFLICT (item) DO UPDATE SET
			connecting = connecting + excluded.connecting, healthy = healthy + excluded.healthy,
			auth_failed = auth_failed + excluded.auth_failed, disconnected = disconnected + excluded.disconnected,
			degraded = degraded + excluded.degraded, removed = removed + excluded.removed;
	INSERT INTO item_failures (item, minute, n)
		SELECT NEW.item, min(CASE WHEN NEW.snapshot_received_at = NEW.last_event_at THEN coalesce(NEW.snapshot_at, NEW.state_since) ELSE NEW.state_since END, NEW.state_since) / 60000000000, 1 WHERE NEW.state IN (3, 5) AND NEW.state_since IS NOT NULL
		ON CONFLICT (item, minute) DO UPDATE SET n = n + 1;
	DELETE FROM item_failures WHERE item = NEW.item AND minute < min(CASE WHEN NEW.snapshot_received_at = NEW.last_event_at THEN coalesce(NEW.snapshot_at, NEW.state_since) ELSE NEW.state_since END, NEW.state_since) / 60000000000 - 2880;
END;
CREATE TRIGGER records_item_counted_delete AFTER DELETE ON records WHEN OLD.item <> '' BEGIN
	UPDATE item_counts SET
		connecting = connecting - (OLD.state = 1), healthy = healthy - (OLD.state = 2),
		auth_failed = auth_failed - (OLD.state = 3), disconnected = disconnected - (OLD.state = 4),
		degraded = degraded - (OLD.state = 5), removed = removed - (OLD.state = 6)
		WHERE item = OLD.item;
END;
CREATE TRIGGER records_item_counted_update AFTER UPDATE OF state, item ON records
	WHEN (OLD.state <> NEW.state OR OLD.item <> NEW.item) AND (OLD.item <> '' OR NEW.item <> '') BEGIN
	UPDATE item_counts SET
		connecting = connecting - (OLD.state = 1), healthy = healthy - (OLD.state = 2),
		auth_failed = auth_failed - (OLD.state = 3), disconnected = disconnected - (OLD.state = 4),
		degraded = degraded - (OLD.state = 5), removed = removed - (OLD.state = 6)
		WHERE item = OLD.item;
	INSERT INTO item_counts (item, connecting, healthy, auth_failed, disconnected, degraded, removed)
		SELECT NEW.item, NEW.state = 1, NEW.state = 2, NEW.state = 3, NEW.state = 4, NEW.state = 5, NEW.state = 6
		WHERE NEW.item <> ''
		ON CONFLICT (item) DO UPDATE SET
			connecting = connecting + excluded.connecting, healthy = healthy + excluded.healthy,
			auth_failed = auth_failed + excluded.auth_failed, disconnected = disconnected + excluded.disconnected,
			degraded = degraded + excluded.degraded, removed = removed + excluded.removed;
	INSERT INTO item_failures (item, minute, n)
		SELECT NEW.item, min(CASE WHEN NEW.snapshot_received_at = NEW.last_event_at THEN coalesce(NEW.snapshot_at, NEW.state_since) ELSE NEW.state_since END, NEW.state_since) / 60000000000, 1
		WHERE NEW.item <> '' AND NEW.state IN (3, 5) AND OLD.state NOT IN (3, 5) AND OLD.incident_state NOT IN (3, 5)
			AND NEW.state_since IS NOT NULL
		ON CONFLICT (item, minute) DO UPDATE SET n = n + 1;
	DELETE FROM item_failures WHERE item = NEW.item AND NEW.state IN (3, 5) AND OLD.state NOT IN (3, 5)
		AND OLD.incident_state NOT IN (3, 5) AND minute < min(CASE WHEN NEW.snapshot_received_at = NEW.last_event_at THEN coalesce(NEW.snapshot_at, NEW.state_since) ELSE NEW.state_since END, NEW.state_since) / 60000000000 - 2880;
END;

-- The newest items.updated of each item (health.ItemReport), by arrival.
CREATE TABLE item_reports (
	item        TEXT    PRIMARY KEY,
	name        TEXT    NOT NULL,
	status      TEXT    NOT NULL,
	details     TEXT    NOT NULL,
	received_at INTEGER
) STRICT;

-- Item outages: whether the log last told an item in an outage (the last
-- items.outage_* entry that changed it, health.ItemOutage), which records
-- were told so (health.Record.ItemOutage: their remedy is to wait), and
-- the item of each change (the account's, or that of an item-wide one),
-- which streams filter on. '' and false for the changes and records of
-- before, as under the rules of before.
ALTER TABLE records ADD COLUMN item_outage INTEGER NOT NULL DEFAULT 0;
ALTER TABLE changes ADD COLUMN item TEXT NOT NULL DEFAULT '';
CREATE TABLE item_outages (
	item       TEXT    PRIMARY KEY,
	in_outage  INTEGER NOT NULL,
	status     INTEGER NOT NULL,
	since      INTEGER,
	changed_at INTEGER
) STRICT;
