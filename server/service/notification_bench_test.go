package service_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/postgres"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// BenchmarkNotifyLag drives 1,000 transitions/s for 3 s into the server
// (signed webhooks over loopback, 32 paced senders, each delivery a
// transition) and fans them out to 1, 10 or 100 endpoints served by
// loopback receivers that answer 200 at once, on SQLite and on
// PostgreSQL. It reports the lag from a
// delivery's acknowledgement (its commit) to a receiver getting its
// message, p50 and p99 over every message, the CPU the whole process
// (server, senders, receivers) used per second of the run, the rate the
// senders reached (intake's acknowledgements bound it) and the messages
// received per second. One iteration is the whole load: run it with
// -benchtime=1x. ACCOUNTHEALTH_BENCH_NOTIFY_RATE changes the rate aimed
// at, to find the lag below what the machine can carry.
func BenchmarkNotifyLag(b *testing.B) {
	rate := 1000
	if v := os.Getenv("ACCOUNTHEALTH_BENCH_NOTIFY_RATE"); v != "" {
		var err error
		if rate, err = strconv.Atoi(v); err != nil || rate < 32 {
			b.Fatalf("ACCOUNTHEALTH_BENCH_NOTIFY_RATE=%q: want transitions a second, at least 32 (one a sender)", v)
		}
	}
	for _, st := range []string{"sqlite", "postgres"} {
		for _, endpoints := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("store=%s/endpoints=%d", st, endpoints), func(b *testing.B) {
				for range b.N {
					notifyLagRun(b, st, endpoints, rate, 3*time.Second)
				}
			})
		}
	}
}

// lagLog is when each entry was acknowledged and its messages received.
type lagLog struct {
	mu       sync.Mutex
	acked    map[int64]time.Time
	received map[int64][]time.Time
	count    int
	all      chan struct{} // closed once want messages arrived
	want     int
}

func (l *lagLog) receive(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	at := time.Now()
	var m struct {
		Data struct {
			EntrySequence int64 `json:"entry_sequence"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &m)
	l.mu.Lock()
	l.received[m.Data.EntrySequence] = append(l.received[m.Data.EntrySequence], at)
	l.count++
	if l.count == l.want {
		close(l.all)
	}
	l.mu.Unlock()
}

func notifyLagRun(b *testing.B, storeName string, endpoints, perSecond int, d time.Duration) {
	var st store.Store // SQLite when nil
	if storeName == "postgres" {
		var err error
		if st, err = postgres.Open(b.Context(), pgtest.URL(b), store.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	e := start(b, st)
	const senders = 32
	total := perSecond * int(d/time.Second) / senders * senders
	log := &lagLog{acked: map[int64]time.Time{}, received: map[int64][]time.Time{}, all: make(chan struct{}), want: total * endpoints}
	recv := httptest.NewServer(http.HandlerFunc(log.receive))
	b.Cleanup(recv.Close)
	for i := range endpoints {
		_, err := e.notifications().CreateEndpoint(b.Context(), &ahv1.CreateEndpointRequest{
			Url: fmt.Sprintf("%s/ep%d", recv.URL, i), Filter: &ahv1.EndpointFilter{IncludeRecoveries: true}, Concurrency: 100,
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	var before syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	began := time.Now()
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() { sendPaced(b, e, log, s, senders, total/senders, time.Second*senders/time.Duration(perSecond)) })
	}
	wg.Wait()
	sent := time.Since(began)
	select {
	case <-log.all:
	case <-time.After(120 * time.Second):
		b.Fatalf("%d of %d messages arrived within 120 s", log.count, log.want)
	}
	wall := time.Since(began)
	var after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	var lags []time.Duration
	for seq, ats := range log.received {
		for _, at := range ats {
			lags = append(lags, at.Sub(log.acked[seq]))
		}
	}
	slices.Sort(lags)
	p := func(q float64) float64 { return float64(lags[int(q*float64(len(lags)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(p(0.5), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cpu-cores")
	b.ReportMetric(float64(total)/sent.Seconds(), "transitions/s")
	b.ReportMetric(float64(log.want)/wall.Seconds(), "msgs/s")
}

// sendPaced sends n deliveries, one every interval, of sender s's own
// accounts, each flipping its account between failed and connected.
func sendPaced(b *testing.B, e *env, log *lagLog, s, senders, n int, interval time.Duration) {
	client := &http.Client{}
	url := "http://" + e.addrs.Webhook + service.WebhookPath
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	const accounts = 8 // per sender
	for i := range n {
		<-tick.C
		status, code := "error", "auth_required"
		if (i/accounts)%2 == 1 {
			status, code = "connected", ""
		}
		body := updatedBody(fmt.Sprintf("acct-%d-%d", s, i%accounts), "user", status, code, at.Add(time.Duration(i)*time.Millisecond))
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, webhook.Sign(fixtureSecret, body))
		res, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var ok ahv1.ReceiveArgyleWebhookResponse
		if res.StatusCode != http.StatusOK || protojson.Unmarshal(raw, &ok) != nil {
			b.Errorf("delivery: %d %s", res.StatusCode, raw)
			return
		}
		log.mu.Lock()
		log.acked[ok.GetSequence()] = time.Now()
		log.mu.Unlock()
	}
}
