package service_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// BenchmarkIngestSignedHTTP measures the whole intake path as the provider
// drives it: signed accounts.updated deliveries (about 1 KB, with the
// account object) POSTed over loopback HTTP by 64 concurrent senders, each
// verified, decoded, committed to SQLite (group commit, synchronous=FULL)
// and applied before the 200. Reports deliveries/s.
func BenchmarkIngestSignedHTTP(b *testing.B) {
	e := start(b, nil)
	url := "http://" + e.addrs.Webhook + service.WebhookPath
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var n atomic.Int64
	b.SetParallelism(32) // 32 x GOMAXPROCS(2) = 64 senders
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := updatedBody(fmt.Sprintf("acct-%d", i%5000), fmt.Sprintf("user-%d", i%1000), "error", "auth_required", at.Add(time.Duration(i)*time.Millisecond))
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set(webhook.SignatureHeader, webhook.Sign(fixtureSecret, body))
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "deliveries/s")
}

// readBench is a server over a store of 1,000 accounts, each with the
// account object of a delivery of about 850 bytes (one in eight failing),
// for the read benchmarks.
func readBench(b *testing.B) *env {
	st := openStore(b, b.TempDir())
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	employers := `"employers":["Whole Goods Market Regional Distribution Center 01","Whole Goods Market Regional Distribution Center 02",` +
		`"Whole Goods Market Regional Distribution Center 03","Whole Goods Market Regional Distribution Center 04",` +
		`"Whole Goods Market Regional Distribution Center 05","Whole Goods Market Regional Distribution Center 06"]`
	ds := make([]store.Delivery, 0, 1000)
	for i := range 1000 {
		status, code := "connected", ""
		if i%8 == 0 {
			status, code = "error", "auth_required"
		}
		body := bytes.Replace(updatedBody(benchAccount(i), fmt.Sprintf("user-%d", i%500), status, code, at), []byte(`"employers":["Acme"]`), []byte(employers), 1)
		env, err := webhook.Decode(body, at)
		if err != nil {
			b.Fatal(err)
		}
		ds = append(ds, store.Delivery{Body: body, Name: env.Name, Decoded: env.Delivery, Verified: true})
	}
	if n := len(ds[0].Body); n < 750 || n > 950 {
		b.Fatalf("delivery of %d bytes, want about 850", n)
	}
	if _, err := st.Ingest(b.Context(), ds); err != nil {
		b.Fatal(err)
	}
	return start(b, st)
}

func benchAccount(i int) string { return fmt.Sprintf("0190a1e3-%04x-7c12-8e55-6b2d9f0c1a11", i%1000) }

// BenchmarkReadsGRPC measures the reads over loopback gRPC from 50
// concurrent callers: one account's health, a page of 50 accounts filtered
// by state and, the baseline to judge them by, the gRPC health check: a
// unary call that does next to nothing behind the same interceptors.
// Reports calls/s.
func BenchmarkReadsGRPC(b *testing.B) {
	e := readBench(b)
	c, probe := ahv1.NewAccountHealthServiceClient(e.conn), healthpb.NewHealthClient(e.conn)
	healthy := []ahv1.HealthState{ahv1.HealthState_HEALTH_STATE_HEALTHY}
	reads := []struct {
		name string
		call func(ctx context.Context, i int) error
	}{
		{"noop", func(ctx context.Context, _ int) error {
			_, err := probe.Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}},
		{"GetAccountHealth", func(ctx context.Context, i int) error {
			_, err := c.GetAccountHealth(ctx, &ahv1.GetAccountHealthRequest{AccountId: benchAccount(i)})
			return err
		}},
		{"ListAccountHealth/state", func(ctx context.Context, _ int) error {
			res, err := c.ListAccountHealth(ctx, &ahv1.ListAccountHealthRequest{States: healthy, PageSize: 50})
			if err == nil && len(res.GetAccounts()) != 50 {
				err = fmt.Errorf("a page of %d accounts, want 50", len(res.GetAccounts()))
			}
			return err
		}},
	}
	for _, r := range reads {
		b.Run(r.name, func(b *testing.B) {
			var n atomic.Int64
			b.SetParallelism(25) // 25 x GOMAXPROCS(2) = 50 callers
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := r.call(b.Context(), int(n.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}
