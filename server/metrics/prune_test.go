package metrics

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/store"
)

// A failed pass counts what it removed before failing, and a failure, but
// leaves the last success where it was.
func TestPrunedPasses(t *testing.T) {
	m := New((&counter{}).summary, 0, slog.New(slog.DiscardHandler))
	end := time.Unix(1700000000, 0)
	m.Pruned(store.PruneReport{Deleted: 5, Stripped: 2, Objects: 1, Bytes: 4000}, end, 1500*time.Millisecond, nil)
	m.Pruned(store.PruneReport{Deleted: 1, Bytes: 100}, end.Add(time.Hour), 250*time.Millisecond, errors.New("store unavailable"))
	out := scrape(t, m)
	for _, want := range []string{
		`accounthealth_pruned_total{what="entries_deleted"} 6`,
		`accounthealth_pruned_total{what="bodies_removed"} 2`,
		`accounthealth_pruned_total{what="objects_removed"} 1`,
		`accounthealth_pruned_bytes_total 4100`,
		`accounthealth_prune_failures_total 1`,
		`accounthealth_prune_last_success_timestamp_seconds 1.7e+09`,
		`accounthealth_prune_last_duration_seconds 0.25`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}
