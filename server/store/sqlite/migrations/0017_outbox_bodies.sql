-- A message's body is the same for every endpoint it goes to (the change's,
-- in the outbound form), so it is kept once a change, not once a message:
-- with ten endpoints a transition's body was written ten times, and again
-- with every update of a message row (its lease, its outcome), which
-- SQLite rewrites whole. Bodies below the oldest message kept are pruned
-- with the messages.
CREATE TABLE notify_bodies (
	seq  INTEGER PRIMARY KEY,
	body BLOB    NOT NULL
) STRICT;
INSERT INTO notify_bodies (seq, body) SELECT seq, body FROM notify_messages WHERE true ON CONFLICT (seq) DO NOTHING;
ALTER TABLE notify_messages DROP COLUMN body;
