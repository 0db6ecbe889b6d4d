package storetest

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// BenchmarkIngest commits accounts.updated deliveries of about 2 KB (a full
// resource) in batches, as the intake's batcher does. Every delivery is
// new and applied; one in eight puts its account in error, so changes are
// appended too. Rendering the deliveries is not timed.
//
// open returns a fresh, empty store for each batch size and closes it when
// b ends, as Run's newStore does for t.
func BenchmarkIngest(b *testing.B, open func(b *testing.B) store.Store) {
	event := benchEvent(b)
	for _, batch := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := open(b)
			ds := make([]store.Delivery, batch)
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for i := range ds {
					ds[i] = event(n).Delivery()
					n++
				}
				b.StartTimer()
				if _, err := s.Ingest(b.Context(), ds); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkReads measures what callers of the API do most, on a store of
// 1,000 accounts, from parallel readers: one account's health, a page of
// 50 accounts filtered by state, the summary, and a page of an account's
// timeline.
func BenchmarkReads(b *testing.B, open func(b *testing.B) store.Store) {
	event := benchEvent(b)
	s := open(b)
	ds := make([]store.Delivery, 0, 4000)
	for n := range 4000 {
		ds = append(ds, event(n).Delivery())
	}
	for i := 0; i < len(ds); i += 128 {
		if _, err := s.Ingest(b.Context(), ds[i:min(i+128, len(ds))]); err != nil {
			b.Fatal(err)
		}
	}
	reads := []struct {
		name string
		read func(n int) error
	}{
		{"GetHealth", func(n int) error { _, err := s.GetHealth(b.Context(), benchAccount(n)); return err }},
		{"ListHealth/state", func(int) error {
			_, err := s.ListHealth(b.Context(), store.HealthQuery{States: []health.State{health.StateHealthy}, PageSize: 50})
			return err
		}},
		{"Summary", func(int) error { _, err := s.Summary(b.Context()); return err }},
		{"ListEntries", func(n int) error {
			_, err := s.ListEntries(b.Context(), store.EntryQuery{AccountID: benchAccount(n), PageSize: 50})
			return err
		}},
	}
	for _, r := range reads {
		b.Run(r.name, func(b *testing.B) {
			var next atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := r.read(int(next.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
		})
	}
}

func benchAccount(n int) string { return fmt.Sprintf("0190a1e3-%04x-7c12-8e55-6b2d9f0c1a11", n%1000) }

// benchEvent returns the n-th delivery of the benchmarks: about 2 KB
// accounts.updated of 1,000 accounts, one in eight disconnected.
func benchEvent(b *testing.B) func(n int) Event {
	employers := make([]string, 24)
	for i := range employers {
		employers[i] = fmt.Sprintf("Whole Goods Market Regional Distribution Center %02d", i)
	}
	t0 := time.Date(2026, 10, 6, 8, 30, 51, 0, time.UTC)
	event := func(n int) Event {
		acct := benchAccount(n)
		at := t0.Add(time.Duration(n) * time.Millisecond)
		r := &Resource{Status: health.ConnectionConnected, UpdatedAt: at, ScannedAt: at, Employers: employers}
		if n%8 == 0 {
			r.Status, r.ErrorCode, r.ErrorMessage = health.ConnectionError, "auth_required", "The payroll platform logged the session out."
		}
		return Event{Event: health.EventAccountsUpdated, AccountID: acct,
			UserID: "0190a1e2-5c3d-7b41-9f2e-1d7c3a4b5e60", Resource: r, ReceivedAt: at}
	}
	if size := len(event(0).Delivery().Body); size < 1800 || size > 2400 {
		b.Fatalf("delivery of %d bytes, want about 2 KB", size)
	}
	return event
}

// BenchmarkRebuild measures Rebuild over a log written under OlderRules:
// ACCOUNTHEALTH_BENCH_REBUILD_ACCOUNTS accounts (10,000 when unset) of
// three deliveries each, a quarter of them corrected, bodies decoded by the
// webhook decoder as the service does. Writing the log is not timed; the
// rate is reported in accounts/s.
func BenchmarkRebuild(b *testing.B, newDB func(b *testing.B) Opener) {
	accounts := benchAccounts(b, "ACCOUNTHEALTH_BENCH_REBUILD_ACCOUNTS", 10000)
	decode := func(e store.Entry) (health.Delivery, error) {
		env, err := webhook.Decode(e.Body, e.ReceivedAt)
		return env.Delivery, err
	}
	b.Run(fmt.Sprintf("accounts=%d", accounts), func(b *testing.B) {
		rebuilt, corrected := 0, 0
		for b.Loop() {
			b.StopTimer()
			open := newDB(b)
			old := open(store.Options{Rules: OlderRules})
			writeRebuildLog(b, old, accounts)
			if err := old.Close(); err != nil {
				b.Fatal(err)
			}
			s := open(store.Options{})
			b.StartTimer()
			p, err := s.Rebuild(b.Context(), store.RebuildOptions{Decode: decode})
			if err != nil {
				b.Fatal(err)
			}
			rebuilt, corrected = rebuilt+p.Accounts, corrected+p.Corrections
		}
		b.ReportMetric(float64(rebuilt)/b.Elapsed().Seconds(), "accounts/s")
		b.ReportMetric(float64(corrected)/float64(max(rebuilt, 1)), "corrected/account")
	})
}

// writeRebuildLog ingests three deliveries for each of n accounts, in
// large batches.
func writeRebuildLog(b *testing.B, s store.Store, n int) {
	const batch = 1000
	ds := make([]store.Delivery, 0, batch+3)
	flush := func() {
		if _, err := s.Ingest(b.Context(), ds); err != nil {
			b.Fatal(err)
		}
		ds = ds[:0]
	}
	for i := range n {
		a, u := fmt.Sprintf("0190a1e3-%08x-7c12-8e55-6b2d9f0c1a11", i), userID(i%5000)
		at := t0.Add(time.Duration(i) * time.Second)
		evs := []Event{added(a, u, at)}
		switch i % 4 {
		case 0:
			evs = append(evs, failed(a, u, "invalid_mfa", at.Add(time.Minute)), failed(a, u, "mfa_timeout", at.Add(2*time.Minute)))
		case 1:
			evs = append(evs, connected(a, u, at.Add(time.Minute)), updatedError(a, u, "auth_required", at.Add(time.Hour)))
		case 2:
			evs = append(evs, failedWithResource(a, u, "invalid_credentials", at.Add(time.Minute)), connected(a, u, at.Add(time.Hour)))
		default:
			evs = append(evs, connected(a, u, at.Add(time.Minute)), updatedError(a, u, "platform_unavailable", at.Add(time.Hour)))
		}
		ds = append(ds, Deliveries(evs...)...)
		if len(ds) >= batch {
			flush()
		}
	}
	if len(ds) > 0 {
		flush()
	}
}

// benchAccounts reads how many accounts a benchmark is to use from the
// environment variable env, def when it is unset.
func benchAccounts(b *testing.B, env string, def int) int {
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", env, v)
	}
	return n
}
