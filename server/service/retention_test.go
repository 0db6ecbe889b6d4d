package service_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/rebuild"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// decoded is the delivery of a body received at at, as intake commits it.
func decoded(t *testing.T, body []byte, at time.Time) store.Delivery {
	t.Helper()
	env, err := webhook.Decode(body, at)
	if err != nil {
		t.Fatal(err)
	}
	return store.Delivery{Body: body, Name: env.Name, Decoded: env.Delivery, Verified: true}
}

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
		ds = append(ds, decoded(t, d.body, d.at))
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

// A ListAccountEvents page token issued before a pass removed entries past
// it is OUT_OF_RANGE (REST 400), over both transports; paging again from
// the first page works.
func TestPrunedPageTokenIsOutOfRange(t *testing.T) {
	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) {
			st := openStore(t, t.TempDir())
			now := time.Now()
			var ds []store.Delivery
			for d := 5; d >= 0; d-- {
				at := now.Add(-time.Duration(d) * 24 * time.Hour)
				ds = append(ds, decoded(t, updatedBody("acct", "u", "connected", "", at), at))
			}
			if _, err := st.Ingest(t.Context(), ds); err != nil {
				t.Fatal(err)
			}
			e := start(t, st)
			first := &ahv1.ListAccountEventsResponse{}
			if code := r.call(e, "ListAccountEvents", &ahv1.ListAccountEventsRequest{AccountId: "acct", PageSize: 1}, first); code != codes.OK || first.GetNextPageToken() == "" {
				t.Fatalf("first page: %s, %v; want a next page", code, first)
			}
			if _, err := st.Prune(t.Context(), store.PruneOptions{Retention: 36 * time.Hour, Decode: rebuild.Decode}); err != nil {
				t.Fatal(err)
			}
			req := &ahv1.ListAccountEventsRequest{AccountId: "acct", PageSize: 1, PageToken: first.GetNextPageToken()}
			if code := r.call(e, "ListAccountEvents", req, &ahv1.ListAccountEventsResponse{}); code != codes.OutOfRange {
				t.Errorf("page token from before the pass: %s, want OutOfRange", code)
			}
			// From the first page: what the pass kept, fewer than delivered.
			all := &ahv1.ListAccountEventsResponse{}
			if code := r.call(e, "ListAccountEvents", &ahv1.ListAccountEventsRequest{AccountId: "acct"}, all); code != codes.OK || len(all.GetEvents()) == 0 || len(all.GetEvents()) >= len(ds) {
				t.Errorf("timeline after the pass: %s, %d events; want fewer than the %d delivered", code, len(all.GetEvents()), len(ds))
			}
		})
	}
}

// A retention shorter than an hour is refused, naming the setting: it would
// prune what redelivery detection still needs. 0 keeps everything.
func TestRetentionValidated(t *testing.T) {
	cfg := service.DefaultConfig()
	cfg.AllowUnsignedWebhooks = true
	cfg.Retention, cfg.RemovedRetention = 30*time.Minute, time.Second
	err := cfg.Validate()
	for _, name := range []string{"retention: 30m0s is too short", "removed-retention: 1s is too short"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Validate() = %v, want an error saying %q", err, name)
		}
	}
	cfg.Retention, cfg.RemovedRetention = 0, 0
	if err := cfg.Validate(); err != nil {
		t.Errorf("with retention off: %v", err)
	}
}
