// Package reconcile keeps every account's health true to the provider even
// when webhooks are lost: at each interval it fetches the accounts whose
// account object was last seen longer ago than a maximum age, and every
// account left unconfirmed (a delivery without the object), oldest first.
// Each answer is applied like a webhook snapshot, so it never overrides a
// newer one; a 404 ends the account REMOVED. The accounts a round fetches
// are leased in the shared store, so that with several replicas each
// account is fetched by one of them at a time.
package reconcile

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/store"
)

// Defaults of Options: an account is fetched at least daily, and a round a
// minute fetches up to 600 accounts, 10 a second on average: 36,000 an hour,
// well within the provider's 50 requests a second and room for tens of
// thousands of accounts.
const (
	DefaultInterval    = time.Minute
	DefaultMaxAge      = 24 * time.Hour
	DefaultPerRound    = 600
	DefaultConcurrency = 4
)

// Claimer leases the accounts due for a fetch; store.Store is one.
type Claimer interface {
	ClaimDue(ctx context.Context, q store.DueQuery) ([]store.DueAccount, error)
	OldestUnconfirmed(ctx context.Context) (time.Time, bool, error)
}

// Fetcher fetches one account and commits the answer; *refresh.Refresher
// is one.
type Fetcher interface {
	Fetch(ctx context.Context, accountID string) (store.Result, error)
}

// Observer hears what rounds do, for metrics; the zero value hears nothing.
type Observer struct {
	// Fetched: one account fetched; outcome is "changed", "unchanged",
	// "removed" or "failed".
	Fetched func(outcome string)
	// Lag: how long the oldest unconfirmed account has waited (0: none).
	Lag func(time.Duration)
}

// Options tune a Reconciler; zero values take the defaults.
type Options struct {
	// Holder names this replica in the leases; required.
	Holder      string
	Interval    time.Duration
	MaxAge      time.Duration
	PerRound    int
	Concurrency int
	Observer    Observer
	Logger      *slog.Logger
	Now         func() time.Time
}

// Reconciler runs the rounds.
type Reconciler struct {
	claim Claimer
	fetch Fetcher
	o     Options
	// outage is the provider failure that paused reconciliation, nil
	// while the provider answers; it is logged once when it begins and
	// once when it ends.
	outage error
}

// New returns a Reconciler.
func New(c Claimer, f Fetcher, o Options) *Reconciler {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.PerRound <= 0 {
		o.PerRound = DefaultPerRound
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Reconciler{claim: c, fetch: f, o: o}
}

// Run runs a round at once, then one per interval, until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	for {
		if _, err := r.Round(ctx); err != nil && ctx.Err() == nil {
			r.o.Logger.Warn("reconciliation round failed; trying again next interval", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RoundResult counts what one round did.
type RoundResult struct {
	Claimed, Changed, Unchanged, Removed, Failed int
	// Paused is set when the provider failed and the round stopped early;
	// the accounts it did not fetch stay due (their leases expire).
	Paused bool
}

// Round claims the accounts due and fetches them, a few at a time. While
// the provider fails, a round tries one account only, so an outage costs
// one request an interval and one log line.
func (r *Reconciler) Round(ctx context.Context) (RoundResult, error) {
	var res RoundResult
	defer r.reportLag(ctx)
	now := r.o.Now()
	limit := r.o.PerRound
	if r.outage != nil {
		limit = 1
	}
	due, err := r.claim.ClaimDue(ctx, store.DueQuery{
		Holder: r.o.Holder, Now: now, ConfirmedBefore: now.Add(-r.o.MaxAge), LeaseFor: r.o.Interval, Limit: limit,
	})
	if err != nil {
		return res, err
	}
	res.Claimed = len(due)
	work := make(chan string)
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		stopped = make(chan struct{})
		once    sync.Once
	)
	for range min(r.o.Concurrency, len(due)) {
		wg.Go(func() {
			for id := range work {
				select {
				case <-stopped:
					continue // paused: leave the rest due
				default:
				}
				outcome, err := r.fetchOne(ctx, id)
				mu.Lock()
				res.count(outcome)
				if err != nil && provider.IsTransient(err) {
					r.pause(err)
					res.Paused = true
					once.Do(func() { close(stopped) })
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, d := range due {
		select {
		case work <- d.AccountID:
		case <-stopped:
			break feed
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if !res.Paused && res.Claimed > 0 && r.outage != nil {
		r.o.Logger.Info("provider answers again; reconciliation resumed", "outage", r.outage)
		r.outage = nil
	}
	return res, nil
}

// fetchOne fetches one account and names what it did.
func (r *Reconciler) fetchOne(ctx context.Context, id string) (string, error) {
	got, err := r.fetch.Fetch(ctx, id)
	outcome := "unchanged"
	switch {
	case err != nil:
		outcome = "failed"
		if !provider.IsTransient(err) && ctx.Err() == nil {
			r.o.Logger.Warn("reconciliation could not fetch an account", "account", id, "error", err)
		}
	case got.Change != nil && got.Change.State == health.StateRemoved:
		outcome = "removed"
	case got.Outcome == health.OutcomeApplied && got.Change != nil:
		outcome = "changed"
	}
	if r.o.Observer.Fetched != nil {
		r.o.Observer.Fetched(outcome)
	}
	return outcome, err
}

func (res *RoundResult) count(outcome string) {
	switch outcome {
	case "changed":
		res.Changed++
	case "removed":
		res.Removed++
	case "failed":
		res.Failed++
	default:
		res.Unchanged++
	}
}

// pause records an outage, logging its beginning only.
func (r *Reconciler) pause(err error) {
	if r.outage == nil {
		r.o.Logger.Warn("provider failing; reconciliation paused, probing once an interval", "error", err)
	}
	r.outage = err
}

func (r *Reconciler) reportLag(ctx context.Context) {
	if r.o.Observer.Lag == nil {
		return
	}
	oldest, ok, err := r.claim.OldestUnconfirmed(ctx)
	switch {
	case err != nil:
		return
	case !ok:
		r.o.Observer.Lag(0)
	default:
		r.o.Observer.Lag(max(r.o.Now().Sub(oldest), 0))
	}
}
