-- Outbound webhooks (store.Outbox): the endpoints, each a cursor over the
-- change log, the messages owed to them and every attempt at sending one.
CREATE TABLE notify_endpoints (
	id              TEXT    PRIMARY KEY,
	url             TEXT    NOT NULL,
	description     TEXT    NOT NULL,
	filter          BLOB    NOT NULL,
	rate_limit      REAL    NOT NULL,
	concurrency     INTEGER NOT NULL,
	-- JSON: [{"key": "whsec_...", "expires_at": ...}]; the keys sign, so
	-- they are kept as they are (see docs/notifications.md).
	secrets         TEXT    NOT NULL,
	disabled        INTEGER NOT NULL,
	disabled_reason TEXT    NOT NULL,
	change_cursor   INTEGER NOT NULL,
	failing_since   INTEGER,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE notify_messages (
	endpoint_id  TEXT    NOT NULL REFERENCES notify_endpoints (id) ON DELETE CASCADE,
	seq          INTEGER NOT NULL,
	account_id   TEXT    NOT NULL,
	type         TEXT    NOT NULL,
	body         BLOB    NOT NULL,
	occurred_at  INTEGER NOT NULL,
	status       INTEGER NOT NULL,
	retries      INTEGER NOT NULL,
	attempts     INTEGER NOT NULL,
	next_at      INTEGER NOT NULL,
	last_error   TEXT    NOT NULL,
	lease_holder TEXT    NOT NULL,
	lease_until  INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (endpoint_id, seq)
) STRICT;
-- A claim reads the pending messages in order, and checks that none of the
-- same account is older (1 is store.MessagePending).
CREATE INDEX notify_messages_pending ON notify_messages (endpoint_id, seq) WHERE status = 1;
CREATE INDEX notify_messages_account ON notify_messages (endpoint_id, account_id, seq) WHERE status = 1;
CREATE INDEX notify_messages_occurred ON notify_messages (endpoint_id, occurred_at);

CREATE TABLE notify_attempts (
	id          INTEGER PRIMARY KEY,
	endpoint_id TEXT    NOT NULL REFERENCES notify_endpoints (id) ON DELETE CASCADE,
	seq         INTEGER NOT NULL,
	n           INTEGER NOT NULL,
	at          INTEGER NOT NULL,
	status_code INTEGER NOT NULL,
	latency     INTEGER NOT NULL,
	response    TEXT    NOT NULL,
	error       TEXT    NOT NULL
) STRICT;
CREATE INDEX notify_attempts_endpoint ON notify_attempts (endpoint_id, id);
CREATE INDEX notify_attempts_message ON notify_attempts (endpoint_id, seq, id);
