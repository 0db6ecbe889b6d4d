package stream

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/store/storetest"
)

// The paced load of BenchmarkFanout: 1,000 deliveries/s for 5 s, committed
// every 10 ms in one batch each, as the intake's batcher groups them.
const (
	fanoutRate    = 1000
	fanoutTick    = 10 * time.Millisecond
	fanoutSeconds = 5
)

// BenchmarkFanout measures, with 1, 100 and 1,000 subscribers, the latency
// from the moment Ingest returned to the moment each subscriber's Next
// returned the change (p50, p99, max over every subscriber and change), and
// the CPU the whole process used per second of wall time (ingestion
// included). One run takes about fanoutSeconds; use -benchtime=1x.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			for b.Loop() {
				fanout(b, n)
			}
		})
	}
}

func fanout(b *testing.B, subscribers int) {
	const total = fanoutRate * fanoutSeconds
	e := newEnv(b, Options{})
	deliveries := storetest.Deliveries(failures(0, total, 100)...)
	ctx, cancel := context.WithTimeout(b.Context(), time.Minute)
	defer cancel()

	// received[i][k]: when subscriber i got the k-th change, since base.
	received := make([][]time.Duration, subscribers)
	errs := make([]error, subscribers)
	var readers sync.WaitGroup
	base := time.Now()
	for i := range received {
		sub := e.subscribe(Request{})
		received[i] = make([]time.Duration, 0, total)
		readers.Go(func() {
			var last int64
			for len(received[i]) < total {
				it, err := sub.Next(ctx)
				switch {
				case err != nil:
					errs[i] = err
					return
				case it.Change == nil:
					continue
				case it.Change.Seq <= last:
					errs[i] = fmt.Errorf("change %d after %d", it.Change.Seq, last)
					return
				}
				last = it.Change.Seq
				received[i] = append(received[i], time.Since(base))
			}
		})
	}

	// committed[k]: when Ingest returned the k-th change, since base.
	committed := make([]time.Duration, 0, total)
	cpu0 := cpuTime(b)
	start := time.Since(base)
	tick := time.NewTicker(fanoutTick)
	for sent := 0; sent < total; {
		<-tick.C
		due := min(total, int((time.Since(base)-start)*fanoutRate/time.Second))
		if due == sent {
			continue
		}
		results, err := e.store.Ingest(ctx, deliveries[sent:due])
		if err != nil {
			b.Fatal(err)
		}
		at := time.Since(base)
		e.broker.Notify()
		for _, r := range results {
			if r.Change == nil {
				b.Fatal("a delivery made no change")
			}
			committed = append(committed, at)
		}
		sent = due
	}
	tick.Stop()
	readers.Wait()
	wall := time.Since(base) - start
	cpu := cpuTime(b) - cpu0
	for i, err := range errs {
		if err != nil {
			b.Fatalf("subscriber %d: %v", i, err)
		}
	}

	latencies := make([]time.Duration, 0, subscribers*total)
	for _, r := range received {
		for k, at := range r {
			// A poll may deliver a change before its Ingest call has
			// returned: no latency at all.
			latencies = append(latencies, max(0, at-committed[k]))
		}
	}
	slices.Sort(latencies)
	ms := func(q float64) float64 {
		return latencies[int(q*float64(len(latencies)-1))].Seconds() * 1000
	}
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(ms(1), "max-ms")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cpu-s/s")
}

// cpuTime is the user and system CPU the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
