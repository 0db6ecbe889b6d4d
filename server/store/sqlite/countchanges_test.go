package sqlite

import (
	"slices"
	"strings"
	"testing"
)

// TestCountChangesPlan: CountChanges reads a range of the hourly counts,
// so its cost follows the hours in its window, not the changes or the
// records.
func TestCountChangesPlan(t *testing.T) {
	s := openStore(t)
	fixed := readSQL.Fixed()
	i := slices.IndexFunc(fixed, func(q string) bool { return strings.Contains(q, "GROUP BY bucket, kind") })
	if i < 0 {
		t.Fatal("no CountChanges statement among the reads")
	}
	rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+fixed[i], int64(0), int64(3600e9), int64(0), int64(86400e9))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if p := strings.Join(plan, "; "); !strings.Contains(p, "SEARCH change_counts USING INDEX sqlite_autoindex_change_counts_1 (hour_start>? AND hour_start<?)") {
		t.Errorf("plan %q, want a range of change_counts' primary key", p)
	}
}
