package storetest

import (
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// Summary reads counts that the commits keep (it counts no records): they
// must equal a full count after anything that writes records.

// randomHistory is n deliveries from writer w over a few shared accounts,
// drawn from the events that move a record between states and error
// codes, so that concurrent writers change the same counts.
func randomHistory(w, n int) []store.Delivery {
	r := rand.New(rand.NewPCG(uint64(w), 17))
	codes := []string{"invalid_mfa", "invalid_credentials", "system_error", "auth_required"}
	evs := make([]Event, n)
	for i := range evs {
		k := r.IntN(12)
		a, u := accountID(k), userID(k)
		at := t0.Add(time.Duration(w*n+i) * time.Second)
		code := codes[r.IntN(len(codes))]
		switch r.IntN(7) {
		case 0:
			evs[i] = added(a, u, at)
		case 1:
			evs[i] = connected(a, u, at)
		case 2:
			evs[i] = failed(a, u, code, at)
		case 3:
			evs[i] = failedWithResource(a, u, code, at)
		case 4:
			evs[i] = updatedError(a, u, code, at)
		case 5:
			evs[i] = removed(a, u, at)
		default:
			evs[i] = paystubsAdded(a, u, at)
		}
	}
	return Deliveries(evs...)
}

// ingestConcurrently commits each of histories from its own goroutine,
// in batches of 1 to 3, through the stores in turn.
func ingestConcurrently(t *testing.T, stores []store.Store, histories [][]store.Delivery) {
	t.Helper()
	var wg sync.WaitGroup
	for w, ds := range histories {
		wg.Go(func() {
			s := stores[w%len(stores)]
			for i := 0; len(ds) > 0; i++ {
				n := min(1+i%3, len(ds))
				if _, err := s.Ingest(t.Context(), ds[:n]); err != nil {
					t.Errorf("writer %d: Ingest: %v", w, err)
					return
				}
				ds = ds[n:]
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// wantSummaryCounted checks s's Summary against a count of every record.
func wantSummaryCounted(t *testing.T, s store.Store, when string) {
	t.Helper()
	recs, _ := listAllHealth(t, s, store.HealthQuery{PageSize: store.MaxPageSize}, nil)
	wantSummary(t, s, when, summaryOf(recs), "a full count gives")
}

// summaryOf counts recs as a Summary must.
func summaryOf(recs []health.Record) store.Summary {
	sum := store.Summary{Total: len(recs), ByState: map[health.State]int{}, ByErrorCode: map[string]int{}, ByFreshness: map[health.Freshness]int{}}
	for _, r := range recs {
		sum.ByState[r.State]++
		if r.ErrorCode != "" {
			sum.ByErrorCode[r.ErrorCode]++
		}
		// A HEALTHY record derived under rules that knew no freshness
		// has none to count; any other record's is not counted.
		if r.State == health.StateHealthy && r.Freshness != health.FreshnessUnknown {
			sum.ByFreshness[r.Freshness]++
		}
	}
	return sum
}

// wantSummary checks s's Summary against want, which source gives.
func wantSummary(t *testing.T, s store.Store, when string, want store.Summary, source string) {
	t.Helper()
	got, err := s.Summary(t.Context())
	if err != nil {
		t.Fatalf("Summary %s: %v", when, err)
	}
	if got.Total != want.Total || !maps.Equal(got.ByState, want.ByState) || !maps.Equal(got.ByErrorCode, want.ByErrorCode) ||
		!maps.Equal(got.ByFreshness, want.ByFreshness) {
		t.Errorf("Summary %s = %+v, %s %+v", when, got, source, want)
	}
}

// testSummaryFollowsCommits: random concurrent ingests from two stores on
// one database (two replicas, where the driver allows it), a rebuild that
// corrects records, and more ingests while a rebuild runs each leave
// Summary equal to a full count, and Check finds the counts right.
func testSummaryFollowsCommits(t *testing.T, open Opener) {
	const writers, perWriter = 6, 40
	var all []store.Delivery
	histories := func(round int) [][]store.Delivery {
		hs := make([][]store.Delivery, writers)
		for w := range hs {
			hs[w] = randomHistory(round*writers+w, perWriter)
			all = append(all, hs[w]...)
		}
		return hs
	}

	older := []store.Store{open(store.Options{Rules: OlderRules}), open(store.Options{Rules: OlderRules})}
	ingestConcurrently(t, older, histories(0))
	// Most random accounts end removed, the same under both rules: one
	// failed login of an account of its own makes the rebuild correct
	// something whatever the interleaving.
	login := Deliveries(failed(accountID(99), userID(99), "invalid_mfa", t0))
	all = append(all, login...)
	if _, err := older[0].Ingest(t.Context(), login); err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	wantSummaryCounted(t, older[0], "after concurrent ingests")
	for _, s := range older {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}

	current := []store.Store{open(store.Options{}), open(store.Options{})}
	s := current[0]
	p, err := s.Rebuild(t.Context(), store.RebuildOptions{Decode: decoderOf(all)})
	if err != nil || p.Corrections == 0 {
		t.Fatalf("Rebuild = %+v, %v; want records corrected", p, err)
	}
	wantSummaryCounted(t, s, "after a rebuild")

	more := histories(1)
	rebuilt := make(chan error, 1)
	go func() {
		_, err := current[1].Rebuild(t.Context(), store.RebuildOptions{Decode: decoderOf(all), Force: true})
		rebuilt <- err
	}()
	ingestConcurrently(t, current, more)
	if err := <-rebuilt; err != nil {
		t.Fatalf("Rebuild alongside ingests: %v", err)
	}
	wantSummaryCounted(t, s, "after ingests alongside a rebuild")
	if r, err := s.Check(t.Context(), store.CheckOptions{Decode: decoderOf(all)}); err != nil || !r.Clean() {
		t.Errorf("Check = %+v, %v; want clean", r, err)
	}
}
