-- Outbound webhooks (store.Outbox): the endpoints, each a cursor over the
-- change log, the messages owed to them and every attempt at sending one.
CREATE TABLE notify_endpoints (
	id              TEXT    COLLATE "C" PRIMARY KEY,
	url             TEXT    NOT NULL,
	description     TEXT    NOT NULL,
	filter          BYTEA   NOT NULL,
	rate_limit      DOUBLE PRECISION NOT NULL,
	concurrency     BIGINT  NOT NULL,
	-- JSON: [{"key": "whsec_...", "expires_at": ...}]; the keys sign, so
	-- they are kept as they are (see docs/notifications.md).
	secrets         TEXT    NOT NULL,
	disabled        BOOLEAN NOT NULL,
	disabled_reason TEXT    NOT NULL,
	change_cursor   BIGINT  NOT NULL,
	failing_since   BIGINT,
	created_at      BIGINT  NOT NULL,
	updated_at      BIGINT  NOT NULL
);

CREATE TABLE notify_messages (
	endpoint_id  TEXT    NOT NULL REFERENCES notify_endpoints (id) ON DELETE CASCADE,
	seq          BIGINT  NOT NULL,
	account_id   TEXT    NOT NULL,
	type         TEXT    NOT NULL,
	body         BYTEA   NOT NULL,
	occurred_at  BIGINT  NOT NULL,
	status       BIGINT  NOT NULL,
	retries      BIGINT  NOT NULL,
	attempts     BIGINT  NOT NULL,
	next_at      BIGINT  NOT NULL,
	last_error   TEXT    NOT NULL,
	lease_holder TEXT    NOT NULL,
	lease_until  BIGINT  NOT NULL,
	created_at   BIGINT  NOT NULL,
	PRIMARY KEY (endpoint_id, seq)
);
-- A claim reads the pending messages in order, and checks that none of the
-- same account is older (1 is store.MessagePending).
CREATE INDEX notify_messages_pending ON notify_messages (endpoint_id, seq) WHERE status = 1;
CREATE INDEX notify_messages_account ON notify_messages (endpoint_id, account_id, seq) WHERE status = 1;
CREATE INDEX notify_messages_occurred ON notify_messages (endpoint_id, occurred_at);

CREATE TABLE notify_attempts (
	id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	endpoint_id TEXT    NOT NULL REFERENCES notify_endpoints (id) ON DELETE CASCADE,
	seq         BIGINT  NOT NULL,
	n           BIGINT  NOT NULL,
	at          BIGINT  NOT NULL,
	status_code BIGINT  NOT NULL,
	latency     BIGINT  NOT NULL,
	response    TEXT    NOT NULL,
	error       TEXT    NOT NULL
);
CREATE INDEX notify_attempts_endpoint ON notify_attempts (endpoint_id, id);
CREATE INDEX notify_attempts_message ON notify_attempts (endpoint_id, seq, id);
