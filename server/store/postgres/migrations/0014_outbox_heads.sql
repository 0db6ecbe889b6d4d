-- Only the oldest pending message of each (endpoint, account) may be sent.
-- A claim used to find those heads by checking, for every pending message,
-- that none of its account was older: behind the messages in flight that
-- read the whole backlog on every claim. blocked marks the pending
-- messages that are not heads; the outbox keeps it as messages are fanned
-- in, leave pending or are requeued, so a claim reads the heads alone.
ALTER TABLE notify_messages ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;
UPDATE notify_messages SET blocked = 1 WHERE status = 1 AND EXISTS (SELECT 1 FROM notify_messages o
	WHERE o.endpoint_id = notify_messages.endpoint_id AND o.account_id = notify_messages.account_id
	AND o.status = 1 AND o.seq < notify_messages.seq);
DROP INDEX notify_messages_pending;
CREATE INDEX notify_messages_heads ON notify_messages (endpoint_id, seq) WHERE status = 1 AND blocked = 0;
