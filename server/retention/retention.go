// Package retention keeps the store bounded: at each interval it runs one
// pruning pass (store.Store.Prune), which removes delivery bodies and the
// outbound messages done with older than the retention, and the data of
// accounts removed longer ago than the removed retention, while records,
// changes and API actions stay (see store.RunPrune). Passes are idempotent and cheap to race, so every
// replica runs its own.
package retention

import (
	"context"
	"log/slog"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// DefaultInterval is how often a pass runs: ages are days, so a pass every
// ten minutes keeps each one small.
const DefaultInterval = 10 * time.Minute

// Pruner runs a pruning pass; store.Store is one.
type Pruner interface {
	Prune(ctx context.Context, o store.PruneOptions) (store.PruneReport, error)
}

// Options tune a Runner. Retention and RemovedRetention are those of
// store.PruneOptions (0: that kind is kept for ever).
type Options struct {
	Retention, RemovedRetention time.Duration
	// Interval between passes; 0 means DefaultInterval.
	Interval time.Duration
	// Decode is store.PruneOptions.Decode (rebuild.Decode in the service).
	Decode func(store.Entry) (health.Delivery, error)
	// Observer hears each pass, for metrics: what it removed, when it
	// ended, how long it took and its error.
	Observer func(r store.PruneReport, end time.Time, elapsed time.Duration, err error)
	Logger   *slog.Logger
	// Now is the clock ages count by; time.Now when nil.
	Now func() time.Time
}

// Runner runs the passes.
type Runner struct {
	p Pruner
	o Options
}

// New returns a Runner over p.
func New(p Pruner, o Options) *Runner {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{p: p, o: o}
}

// Run runs a pass at once, then one per interval, until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	for {
		_, _ = r.Pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Pass runs one pass, logs what it did and tells the observer. A failed
// pass is logged and retried at the next interval: what it committed
// stays, and the next one goes on from there.
func (r *Runner) Pass(ctx context.Context) (store.PruneReport, error) {
	start := r.o.Now()
	rep, err := r.p.Prune(ctx, store.PruneOptions{
		Retention: r.o.Retention, RemovedRetention: r.o.RemovedRetention, Decode: r.o.Decode, Now: r.o.Now,
	})
	end := r.o.Now()
	elapsed := end.Sub(start)
	if r.o.Observer != nil {
		r.o.Observer(rep, end, elapsed, err)
	}
	attrs := []any{"accounts", rep.Accounts, "entries_deleted", rep.Deleted, "bodies_removed", rep.Stripped,
		"objects_removed", rep.Objects, "messages_removed", rep.Messages, "bytes", rep.Bytes, "undecodable", rep.Undecodable, "duration", elapsed}
	switch {
	case ctx.Err() != nil:
	case err != nil:
		r.o.Logger.Warn("pruning failed; the next pass goes on from there", append(attrs, "error", err)...)
	default:
		r.o.Logger.Info("pruned", attrs...)
	}
	return rep, err
}
