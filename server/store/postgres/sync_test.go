package postgres

import (
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
	tx := planTx(t, s)
	for _, unconfirmed := range []bool{true, false} {
		query, args := claimSQL(&c, unconfirmed)
		if p := explain(t, tx, query, args); !strings.Contains(p, "Index Scan using records_due") {
			t.Errorf("claim, unconfirmed %v: plan\n%s\nwant an index scan of records_due", unconfirmed, p)
		}
	}
}
