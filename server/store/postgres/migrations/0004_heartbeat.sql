-- Ping commits a write here (store.Store.Ping), so that readiness learns
-- when the store can no longer commit (disk full, read-only) and when it
-- can again.
CREATE TABLE heartbeat (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	beat_at BIGINT  NOT NULL
);
INSERT INTO heartbeat (id, beat_at) VALUES (1, 0);
