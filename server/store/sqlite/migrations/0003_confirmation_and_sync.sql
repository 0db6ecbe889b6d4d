-- Rules version 3: when the account object was last seen
-- (health.Record.ConfirmedAt). Unknown for records of before: NULL, until
-- the rebuild that the new rules version triggers derives it from the log.
ALTER TABLE records ADD COLUMN confirmed_at INTEGER;

-- Reconciliation (ClaimDue) reads the accounts due for a fetch: the
-- unconfirmed ones, then those confirmed before a time, each oldest
-- confirmation first and never confirmed (NULL) before all; removed ones
-- never. The expression and the predicate must read as in sqlstore's
-- DueSQL for the planner to match them (6 is health.StateRemoved).
CREATE INDEX records_due ON records (unconfirmed, (COALESCE(confirmed_at, -9223372036854775807)), account_id)
	WHERE state <> 6;
-- OldestUnconfirmed: few records are unconfirmed at a time.
CREATE INDEX records_unconfirmed ON records (last_event_at) WHERE unconfirmed AND state <> 6;

-- Which process fetches an account, until when: ClaimDue's leases. An
-- expired lease means nothing; claims delete them as they go.
CREATE TABLE leases (
	account_id TEXT    PRIMARY KEY,
	holder     TEXT    NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX leases_expires_at ON leases (expires_at);

-- The backfill's progress (store.SyncState): one row, once it began.
CREATE TABLE sync_state (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	page_cursor TEXT    NOT NULL,
	done        INTEGER NOT NULL,
	pages       INTEGER NOT NULL,
	seen        INTEGER NOT NULL,
	applied     INTEGER NOT NULL,
	started_at  INTEGER,
	updated_at  INTEGER,
	finished_at INTEGER
) STRICT;
