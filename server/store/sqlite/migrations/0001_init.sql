-- The durable log, the health derived from it and the change log streams
-- read. Times are Unix nanoseconds, UTC, NULL for the zero time: integers
-- order and round-trip exactly. Empty strings, not NULL, stand for absent
-- text, as in the Go types.

CREATE TABLE entries (
	-- AUTOINCREMENT: a Seq is never reused, so a cursor never skips a row.
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	source       TEXT    NOT NULL,
	event        TEXT    NOT NULL,
	name         TEXT    NOT NULL,
	account_id   TEXT    NOT NULL,
	user_id      TEXT    NOT NULL,
	received_at  INTEGER,
	outcome      INTEGER NOT NULL,
	redeliveries INTEGER NOT NULL DEFAULT 0,
	actor        TEXT    NOT NULL,
	body         BLOB,
	body_sha256  BLOB
) STRICT;

-- Redelivery detection looks up the newest entry with a hash.
CREATE INDEX entries_body_sha256 ON entries (body_sha256, seq);
-- An account's timeline.
CREATE INDEX entries_account ON entries (account_id, seq);

CREATE TABLE records (
	account_id             TEXT    PRIMARY KEY,
	user_id                TEXT    NOT NULL,
	state                  INTEGER NOT NULL,
	error_code             TEXT    NOT NULL,
	error_message          TEXT    NOT NULL,
	remedy_action          INTEGER NOT NULL,
	remedy_message         TEXT    NOT NULL,
	remedy_link_account_id TEXT    NOT NULL,
	remedy_link_user_id    TEXT    NOT NULL,
	state_since            INTEGER,
	last_event_type        TEXT    NOT NULL,
	last_event_at          INTEGER,
	consecutive_failures   INTEGER NOT NULL,
	ever_connected         INTEGER NOT NULL,
	unconfirmed            INTEGER NOT NULL,
	open_incident          INTEGER NOT NULL,
	snapshot_at            INTEGER,
	snapshot               BLOB
) STRICT;

-- ListHealth filters, each ending in account_id so a page comes out of the
-- index already in order; Summary counts from the last two.
CREATE INDEX records_user ON records (user_id, account_id);
CREATE INDEX records_state ON records (state, account_id);
CREATE INDEX records_error_code ON records (error_code, account_id);

CREATE TABLE changes (
	seq                    INTEGER PRIMARY KEY AUTOINCREMENT,
	-- UNIQUE: a delivery makes at most one transition; the index also
	-- serves the timeline's join.
	entry_seq              INTEGER NOT NULL UNIQUE REFERENCES entries (seq),
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
	occurred_at            INTEGER
) STRICT;

-- Streams that start at a time find their first change by it.
CREATE INDEX changes_occurred_at ON changes (occurred_at, seq);
