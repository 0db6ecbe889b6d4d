package simulate

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
)

// Load sends at the rate asked, never faster, and every delivery is one the
// server takes.
func TestLoadPaces(t *testing.T) {
	f, url := newFakeServer(t)
	progress := 0
	s := newSender(t, Config{URL: url, Secret: secret, Rate: 200, Duplicates: 0.1, Reorder: 0.1, Seed: 1,
		OnProgress: func(Stats) { progress++ }})
	st, err := s.Load(t.Context(), NewGenerator(Options{Seed: 1}), Load{Accounts: 20, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// 200 ticks fit in the second; loose below for slow, loaded machines.
	if st.Sent < 100 || st.Sent > 201 || st.OK != st.Sent {
		t.Errorf("stats %+v, want about 200 deliveries, all taken", st)
	}
	if st.Rate > 210 || st.P99 <= 0 || st.P50 > st.P99 {
		t.Errorf("rate %.1f/s, p50 %v, p99 %v", st.Rate, st.P50, st.P99)
	}
	if len(f.bodies) < 20 {
		t.Errorf("%d accounts reached the server, want at least 20", len(f.bodies))
	}
	if progress > 1 {
		t.Errorf("%d progress reports in a second", progress)
	}
}

// A server slower than the rate shows up as missed sends, and the run
// still ends on time.
func TestLoadReportsSlowServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		w.Write([]byte(`{"outcome":"DELIVERY_OUTCOME_APPLIED","sequence":"1"}`))
	}))
	defer srv.Close()
	s := newSender(t, Config{URL: srv.URL, Rate: 100, Concurrency: 2})
	begin := time.Now()
	st, err := s.Load(t.Context(), NewGenerator(Options{}), Load{Accounts: 5, Duration: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if st.Missed < 10 || st.Sent > 15 || time.Since(begin) > 2*time.Second {
		t.Errorf("stats %+v after %v", st, time.Since(begin))
	}
}

func TestLoadChecksItsArguments(t *testing.T) {
	unpaced := newSender(t, Config{URL: "http://127.0.0.1:1"})
	if _, err := unpaced.Load(t.Context(), NewGenerator(Options{}), Load{Accounts: 1, Duration: time.Second}); err == nil {
		t.Error("Load ran without a rate")
	}
}

// Life cycles go through every state, mostly healthy, and each account's
// deliveries, in order, apply cleanly.
func TestLifeCycles(t *testing.T) {
	g := NewGenerator(Options{Seed: 2, Start: start})
	seen := map[health.State]int{}
	healthyUpdates, total := 0, 0
	for range 50 {
		a := g.NewAccount()
		var rec health.Record
		for step := 0; step < 40 && !a.removed; step++ {
			for _, d := range lifeStep(a, g.rng) {
				res := health.Apply(rec, decode(t, d).Delivery)
				if res.Outcome != health.OutcomeApplied {
					t.Fatalf("%s: outcome %s", d.Event, res.Outcome)
				}
				if d.Event == EventUpdated && rec.State == health.StateHealthy && res.Record.State == health.StateHealthy {
					healthyUpdates++
				}
				rec = res.Record
				seen[rec.State]++
				total++
			}
		}
	}
	for _, s := range []health.State{health.StateConnecting, health.StateHealthy, health.StateAuthFailed,
		health.StateDisconnected, health.StateDegraded, health.StateRemoved} {
		if seen[s] == 0 {
			t.Errorf("no account was ever %s", s)
		}
	}
	if healthyUpdates < total/2 {
		t.Errorf("%d of %d deliveries are healthy rescans, want most", healthyUpdates, total)
	}
}
