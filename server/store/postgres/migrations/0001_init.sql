-- The durable log, the health derived from it and the change log streams
-- read: the tables and indexes of the SQLite driver, in PostgreSQL's types.
-- Times are Unix nanoseconds, UTC, NULL for the zero time: integers order
-- and round-trip exactly. Empty strings, not NULL, stand for absent text,
-- as in the Go types.

CREATE TABLE entries (
	-- An identity never hands out a value twice, so a cursor never meets a
	-- reused Seq. Gaps (rolled-back ingests) are harmless.
	seq          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	source       TEXT    NOT NULL,
	event        TEXT    NOT NULL,
	name         TEXT    NOT NULL,
	account_id   TEXT    NOT NULL,
	user_id      TEXT    NOT NULL,
	received_at  BIGINT,
	outcome      INTEGER NOT NULL,
	redeliveries INTEGER NOT NULL DEFAULT 0,
	actor        TEXT    NOT NULL,
	body         BYTEA,
	body_sha256  BYTEA
);

-- Redelivery detection looks up the newest entry with a hash.
CREATE INDEX entries_body_sha256 ON entries (body_sha256, seq);
-- An account's timeline.
CREATE INDEX entries_account ON entries (account_id, seq);

CREATE TABLE records (
	-- COLLATE "C": pages run in byte order, as in Go and SQLite, whatever
	-- the database's locale, so a page token's key means the same in every
	-- driver.
	account_id             TEXT    COLLATE "C" PRIMARY KEY,
	user_id                TEXT    NOT NULL,
	state                  INTEGER NOT NULL,
	error_code             TEXT    NOT NULL,
	error_message          TEXT    NOT NULL,
	remedy_action          INTEGER NOT NULL,
	remedy_message         TEXT    NOT NULL,
	remedy_link_account_id TEXT    NOT NULL,
	remedy_link_user_id    TEXT    NOT NULL,
	state_since            BIGINT,
	last_event_type        TEXT    NOT NULL,
	last_event_at          BIGINT,
	consecutive_failures   INTEGER NOT NULL,
	ever_connected         BOOLEAN NOT NULL,
	unconfirmed            BOOLEAN NOT NULL,
	open_incident          BOOLEAN NOT NULL,
	snapshot_at            BIGINT,
	snapshot               BYTEA
);

-- ListHealth filters, each ending in account_id so a page comes out of the
-- index already in order; Summary counts from the last two.
CREATE INDEX records_user ON records (user_id, account_id);
CREATE INDEX records_state ON records (state, account_id);
CREATE INDEX records_error_code ON records (error_code, account_id);

CREATE TABLE changes (
	seq                    BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	-- UNIQUE: a delivery makes at most one transition; the index also
	-- serves the timeline's join.
	entry_seq              BIGINT  NOT NULL UNIQUE REFERENCES entries (seq),
	account_id             TEXT    NOT NULL,
	user_id                TEXT    NOT NULL,
	event                  TEXT    NOT NULL,
	kind                   INTEGER NOT NULL,
	previous_state         INTEGER NOT NULL,
	state                  INTEGER NOT NULL,
	error_code             TEXT    NOT NULL,
	error_message          TEXT    NOT NULL,
	remedy_action          INTEGER NOT NULL,
	remedy_message         TEXT    NOT NULL,
	remedy_link_account_id TEXT    NOT NULL,
	remedy_link_user_id    TEXT    NOT NULL,
	occurred_at            BIGINT
);

-- Streams that start at a time find their first change by it.
CREATE INDEX changes_occurred_at ON changes (occurred_at, seq);
