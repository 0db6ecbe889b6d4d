package reconcile_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/reconcile"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/postgres"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
)

// Two replicas on one PostgreSQL database, reconciling at the same moment,
// never fetch the same account within an interval: the leases are in the
// shared store.
func TestReplicasNeverFetchTheSameAccount(t *testing.T) {
	url := pgtest.URL(t)
	open := func() store.Store {
		st, err := postgres.Open(t.Context(), url, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a, b := open(), open()
	const n = 500
	now := time.Now().UTC()
	var ds []store.Delivery
	for i := range n {
		id := fmt.Sprintf("acct-%03d", i)
		ds = append(ds, store.Delivery{Body: []byte(id), Decoded: health.Delivery{Event: health.EventAccountsAdded, AccountID: id, UserID: "u", ReceivedAt: now}})
	}
	if _, err := a.Ingest(t.Context(), ds); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	fetched := map[string]int{}
	f := &fetcher{answer: func(id string) (store.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		fetched[id]++
		return store.Result{Outcome: health.OutcomeDuplicate}, nil // confirms nothing: the accounts stay due
	}}
	clock := func() time.Time { return now.Add(time.Minute) }
	replicas := []*reconcile.Reconciler{
		reconcile.New(a, f, reconcile.Options{Holder: "a", PerRound: 100, Concurrency: 8, Now: clock}),
		reconcile.New(b, f, reconcile.Options{Holder: "b", PerRound: 100, Concurrency: 8, Now: clock}),
	}
	var wg sync.WaitGroup
	for _, r := range replicas {
		wg.Go(func() {
			for range 4 { // 2 replicas x 4 rounds x 100 = 800 claims for 500 accounts
				if _, err := r.Round(t.Context()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if len(fetched) != n {
		t.Errorf("%d accounts fetched, want all %d", len(fetched), n)
	}
	for id, times := range fetched {
		if times != 1 {
			t.Errorf("%s fetched %d times within one interval", id, times)
		}
	}
}
