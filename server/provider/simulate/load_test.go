package simulate

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
)

// The load tests run in a synctest bubble with the server in memory: the
// clock there is fake and moves only when every goroutine waits, so ticks,
// latencies and the run's end are exact, however loaded the machine; a
// socket would keep the clock from moving.

// offline makes s send its requests to h in memory.
func offline(s *Sender, h http.Handler) {
	s.client = &http.Client{Transport: inMemory{h}}
}

// inMemory hands each request to a handler in the caller's goroutine.
type inMemory struct{ h http.Handler }

func (m inMemory) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	w := httptest.NewRecorder()
	m.h.ServeHTTP(w, req.Clone(req.Context()))
	// As over a connection, an attempt cut short gets no answer.
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return w.Result(), nil
}

// taking answers like h after d: a slow server. Its callers run in a
// synctest bubble, where the wait is on the fake clock: exact, and no real
// time passes.
func taking(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(d)
		h.ServeHTTP(w, r)
	})
}

// Load sends at the rate asked, never faster, and every delivery is one the
// server takes.
func TestLoadPaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		progress := 0
		s := newSender(t, Config{URL: "http://accounthealth.test", Secret: secret, Rate: 200, Duplicates: 0.1, Reorder: 0.1, Seed: 1,
			OnProgress: func(Stats) { progress++ }})
		offline(s, taking(time.Millisecond, f))
		st, err := s.Load(t.Context(), NewGenerator(Options{Seed: 1}), Load{Accounts: 20, Duration: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		// A tick every 5ms: 199 before the second is over, and the one at 1s
		// if it comes before the end. Each answer comes before the next tick.
		if st.Sent < 199 || st.Sent > 200 || st.OK != st.Sent || st.Missed != 0 {
			t.Errorf("stats %+v, want 199 or 200 deliveries, all taken, none missed", st)
		}
		if st.Rate > 200 || st.P50 != time.Millisecond || st.P99 != time.Millisecond {
			t.Errorf("rate %.1f/s, p50 %v, p99 %v; want at most 200/s, latencies of 1ms", st.Rate, st.P50, st.P99)
		}
		if len(f.bodies) < 20 {
			t.Errorf("%d accounts reached the server, want at least 20", len(f.bodies))
		}
		if progress > 1 {
			t.Errorf("%d progress reports in a second", progress)
		}
	})
}

// A server slower than the rate shows up as missed sends, and the run
// still ends on time.
func TestLoadReportsSlowServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSender(t, Config{URL: "http://accounthealth.test", Rate: 100, Concurrency: 2})
		offline(s, taking(100*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"outcome":"DELIVERY_OUTCOME_APPLIED","sequence":"1"}`))
		})))
		begin := time.Now()
		st, err := s.Load(t.Context(), NewGenerator(Options{}), Load{Accounts: 5, Duration: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		// Two requests of 100ms at a time from the first tick, at 10ms: at
		// most 5 each start within the 500ms, and the last ends by 600ms.
		// Each of the 49 or 50 ticks before the end that starts none misses.
		if elapsed := time.Since(begin); st.Sent > 10 || st.Missed < 49-10 || elapsed > 600*time.Millisecond {
			t.Errorf("stats %+v after %v", st, elapsed)
		}
	})
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
