-- CountChanges (the dashboard's chart of disconnections and recoveries
-- over time) reads these counts instead of the changes: how many changes
-- of each kind occurred in each hour (hour_start in Unix nanoseconds), kept
-- by a trigger in the statement that appends a change, so a month is at
-- most 720 hours times the kinds, however many accounts changed. Changes
-- are only ever appended; one without a time (or before 1970) is left out.
CREATE TABLE change_counts (
	hour_start INTEGER NOT NULL,
	kind       INTEGER NOT NULL,
	n          INTEGER NOT NULL,
	PRIMARY KEY (hour_start, kind)
) STRICT;
INSERT INTO change_counts (hour_start, kind, n)
	SELECT occurred_at - occurred_at % 3600000000000, kind, COUNT(*) FROM changes WHERE occurred_at >= 0 GROUP BY 1, 2;

CREATE TRIGGER changes_counted AFTER INSERT ON changes WHEN NEW.occurred_at >= 0 BEGIN
	INSERT INTO change_counts (hour_start, kind, n) VALUES (NEW.occurred_at - NEW.occurred_at % 3600000000000, NEW.kind, 1)
		ON CONFLICT (hour_start, kind) DO UPDATE SET n = n + 1;
END;
