package service_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/service"
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
