-- CountChanges (the dashboard's chart of disconnections and recoveries
-- over time) counts changes by occurred_at and kind: with both in one
-- index it reads the index alone, however many accounts the store holds.
CREATE INDEX changes_occurred_kind ON changes (occurred_at, kind);
