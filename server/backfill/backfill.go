// Package backfill brings the store up to what the provider holds: it lists
// every account at the provider and records each account object as a
// delivery of our own, under the same ordering rules as a webhook (an
// object older than the one held is ignored; an identical one is a
// duplicate), so that accounts connected before the service was installed,
// or whose webhooks were lost, are known. It resumes from the last page it
// committed.
package backfill

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/refresh"
	"github.com/accounthealth/accounthealth/server/store"
)

// Actor names backfilled account objects in the timeline.
const Actor = "provider-sync"

// PageSize is the provider's largest page.
const PageSize = 200

// Lister walks the provider's account pages; *provider.Client is one.
type Lister interface {
	AccountPages(ctx context.Context, params provider.ListAccountsParams) iter.Seq2[provider.AccountPage, error]
}

// State keeps the backfill's progress; store.Store is one.
type State interface {
	SyncState(ctx context.Context) (store.SyncState, error)
	SaveSyncState(ctx context.Context, s store.SyncState) error
}

// Commit stores one delivery; normally the intake batcher's Submit, which
// groups concurrent ones into one commit.
type Commit func(context.Context, store.Delivery) (store.Result, error)

// Progress is what a running backfill reports after each page and while it
// waits for the provider.
type Progress struct {
	store.SyncState
	// Rate is the accounts seen per second in this run.
	Rate float64
	// Expected guesses how many accounts the provider lists, for an
	// estimate of the time left; 0: no guess (see Options.Expected).
	Expected int64
	// Waiting is set while the provider fails: the backfill retries the
	// page after a pause, Waiting says why.
	Waiting error
}

// Options tune a run; zero values take defaults.
type Options struct {
	// Restart starts from the first page even when a backfill finished.
	Restart bool
	// Progress hears of each page; nil: nothing.
	Progress func(Progress)
	// Expected, when set, guesses how many accounts the provider lists
	// (the provider does not say); called once a run.
	Expected func(context.Context) int64
	// Concurrency is how many deliveries of a page are committed at once
	// (they share commits); default 32.
	Concurrency int
	// RetryMin and RetryMax bound the pause before a page is asked again
	// after the provider failed; defaults 1s and 1m.
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger
	// Now stamps deliveries and state; default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.RetryMin <= 0 {
		o.RetryMin = time.Second
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(time.Minute, o.RetryMin)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Run backfills until the provider's last page is committed or ctx ends.
// A provider that fails pauses it (with backoff, one log line per outage)
// rather than failing it; the store failing ends it with the error, and
// the next run resumes after the last committed page. A backfill that
// finished returns its state at once unless o.Restart.
func Run(ctx context.Context, st State, list Lister, commit Commit, o Options) (store.SyncState, error) {
	o = o.withDefaults()
	state, err := st.SyncState(ctx)
	if err != nil {
		return state, err
	}
	if state.Done && !o.Restart {
		return state, nil
	}
	if state.Done || state.StartedAt.IsZero() {
		state = store.SyncState{StartedAt: o.Now().UTC()}
	}
	r := &run{st: st, list: list, commit: commit, o: o, state: state, start: o.Now(), seenAtStart: state.Seen}
	if o.Expected != nil {
		r.expected = o.Expected(ctx)
	}
	return r.state, r.loop(ctx)
}

type run struct {
	st          State
	list        Lister
	commit      Commit
	o           Options
	state       store.SyncState
	start       time.Time
	seenAtStart int64
	expected    int64
}

// loop walks the pages from the saved cursor, walking again from the last
// committed page after the provider failed.
func (r *run) loop(ctx context.Context) error {
	pause := r.o.RetryMin
	var outage error
	for {
		err := r.walk(ctx)
		switch {
		case err == nil:
			if outage != nil {
				r.o.Logger.Info("provider answers again; backfill resumed")
			}
			return nil
		case !provider.IsTransient(err) || ctx.Err() != nil:
			return err
		}
		if outage == nil {
			r.o.Logger.Warn("provider failing; backfill paused, retrying with backoff", "error", err, "after_pages", r.state.Pages)
		}
		outage = err
		r.report(err)
		if !sleep(ctx, pause) {
			return ctx.Err()
		}
		pause = min(2*pause, r.o.RetryMax)
	}
}

// walk commits pages until the last one, or the first error.
func (r *run) walk(ctx context.Context) error {
	params := provider.ListAccountsParams{Limit: PageSize, Cursor: r.state.Cursor}
	for page, err := range r.list.AccountPages(ctx, params) {
		if err == nil {
			err = ctx.Err() // stop between pages, whatever the lister does
		}
		if err != nil {
			return err
		}
		for _, skipped := range page.Unusable {
			r.o.Logger.Warn("backfill skipped an account whose id cannot be used", "error", skipped)
		}
		applied, err := r.commitPage(ctx, page.Accounts)
		if err != nil {
			return err
		}
		r.state.Pages++
		r.state.Seen += int64(len(page.Accounts))
		r.state.Applied += applied
		r.state.Cursor = page.NextCursor
		r.state.UpdatedAt = r.o.Now().UTC()
		if page.NextCursor == "" {
			r.state.Done, r.state.FinishedAt = true, r.state.UpdatedAt
		}
		if err := r.st.SaveSyncState(ctx, r.state); err != nil {
			return fmt.Errorf("saving the backfill's progress: %w", err)
		}
		r.report(nil)
	}
	return nil
}

// commitPage records a page's accounts, several at a time so that they
// share commits, and counts those that changed health.
func (r *run) commitPage(ctx context.Context, accounts []provider.Account) (int64, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.o.Concurrency)
	results := make([]store.Result, len(accounts))
	at := r.o.Now().UTC()
	for i, a := range accounts {
		g.Go(func() error {
			d := refresh.Delivery(a, at)
			d.Actor, d.Name = Actor, "GET /v2/accounts"
			res, err := r.commit(gctx, d)
			if err != nil {
				return fmt.Errorf("recording account %s: %w", a.ID, err)
			}
			results[i] = res
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	var applied int64
	for _, res := range results {
		if res.Outcome == health.OutcomeApplied {
			applied++
		}
	}
	return applied, nil
}

func (r *run) report(waiting error) {
	if r.o.Progress == nil {
		return
	}
	p := Progress{SyncState: r.state, Waiting: waiting, Expected: r.expected}
	if el := r.o.Now().Sub(r.start).Seconds(); el > 0 {
		p.Rate = float64(r.state.Seen-r.seenAtStart) / el
	}
	r.o.Progress(p)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
