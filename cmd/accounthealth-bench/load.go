package main

import (
	"context"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// maxSamples bounds the latencies a row keeps (8 bytes each: 16 MiB); a
// faster row keeps the first ones, which are as good a sample.
const maxSamples = 2 << 20

// result is what one row of load measured.
type result struct {
	ops, errs int64
	elapsed   time.Duration
	latencies []time.Duration // of the operations that succeeded, sorted
	cpu       float64         // cores the measured process used, on average
	loadCPU   float64         // cores this process (the load) used
	busyCPU   float64         // cores busy on the whole machine
	firstErr  error
}

func (r result) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

// percentile is the q-quantile (0..1) of the latencies, nearest rank.
func (r result) percentile(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(r.latencies))+0.5) - 1
	return r.latencies[max(0, min(i, len(r.latencies)-1))]
}

// op is one operation of a load; worker is the caller's index, so an op
// can keep per-worker state without locks.
type op func(ctx context.Context, worker int) error

// load runs op in concurrency workers, each calling it again as soon as it
// returns, until done says so, and measures the CPU the process pid, this
// process and the whole machine used meanwhile.
func load(ctx context.Context, pid, concurrency int, done func() bool, do op) result {
	var (
		ops, errs atomic.Int64
		mu        sync.Mutex
		samples   []time.Duration
		firstErr  error
		wg        sync.WaitGroup
	)
	ticks0, cpuErr := cpuTicks(pid)
	self0, selfErr := cpuTicks(os.Getpid())
	busy0, busyErr := busyTicks()
	began := time.Now()
	for w := range concurrency {
		wg.Go(func() {
			var mine []time.Duration
			for !done() && ctx.Err() == nil {
				t := time.Now()
				if err := do(ctx, w); err != nil {
					if errs.Add(1) == 1 {
						mu.Lock()
						firstErr = err
						mu.Unlock()
					}
					continue
				}
				ops.Add(1)
				if len(mine) < maxSamples/concurrency {
					mine = append(mine, time.Since(t))
				}
			}
			mu.Lock()
			samples = append(samples, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	r := result{ops: ops.Load(), errs: errs.Load(), elapsed: time.Since(began), firstErr: firstErr}
	cores := func(from int64, err error, to int64, err1 error) float64 {
		if err != nil || err1 != nil {
			return 0
		}
		return float64(to-from) / clockTicks / r.elapsed.Seconds()
	}
	ticks1, cpuErr1 := cpuTicks(pid)
	self1, selfErr1 := cpuTicks(os.Getpid())
	busy1, busyErr1 := busyTicks()
	r.cpu = cores(ticks0, cpuErr, ticks1, cpuErr1)
	r.loadCPU = cores(self0, selfErr, self1, selfErr1)
	r.busyCPU = cores(busy0, busyErr, busy1, busyErr1)
	slices.Sort(samples)
	r.latencies = samples
	return r
}

// forDuration is a done for load: true once d has passed.
func forDuration(d time.Duration) func() bool {
	end := time.Now().Add(d)
	return func() bool { return time.Now().After(end) }
}
