package sqlite

import (
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

// TestSyncPlans: the claims and OldestUnconfirmed search their indexes
// (the migrations repeat sqlstore's expressions, which must match), so
// they stay cheap however many accounts there are.
func TestSyncPlans(t *testing.T) {
	s := openStore(t)
	c := sqlstore.NewClaim(store.DueQuery{Holder: "r1", Now: time.Now(), ConfirmedBefore: time.Now(), LeaseFor: time.Minute, Limit: 100})
	plan := func(query string, args []any) string { return queryPlan(t, s, query, args) }
	for _, unconfirmed := range []bool{true, false} {
		b := sqlstore.NewBinder(sqlstore.Question)
		p := plan(sqlstore.DueSQL(sqlstore.SQLite, &c, unconfirmed, b), b.Args)
		if !strings.Contains(p, "SEARCH records USING INDEX records_due (unconfirmed=?") || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("due accounts, unconfirmed %v: plan %q, want a search of records_due in its order", unconfirmed, p)
		}
	}
	if p := plan(syncSQL.Fixed()[1], nil); !strings.Contains(p, "USING INDEX records_unconfirmed") {
		t.Errorf("oldest unconfirmed: plan %q, want records_unconfirmed", p)
	}
}

func openStore(t *testing.T) *Store {
	s, err := Open(t.Context(), t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// queryPlan is SQLite's plan of query, its steps joined by "; ".
func queryPlan(t *testing.T, s *Store, query string, args []any) string {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", query, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("EXPLAIN %s: %v", query, err)
	}
	return strings.Join(lines, "; ")
}
