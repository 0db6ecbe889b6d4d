package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
)

// TestClaimPlan: the records_due index can serve a claim, its range in
// its order (the migration repeats sqlstore's expressions, which must
// match). The plans that beat it on a table this small are off; at a
// million accounts the planner picks it unaided.
func TestClaimPlan(t *testing.T) {
	s := openURL(t, pgtest.URL(t))
	c := sqlstore.NewClaim(store.DueQuery{Holder: "r1", Now: time.Now(), ConfirmedBefore: time.Now(), LeaseFor: time.Minute, Limit: 100})
	tx, err := s.pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	for _, off := range []string{"seqscan", "bitmapscan", "sort"} {
		if _, err := tx.Exec(t.Context(), "SET LOCAL enable_"+off+" = off"); err != nil {
			t.Fatal(err)
		}
	}
	for _, unconfirmed := range []bool{true, false} {
		query, args := claimSQL(&c, unconfirmed)
		rows, err := tx.Query(t.Context(), "EXPLAIN "+query, args...)
		if err != nil {
			t.Fatalf("EXPLAIN: %v", err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		if p := strings.Join(plan, "\n"); !strings.Contains(p, "Index Scan using records_due") {
			t.Errorf("claim, unconfirmed %v: plan\n%s\nwant an index scan of records_due", unconfirmed, p)
		}
	}
}
