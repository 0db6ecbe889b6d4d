package sqlite

import (
	"strings"
	"testing"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// TestListPlans: lists filtered by a state other than HEALTHY, or by an
// error code, read the partial indexes that hold only such records
// (migration 0016), as lists by a freshness problem read theirs (0015),
// in page order; HEALTHY ones read the primary key.
func TestListPlans(t *testing.T) {
	s := openStore(t)
	for _, tc := range []struct {
		q    store.HealthQuery
		want string
	}{
		{store.HealthQuery{States: []health.State{health.StateAuthFailed}}, "USING INDEX records_state (state=? AND account_id>?)"},
		{store.HealthQuery{States: []health.State{health.StateAuthFailed}, Order: store.ByStateSinceAsc}, "USING INDEX records_state_since (state=?"},
		{store.HealthQuery{ErrorCodes: []string{"auth_required"}}, "USING INDEX records_error_code (error_code=? AND account_id>?)"},
		{store.HealthQuery{Freshness: []health.Freshness{health.FreshnessStale}}, "USING INDEX records_freshness (freshness=? AND account_id>?)"},
		{store.HealthQuery{States: []health.State{health.StateHealthy}}, "USING INDEX sqlite_autoindex_records_1 (account_id>?)"},
	} {
		query, args := readSQL.ListHealthSQL(tc.q, 50)
		if p := queryPlan(t, s, query, args); !strings.Contains(p, tc.want) || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%+v: plan %q, want %q in order", tc.q, p, tc.want)
		}
	}
}
