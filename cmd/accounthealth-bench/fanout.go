package main

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// fanoutSenders send the paced deliveries: enough that a pace of a few
// thousand a second holds while each waits some milliseconds for its answer.
const fanoutSenders = 64

// fanoutRows measure the stream's fan-out: deliveries paced at -fanout-rate
// for the row's duration while N subscribers (for each N of
// -fanout-subscribers), in a process of their own, read StreamDisconnections
// over gRPC (250 streams a connection), whose events the service encodes
// once for all of them; one delivery in ten is an event and, at the most subscribers,
// also every delivery. Each row gives the events' latency from the
// service's receipt to a subscriber.
func (r *storeRun) fanoutRows(ctx context.Context) error {
	if len(r.cfg.fanoutSubscribers) == 0 {
		return nil
	}
	most := slices.Max(r.cfg.fanoutSubscribers)
	for _, n := range r.cfg.fanoutSubscribers {
		for _, every := range []int64{10, 1} {
			if every == 1 && n != most {
				continue
			}
			if err := r.fanoutRow(ctx, n, every); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *storeRun) fanoutRow(ctx context.Context, n int, every int64) error {
	subs, err := startSubscribers(n, grpcScheme+r.svc.grpc)
	if err != nil {
		return err
	}
	before := len(r.ledger.ackedIDs)
	s := newSender(webhookURL(r.svc.webhook), fanoutSenders, r.bodies, r.ledger)
	s.every = every
	var res result
	profile := n == slices.Max(r.cfg.fanoutSubscribers) && every == 10
	if err := r.profiled(ctx, profile, "fanout", func() error {
		res = load(ctx, r.svc.pid(), fanoutSenders, pacedFor(r.cfg.duration, r.cfg.fanoutRate), s.send)
		return nil
	}); err != nil {
		return err
	}
	s.collect()
	intakeErr := r.ledger.balance()
	if intakeErr != nil {
		intakeErr = voidError{intakeErr}
	}
	which := "1 in 10"
	if every == 1 {
		which = "every one"
	}
	name := fmt.Sprintf("stream fan-out: deliveries paced at %.0f/s, %s an event, subscribers over gRPC: %d", r.cfg.fanoutRate, which, n)
	return r.addStreamRow(name, fanoutSenders, res, nil, subs, r.eventsSince(before, every), intakeErr)
}

// eventsSince counts the deliveries acknowledged since the ledger held
// before of them that are in error: one in every.
func (r *storeRun) eventsSince(before int, every int64) int64 {
	var events int64
	for _, id := range r.ledger.ackedIDs[before:] {
		if id%every == 0 {
			events++
		}
	}
	return events
}

// pacedFor is a done for load that paces the calls: the ith waits for its
// start, i/rate seconds after the first, before load times it (at once
// when it is late); true once d has passed, so a service that falls
// behind shows as a lower rate.
func pacedFor(d time.Duration, rate float64) func() bool {
	start := time.Now()
	end := start.Add(d)
	var next atomic.Int64
	return func() bool {
		at := start.Add(time.Duration(float64(next.Add(1)-1) / rate * float64(time.Second)))
		if at.After(end) || time.Now().After(end) {
			return true
		}
		time.Sleep(time.Until(at))
		return false
	}
}
