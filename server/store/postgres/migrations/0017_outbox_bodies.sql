-- A message's body is the same for every endpoint it goes to (the change's,
-- in the outbound form), so it is kept once a change, not once a message:
-- with ten endpoints a transition's body was written ten times, and copied
-- again into every new version of a message row (its lease, its outcome).
-- Bodies below the oldest message kept are pruned with the messages.
CREATE TABLE notify_bodies (
	seq  BIGINT PRIMARY KEY,
	body BYTEA  NOT NULL
);
INSERT INTO notify_bodies (seq, body) SELECT seq, body FROM notify_messages ON CONFLICT (seq) DO NOTHING;
ALTER TABLE notify_messages DROP COLUMN body;
