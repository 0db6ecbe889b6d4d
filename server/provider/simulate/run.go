package simulate

import (
	"context"
	"errors"
	"maps"
	"math"
	"slices"
	"time"
)

// maxRate bounds Config.Rate so that the pacing interval stays well above
// the timer's resolution.
const maxRate = 100_000

// progressEvery is how often Config.OnProgress hears from a run.
const progressEvery = time.Second

// Stats counts a run's deliveries. Counts are totals since the start; Rate,
// P50 and P99 cover the last second in progress reports and the whole run
// in the final summary.
type Stats struct {
	Elapsed time.Duration
	Sent    int // deliveries completed, duplicates included
	OK      int // answered 200
	Refused int // turned down for good (4xx but 429)
	Failed  int // no 200 even after the retry: 5xx, 429 or no answer
	Retried int // deliveries that needed the retry
	// Missed counts paced sends skipped because every account with work
	// was still waiting for an answer, or Concurrency requests were in
	// flight: the server is not keeping up with Rate.
	Missed   int
	Outcomes map[string]int // of the accepted deliveries: APPLIED, STALE, ...
	Rate     float64        // deliveries completed per second
	P50, P99 time.Duration  // latency of the answered attempts
}

// Load describes a load run: Accounts accounts living realistic lives
// (mostly healthy rescans, some failures, disconnections, outages and
// recoveries, a few removals replaced by new accounts), paced at
// Config.Rate, for Duration.
type Load struct {
	Accounts int
	Duration time.Duration
}

// Send sends ds after applying Duplicates and Reorder, each account's
// deliveries in order, different accounts concurrently. It returns when
// every delivery has a result or ctx is done.
func (s *Sender) Send(ctx context.Context, ds []Delivery) Stats {
	var lanes []*lane
	byAccount := map[string]*lane{}
	for _, d := range arrange(ds, s.cfg.Duplicates, s.cfg.Reorder, s.rng) {
		l := byAccount[d.Account]
		if l == nil {
			l = &lane{}
			byAccount[d.Account] = l
			lanes = append(lanes, l)
		}
		l.queue = append(l.queue, d)
	}
	return s.run(ctx, lanes, 0)
}

// Load runs l with accounts from g, which it uses until it returns. It
// stops sending after l.Duration, or when ctx is done, and returns once
// the requests in flight have their answers.
func (s *Sender) Load(ctx context.Context, g *Generator, l Load) (Stats, error) {
	if l.Accounts <= 0 || l.Duration <= 0 || s.cfg.Rate <= 0 {
		return Stats{}, errors.New("load: accounts, duration and rate must be positive")
	}
	lanes := make([]*lane, l.Accounts)
	for i := range lanes {
		a := g.NewAccount()
		lanes[i] = &lane{refill: func() []Delivery {
			// Two steps at a time, so that Reorder also swaps across
			// steps (a rescan and the disconnection after it).
			var next []Delivery
			for range 2 {
				if a.removed {
					// A user who connects again gets a new account.
					a = g.NewAccount()
				}
				next = append(next, lifeStep(a, g.rng)...)
			}
			return arrange(next, s.cfg.Duplicates, s.cfg.Reorder, s.rng)
		}}
	}
	return s.run(ctx, lanes, l.Duration), nil
}

// lane is one account's (in Load, one slot's) deliveries: they are sent one
// at a time, so the server sees them in the order chosen.
type lane struct {
	queue  []Delivery
	refill func() []Delivery // nil: the lane ends with its queue
	busy   bool              // a delivery of the lane is in flight
}

func (l *lane) pending() bool { return len(l.queue) > 0 || l.refill != nil }

type laneResult struct {
	lane *lane
	res  Result
}

// dispatch starts deliveries on idle lanes, at most Concurrency at once.
type dispatch struct {
	s        *Sender
	ctx      context.Context
	lanes    []*lane
	results  chan laneResult
	inflight int
	cursor   int
	// paced: lanes take turns so that every account gets its share of
	// the rate; unpaced, earlier lanes go first, so that with Concurrency
	// 1 deliveries go out exactly in the order given.
	paced bool
}

// next starts the next delivery of the first idle lane with work and
// reports whether it did.
func (d *dispatch) next() bool {
	if d.inflight >= d.s.cfg.Concurrency {
		return false
	}
	for i := range d.lanes {
		l := d.lanes[(d.cursor+i)%len(d.lanes)]
		if l.busy {
			continue
		}
		if len(l.queue) == 0 && l.refill != nil {
			l.queue = l.refill()
		}
		if len(l.queue) == 0 {
			continue
		}
		del := l.queue[0]
		l.queue = l.queue[1:]
		l.busy = true
		d.inflight++
		if d.paced {
			d.cursor = (d.cursor + i + 1) % len(d.lanes)
		}
		go func() { d.results <- laneResult{l, d.s.deliver(d.ctx, del)} }()
		return true
	}
	return false
}

func (d *dispatch) pending() bool { return slices.ContainsFunc(d.lanes, (*lane).pending) }

// run sends the lanes' deliveries until they are all sent, duration (if
// positive) is over or ctx is done, then waits for the requests in flight.
// All bookkeeping happens in this goroutine; requests run in their own.
func (s *Sender) run(ctx context.Context, lanes []*lane, duration time.Duration) Stats {
	start := time.Now()
	st := Stats{Outcomes: map[string]int{}}
	var latencies []time.Duration
	paced := s.cfg.Rate > 0
	d := &dispatch{s: s, ctx: ctx, lanes: lanes, results: make(chan laneResult, s.cfg.Concurrency), paced: paced}
	var tick, deadline, progress <-chan time.Time
	if paced {
		t := time.NewTicker(time.Duration(float64(time.Second) / s.cfg.Rate))
		defer t.Stop()
		tick = t.C
	}
	if duration > 0 {
		t := time.NewTimer(duration)
		defer t.Stop()
		deadline = t.C
	}
	if s.cfg.OnProgress != nil {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		progress = t.C
	}
	lastAt, lastSent, lastLatency := start, 0, 0
	done := ctx.Done()
	stopping := false
	for {
		if !stopping && tick == nil {
			for d.next() {
			}
		}
		if d.inflight == 0 && (stopping || !d.pending()) {
			break
		}
		select {
		case <-done:
			stopping, done = true, nil
		case <-deadline:
			stopping = true
		case <-tick:
			// A ticker drops ticks it cannot deliver, so sending never
			// runs ahead of Rate; a tick without a send is a miss.
			if !stopping && !d.next() && d.pending() {
				st.Missed++
			}
		case r := <-d.results:
			d.inflight--
			r.lane.busy = false
			st.record(r.res)
			if r.res.Status != 0 {
				latencies = append(latencies, r.res.Latency)
			}
			if s.cfg.OnResult != nil {
				s.cfg.OnResult(r.res)
			}
		case now := <-progress:
			p := st.over(now.Sub(lastAt), st.Sent-lastSent, latencies[lastLatency:])
			p.Elapsed = now.Sub(start)
			s.cfg.OnProgress(p)
			lastAt, lastSent, lastLatency = now, st.Sent, len(latencies)
		}
	}
	elapsed := time.Since(start)
	final := st.over(elapsed, st.Sent, latencies)
	final.Elapsed = elapsed
	return final
}

func (st *Stats) record(r Result) {
	st.Sent++
	if r.Attempts > 1 {
		st.Retried++
	}
	switch {
	case r.OK():
		if r.Outcome != "" {
			st.Outcomes[r.Outcome]++
		}
		st.OK++
	case r.Refused():
		st.Refused++
	default:
		st.Failed++
	}
}

// over returns a copy of st with the rate and latency of sent deliveries
// over period.
func (st Stats) over(period time.Duration, sent int, latencies []time.Duration) Stats {
	st.Outcomes = maps.Clone(st.Outcomes)
	if period > 0 {
		st.Rate = float64(sent) / period.Seconds()
	}
	sorted := slices.Sorted(slices.Values(latencies))
	st.P50, st.P99 = percentile(sorted, 0.50), percentile(sorted, 0.99)
	return st
}

// percentile of sorted durations, nearest rank; zero for none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(math.Ceil(p*float64(len(sorted))))-1]
}
