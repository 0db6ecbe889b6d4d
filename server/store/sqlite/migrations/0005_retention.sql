-- Retention (store.RunPrune): where pruning left each account's log. The
-- record is the one replaying the entries up to through_seq derived, as
-- JSON; a replay (rebuild, check) starts from it.
CREATE TABLE checkpoints (
	account_id  TEXT    PRIMARY KEY,
	through_seq INTEGER NOT NULL,
	record      BLOB    NOT NULL
) STRICT;

-- Pruning looks for the entries old enough to lose their bodies: only
-- those that still hold one are in this index, so it shrinks as they go.
CREATE INDEX entries_prunable ON entries (received_at)
	WHERE source IN ('webhook', 'api') AND body IS NOT NULL;
