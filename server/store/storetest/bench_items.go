package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/items"
	"github.com/accounthealth/accounthealth/server/store"
)

// BenchmarkListItemHealth measures the first page of ListItemHealth (50
// items, worst first: items.Service.List over the store) on a store of
// ACCOUNTHEALTH_BENCH_ITEM_ACCOUNTS accounts (100,000 when unset) over
// ACCOUNTHEALTH_BENCH_ITEMS items (one per 200 accounts when unset). Over the two days before, 2% of each item's accounts moved into
// a provider-side error and 2% failed a login (8 failures an item, at
// minutes spread over the two days); the first ten items' failures came
// within the last five minutes, so that they are suspected outages. The derivation
// reads every item's counts and the failures of those two days. The store
// is written once, through Ingest, untimed; the page is then measured in
// two runs.
func BenchmarkListItemHealth(b *testing.B, open func(b *testing.B) store.Store) {
	accounts := benchAccounts(b, "ACCOUNTHEALTH_BENCH_ITEM_ACCOUNTS", 100000)
	nItems := benchAccounts(b, "ACCOUNTHEALTH_BENCH_ITEMS", max(accounts/200, 20))
	now := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	s := open(b)
	writeItemStore(b, s, accounts, nItems, now)
	svc, err := items.New(s, health.DefaultItemRules, func() time.Time { return now })
	if err != nil {
		b.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		b.Run(fmt.Sprintf("accounts=%d_items=%d/run=%d", accounts, nItems, run), func(b *testing.B) {
			for b.Loop() {
				page, err := svc.List(b.Context(), items.Query{PageSize: 50})
				if err != nil {
					b.Fatal(err)
				}
				if len(page.Items) != 50 || page.Items[0].Status != health.ItemStatusSuspectedOutage {
					b.Fatalf("first page: %d items, the first %v; want 50, a suspected outage first", len(page.Items), page.Items[0].Status)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
		})
	}
}

// writeItemStore commits one account object per account, in batches.
func writeItemStore(b *testing.B, s store.Store, accounts, nItems int, now time.Time) {
	const batch = 512
	ds := make([]store.Delivery, 0, batch)
	for n := range accounts {
		ds = append(ds, itemBenchEvent(n, nItems, now).Delivery())
		if len(ds) == batch || n == accounts-1 {
			if _, err := s.Ingest(b.Context(), ds); err != nil {
				b.Fatal(err)
			}
			ds = ds[:0]
		}
	}
}

// itemBenchEvent is account n's one delivery: healthy, or for 4% of each
// item's accounts an error at some minute of the two days before now, or
// for the first 8 accounts of the first ten items a provider-side error in
// the last five minutes.
func itemBenchEvent(n, nItems int, now time.Time) Event {
	acct, user := fmt.Sprintf("bench-%08d", n), fmt.Sprintf("user-%08d", n)
	item, place := n%nItems, n/nItems // the account's place among its item's
	at := now.Add(-time.Duration(n%2880) * time.Minute)
	var e Event
	switch {
	case item < 10 && place < 8:
		e = updatedError(acct, user, "platform_unavailable", now.Add(-time.Duration(n%5)*time.Minute))
	case place%50 == 0:
		e = updatedError(acct, user, "platform_unavailable", at)
	case place%50 == 1:
		e = failedWithResource(acct, user, "invalid_credentials", at)
	default:
		e = connected(acct, user, now.Add(-49*time.Hour))
	}
	return onItem(e, fmt.Sprintf("item_%09d", item))
}
