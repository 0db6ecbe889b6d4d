-- Rules version 3: when the account object was last seen
-- (health.Record.ConfirmedAt). Unknown for records of before: NULL, until
-- the rebuild that the new rules version triggers derives it from the log.
ALTER TABLE records ADD COLUMN confirmed_at BIGINT;

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
	-- COLLATE "C", as records.account_id.
	account_id TEXT    COLLATE "C" PRIMARY KEY,
	holder     TEXT    NOT NULL,
	expires_at BIGINT  NOT NULL
);
CREATE INDEX leases_expires_at ON leases (expires_at);

-- The backfill's progress (store.SyncState): one row, once it began.
CREATE TABLE sync_state (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	page_cursor TEXT    NOT NULL,
	done        BOOLEAN NOT NULL,
	pages       BIGINT  NOT NULL,
	seen        BIGINT  NOT NULL,
	applied     BIGINT  NOT NULL,
	started_at  BIGINT,
	updated_at  BIGINT,
	finished_at BIGINT
);
