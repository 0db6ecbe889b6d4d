package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/store"
)

// Reconciliation: ClaimDue's selection, order and leases.

// dueHistory commits accounts in every case ClaimDue tells apart and
// returns, in ClaimDue's order, those due when confirmed before
// t0+30m. The names say what each one is.
func dueHistory(t *testing.T, s store.Store) (due []store.DueAccount, names map[string]string) {
	t.Helper()
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	id := func(n int) string { return accountID(n) }
	ingest(t, s,
		connected(id(1), userID(1), at(10)), updatedLean(id(1), userID(1), at(20)), // unconfirmed, confirmed at 10
		updatedLean(id(2), userID(1), at(5)),                                 // unconfirmed, never confirmed
		connected(id(3), userID(1), at(2)),                                   // confirmed at 2
		connected(id(4), userID(1), at(1)),                                   // confirmed at 1
		added(id(5), userID(1), at(3)),                                       // never confirmed
		connected(id(6), userID(1), at(60)),                                  // confirmed recently
		connected(id(7), userID(1), at(1)), removed(id(7), userID(1), at(4)), // removed
		updatedLean(id(8), userID(1), at(6)), removed(id(8), userID(1), at(7)), // removed
	)
	names = map[string]string{id(1): "unconfirmed", id(2): "unconfirmed never confirmed", id(3): "confirmed at 2",
		id(4): "confirmed at 1", id(5): "never confirmed", id(6): "confirmed recently", id(7): "removed", id(8): "removed while unconfirmed"}
	due = []store.DueAccount{
		{AccountID: id(2), Unconfirmed: true},
		{AccountID: id(1), Unconfirmed: true, ConfirmedAt: at(10)},
		{AccountID: id(5)},
		{AccountID: id(4), ConfirmedAt: at(1)},
		{AccountID: id(3), ConfirmedAt: at(2)},
	}
	return due, names
}

// claim runs ClaimDue and fails the test on error.
func claim(t *testing.T, s store.Store, q store.DueQuery) []store.DueAccount {
	t.Helper()
	got, err := s.ClaimDue(t.Context(), q)
	if err != nil {
		t.Fatalf("ClaimDue(%+v): %v", q, err)
	}
	return got
}

func testClaimDue(t *testing.T, s store.Store) {
	if got := claim(t, s, store.DueQuery{Holder: "r1", Now: t0, LeaseFor: time.Minute, Limit: 10}); len(got) != 0 {
		t.Errorf("ClaimDue on an empty store = %+v", got)
	}
	due, names := dueHistory(t, s)
	now := t0.Add(2 * time.Hour)
	q := store.DueQuery{Holder: "r1", Now: now, ConfirmedBefore: t0.Add(30 * time.Minute), LeaseFor: time.Minute, Limit: 2}
	wantClaim := func(what string, q store.DueQuery, want []store.DueAccount) {
		t.Helper()
		got := claim(t, s, q)
		if d := diff(want, got); d != "" {
			var ns []string
			for _, a := range got {
				ns = append(ns, names[a.AccountID])
			}
			t.Errorf("%s: claimed %v, differs:\n%s", what, ns, d)
		}
	}
	// Pages of 2: each claim takes the next, since the earlier are leased.
	wantClaim("first 2", q, due[:2])
	q.Holder = "r2"
	wantClaim("next 2", q, due[2:4])
	q.Holder, q.Limit = "r1", 10
	wantClaim("the rest", q, due[4:])
	wantClaim("all leased, to the asker too", q, nil)
	q.Now = now.Add(time.Minute - time.Nanosecond)
	wantClaim("a nanosecond before the leases expire", q, nil)
	q.Now = now.Add(time.Minute)
	wantClaim("once they expired", q, due)

	// Without a bound, only what is unconfirmed or never confirmed is due;
	// a fetch that confirms an account ends its turn.
	q.Now, q.ConfirmedBefore = q.Now.Add(time.Minute), time.Time{}
	ingest(t, s, connected(due[0].AccountID, userID(1), now))
	wantClaim("unbounded, after a fetch", q, []store.DueAccount{due[1], due[2]})
}

func testClaimDueInvalid(t *testing.T, s store.Store) {
	ok := store.DueQuery{Holder: "r1", Now: t0, LeaseFor: time.Minute, Limit: 1}
	for name, edit := range map[string]func(*store.DueQuery){
		"no holder":       func(q *store.DueQuery) { q.Holder = "" },
		"no time":         func(q *store.DueQuery) { q.Now = time.Time{} },
		"no lease":        func(q *store.DueQuery) { q.LeaseFor = 0 },
		"negative lease":  func(q *store.DueQuery) { q.LeaseFor = -time.Second },
		"no limit":        func(q *store.DueQuery) { q.Limit = 0 },
		"limit above max": func(q *store.DueQuery) { q.Limit = store.MaxClaim + 1 },
	} {
		q := ok
		edit(&q)
		_, err := s.ClaimDue(t.Context(), q)
		wantErr(t, "ClaimDue with "+name, err, store.ErrInvalidArgument)
	}
	ok.Limit = store.MaxClaim
	claim(t, s, ok)
}

// testClaimDueConcurrently: claimers in several processes (here: stores
// on one database) that claim at once never get the same account while
// its lease lasts, and between them take every account due.
func testClaimDueConcurrently(t *testing.T, open Opener) {
	const accounts, handles, claimers = 120, 3, 8
	stores := []store.Store{open(store.Options{})}
	for len(stores) < handles {
		stores = append(stores, open(store.Options{}))
	}
	var events []Event
	for i := range accounts {
		at := t0.Add(time.Duration(i) * time.Second)
		if i%5 == 0 {
			events = append(events, updatedLean(accountID(i), userID(i), at))
		} else {
			events = append(events, connected(accountID(i), userID(i), at))
		}
	}
	ingest(t, stores[0], events...)
	for round, now := range []time.Time{t0.Add(time.Hour), t0.Add(2 * time.Hour)} {
		claimed := make([][]store.DueAccount, claimers)
		var wg sync.WaitGroup
		for c := range claimers {
			wg.Go(func() {
				q := store.DueQuery{Holder: fmt.Sprintf("replica-%d", c), Now: now,
					ConfirmedBefore: now, LeaseFor: time.Hour - time.Second, Limit: 1 + c%4}
				for {
					// Empty once every account is leased, or locked by a
					// claim that leases it.
					got, err := stores[c%handles].ClaimDue(t.Context(), q)
					if err != nil {
						t.Errorf("claimer %d: %v", c, err)
					}
					if len(got) == 0 {
						return
					}
					claimed[c] = append(claimed[c], got...)
				}
			})
		}
		wg.Wait()
		seen := map[string]int{}
		for c, got := range claimed {
			for _, a := range got {
				if prev, dup := seen[a.AccountID]; dup {
					t.Errorf("round %d: %s claimed by claimers %d and %d", round, a.AccountID, prev, c)
				}
				seen[a.AccountID] = c
			}
		}
		if len(seen) != accounts {
			t.Errorf("round %d: %d accounts claimed, want all %d", round, len(seen), accounts)
		}
		if got := claim(t, stores[0], store.DueQuery{Holder: "late", Now: now, ConfirmedBefore: now, LeaseFor: time.Hour, Limit: 10}); len(got) != 0 {
			t.Errorf("round %d: a late claim got %+v, all being leased", round, got)
		}
	}
}
