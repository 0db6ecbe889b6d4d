-- Rules version 2: a record names the state an open incident is in (a
-- recovery names the state it recovered from), not only whether one is
-- open. The copy below is a first guess; the rebuild that the new rules
-- version triggers derives the column from the log.
ALTER TABLE records ADD COLUMN incident_state INTEGER NOT NULL DEFAULT 0;
UPDATE records SET incident_state = state WHERE open_incident = 1 AND state IN (3, 4, 5);
ALTER TABLE records DROP COLUMN open_incident;
-- When the last applied account object was received: a lean
-- accounts.failed is a retry only if no object came since (see
-- health.IsRedelivery). Unknown for records of before: NULL.
ALTER TABLE records ADD COLUMN snapshot_received_at INTEGER;

-- The version of the health rules the records were derived under, and,
-- while a rebuild to the rules of rebuild_version is under way, the last
-- account it finished (it resumes after it). One row.
CREATE TABLE derivation (
	id              INTEGER PRIMARY KEY CHECK (id = 1),
	rules_version   INTEGER NOT NULL,
	rebuild_version INTEGER NOT NULL DEFAULT 0,
	rebuilt_until   TEXT
) STRICT;
INSERT INTO derivation (id, rules_version) VALUES (1, 1);
