package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
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
// 50 accounts filtered by state, and a page of an account's timeline.
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
