package sqlite

import (
	"slices"
	"strings"
	"testing"
)

// TestCountChangesPlan: CountChanges reads the index on (occurred_at,
// kind) alone, so its cost follows the changes in its window, not the
// table's size.
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
	if p := strings.Join(plan, "; "); !strings.Contains(p, "USING COVERING INDEX changes_occurred_kind (occurred_at>? AND occurred_at<?)") {
		t.Errorf("plan %q, want a range of the covering index changes_occurred_kind", p)
	}
}
