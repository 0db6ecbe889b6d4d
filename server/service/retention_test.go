package service_test

import (
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// The server prunes in the background from its start: a removed
// account's object goes after --removed-retention, bodies after
// --retention; each pass is logged and counted on /metrics.
func TestPruningRunsInTheBackground(t *testing.T) {
	st := openStore(t, t.TempDir())
	now := time.Now()
	var ds []store.Delivery
	for _, d := range []struct {
		body []byte
		at   time.Time
	}{
		{updatedBody("gone", "u1", "connected", "", now.Add(-60*24*time.Hour)), now.Add(-60 * 24 * time.Hour)},
		{leanBody("accounts.removed", "gone", "u1"), now.Add(-40 * 24 * time.Hour)},
		{updatedBody("scanned", "u2", "connected", "", now.Add(-3*24*time.Hour)), now.Add(-3 * 24 * time.Hour)},
		{updatedBody("scanned", "u2", "connected", "", now.Add(-2*24*time.Hour)), now.Add(-2 * 24 * time.Hour)},
		{updatedBody("scanned", "u2", "connected", "", now.Add(-time.Minute)), now.Add(-time.Minute)},
	} {
		env, err := webhook.Decode(d.body, d.at)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, store.Delivery{Body: d.body, Name: env.Name, Decoded: env.Delivery, Verified: true})
	}
	if _, err := st.Ingest(t.Context(), ds); err != nil {
		t.Fatal(err)
	}
	e := start(t, st, func(c *service.Config) { c.Retention = 24 * time.Hour })
	// Older than the retention: both scans of "scanned" and the first
	// of "gone" made no transition (a first sight is none), so they go;
	// the removal is a transition and stays without its body. Then the
	// removed account, removed 40 days ago, loses its object.
	e.waitLog(t, "msg=pruned accounts=3 entries_deleted=3 bodies_removed=1 objects_removed=1")
	got := e.scrape()
	for name, want := range map[string]float64{
		`accounthealth_pruned_total{what="entries_deleted"}`: 3,
		`accounthealth_pruned_total{what="bodies_removed"}`:  1,
		`accounthealth_pruned_total{what="objects_removed"}`: 1,
		`accounthealth_prune_failures_total`:                 0,
	} {
		if got[name] != want {
			t.Errorf("%s = %g, want %g", name, got[name], want)
		}
	}
	if got["accounthealth_pruned_bytes_total"] == 0 || got["accounthealth_prune_last_success_timestamp_seconds"] == 0 {
		t.Errorf("pruned bytes %g, last success %g; want both set", got["accounthealth_pruned_bytes_total"], got["accounthealth_prune_last_success_timestamp_seconds"])
	}
	rec, err := st.GetHealth(t.Context(), "gone")
	if err != nil || rec.Snapshot != nil || rec.AccountID != "gone" || rec.UserID != "u1" {
		t.Errorf("removed account after pruning = %+v, %v; want its ids, no account object", rec, err)
	}
}
