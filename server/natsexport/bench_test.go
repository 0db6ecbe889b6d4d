package natsexport

import (
	"context"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/accounthealth/accounthealth/server/outbound"
	"github.com/accounthealth/accounthealth/server/store/storetest"
)

// BenchmarkExportLag commits transitions at a steady rate (1,000/s by
// default, in commits of 10 every 10 ms, as the batcher groups a busy
// intake) and measures, for each, the time from its commit's return to a
// JetStream consumer's receipt of it: the export's whole path (the
// broker's wake-up, the publish, the PubAck, the consumer's delivery).
// CPU is the whole process's: the SQLite commits, the export, the
// embedded NATS server and the consumer. Run it once:
//
//	go test -run '^$' -bench BenchmarkExportLag -benchtime 1x ./server/natsexport/
//
// ACCOUNTHEALTH_BENCH_JETSTREAM_RATE and _SECONDS change the rate and the
// duration (default 10 s).
func BenchmarkExportLag(b *testing.B) {
	rate, seconds := benchEnv(b, "ACCOUNTHEALTH_BENCH_JETSTREAM_RATE", 1000), benchEnv(b, "ACCOUNTHEALTH_BENCH_JETSTREAM_SECONDS", 10)
	const perCommit = 10
	total := rate * seconds
	for b.Loop() {
		e := newEnv(b)
		e.export(e.broker, Options{})
		var mu sync.Mutex
		committed := make(map[int64]time.Time, total)
		received := make(map[int64]time.Time, total)
		done := make(chan struct{})
		stopConsumer := consume(b, e, func(seq int64, at time.Time) {
			mu.Lock()
			defer mu.Unlock()
			received[seq] = at
			if len(received) == total {
				close(done)
			}
		})
		cpu0, wall0 := cpuTime(b), time.Now()
		tick := time.NewTicker(time.Second * perCommit / time.Duration(rate))
		for i := 0; i < total; i += perCommit {
			<-tick.C
			events := make([]storetest.Event, perCommit)
			for j := range events {
				events[j] = failed(i+j, time.Duration(i+j)*time.Millisecond)
			}
			results, err := e.store.Ingest(context.Background(), storetest.Deliveries(events...))
			if err != nil {
				b.Fatal(err)
			}
			at := time.Now()
			e.broker.Notify()
			mu.Lock()
			for _, r := range results {
				committed[r.Change.Seq] = at
			}
			mu.Unlock()
		}
		tick.Stop()
		sent := time.Since(wall0)
		select {
		case <-done:
		case <-time.After(time.Minute):
			b.Fatalf("received %d of %d", len(received), total)
		}
		wall, cpu := time.Since(wall0), cpuTime(b)-cpu0
		stopConsumer()
		mu.Lock()
		lags := make([]time.Duration, 0, total)
		for seq, at := range received {
			lags = append(lags, at.Sub(committed[seq]))
		}
		mu.Unlock()
		slices.Sort(lags)
		b.ReportMetric(ms(lags[len(lags)/2]), "lag_p50_ms")
		b.ReportMetric(ms(lags[len(lags)*99/100]), "lag_p99_ms")
		b.ReportMetric(ms(lags[len(lags)-1]), "lag_max_ms")
		b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cpu_cores")
		// Below the asked rate when commits could not keep up with it.
		b.ReportMetric(float64(total)/sent.Seconds(), "committed_per_s")
	}
}

// consume calls got for every message of the stream, with its change's
// Seq and the time it arrived, until stop.
func consume(b *testing.B, e *env, got func(seq int64, at time.Time)) (stop func()) {
	b.Helper()
	js := e.js()
	ctx, cancel := context.WithTimeout(b.Context(), time.Minute)
	defer cancel()
	waitStream(ctx, js, DefaultStream)
	cons, err := js.OrderedConsumer(ctx, DefaultStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		at := time.Now()
		seq, err := outbound.SeqOf(m.Headers().Get(nats.MsgIdHdr))
		if err != nil {
			b.Error(err)
			return
		}
		got(seq, at)
	})
	if err != nil {
		b.Fatal(err)
	}
	return cc.Stop
}

func benchEnv(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// cpuTime is the CPU time the process used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
