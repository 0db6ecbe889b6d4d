package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/store"
)

// BenchmarkClaimDue measures ClaimDue of 100 accounts on a store of
// ACCOUNTHEALTH_BENCH_CLAIM_ACCOUNTS accounts (10,000 when unset, at least
// that many): 1% unconfirmed, 10% confirmed before the claims' bound, the
// rest after. Time moves on by a tenth of the lease between claims, so
// that ten claims' leases are live, as when fetches fail and their
// accounts come back. Writing the store is not timed.
func BenchmarkClaimDue(b *testing.B, open func(b *testing.B) store.Store) {
	const limit, live = 100, 10
	accounts := benchAccounts(b, "ACCOUNTHEALTH_BENCH_CLAIM_ACCOUNTS", 10000)
	if accounts < 10000 {
		b.Fatalf("%d accounts: too few to claim %d of %d times without running out", accounts, limit, live+1)
	}
	b.Run(fmt.Sprintf("accounts=%d", accounts), func(b *testing.B) {
		s := open(b)
		writeClaimStore(b, s, accounts)
		q := store.DueQuery{Holder: "bench", Now: t0.Add(time.Duration(accounts) * time.Second),
			ConfirmedBefore: t0.Add(time.Duration(accounts/10) * time.Second), LeaseFor: live * time.Minute, Limit: limit}
		claimed := 0
		for b.Loop() {
			due, err := s.ClaimDue(b.Context(), q)
			if err != nil {
				b.Fatal(err)
			}
			if len(due) != limit {
				b.Fatalf("claimed %d accounts, want %d", len(due), limit)
			}
			claimed += len(due)
			q.Now = q.Now.Add(q.LeaseFor / live)
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(max(claimed/limit, 1)), "ms/claim")
		b.ReportMetric(float64(claimed)/b.Elapsed().Seconds(), "accounts/s")
	})
}

// writeClaimStore commits one delivery for each of n accounts, in large
// batches: the i-th is confirmed i seconds after t0, or, one in a hundred,
// left unconfirmed.
func writeClaimStore(b *testing.B, s store.Store, n int) {
	const batch = 1000
	ds := make([]store.Delivery, 0, batch)
	for i := range n {
		a, u := fmt.Sprintf("0190a1e3-%08x-7c12-8e55-6b2d9f0c1a11", i), userID(i%5000)
		at := t0.Add(time.Duration(i) * time.Second)
		ev := connected(a, u, at)
		if i%100 == 0 {
			ev = updatedLean(a, u, at)
		}
		ds = append(ds, ev.Delivery())
		if len(ds) == batch || i == n-1 {
			if _, err := s.Ingest(b.Context(), ds); err != nil {
				b.Fatal(err)
			}
			ds = ds[:0]
		}
	}
}
