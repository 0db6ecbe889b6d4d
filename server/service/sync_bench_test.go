package service_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/accounthealth/accounthealth/server/service"
)

// BenchmarkBackfill measures SyncAccounts end to end: the fake provider's
// account pages over loopback HTTP, through the provider client and its
// rate limit, committed to SQLite through the batcher. Reports accounts/s.
// ACCOUNTHEALTH_BENCH_BACKFILL_ACCOUNTS sets the accounts (default 2000).
func BenchmarkBackfill(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("ACCOUNTHEALTH_BENCH_BACKFILL_ACCOUNTS")); err == nil && v > 0 {
		n = v
	}
	for b.Loop() {
		b.StopTimer()
		e, fake := withFake(b, nil, func(c *service.Config) { c.SyncOnStart, c.ReconcileInterval = false, 0 })
		seedFake(b, fake, n)
		b.StartTimer()
		got, err := syncAccounts(e, false, 0)
		if err != nil || !got[len(got)-1].GetDone() {
			b.Fatalf("backfill: %v", err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "accounts/s")
}
