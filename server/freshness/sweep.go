// Package freshness judges HEALTHY accounts stale: the provider has not
// scanned them for longer than the service's stale-after age. Staleness
// comes from the passing of time, not from a delivery, so a sweeper looks
// for it and logs each verdict as a freshness.stale entry; the log, which
// streams, outbound webhooks and rebuilds read, then tells it like any
// other change, and a rebuild derives the same freshness whatever the
// setting is by then.
package freshness

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// DefaultStaleAfter is how old an account's data may grow before it is
// stale: the provider rescans connected accounts about daily, so three
// days without a scan is no longer a late scan.
const DefaultStaleAfter = 72 * time.Hour

// DefaultInterval is how often a Sweeper looks for stale accounts.
const DefaultInterval = time.Minute

// Actor names the sweeper in the entries it commits.
const Actor = "freshness-sweeper"

// pageSize is how many candidates one read takes; a pass reads until none
// is left.
const pageSize = 500

// minPassGap spaces the passes that commits wake: under a flood of
// deliveries a pass a second is enough, and an idle one is one index
// lookup.
const minPassGap = time.Second

// Store is what a Sweeper reads; store.Store is one.
type Store interface {
	StaleCandidates(ctx context.Context, before time.Time, limit int) ([]store.StaleCandidate, error)
}

// Options tune a Sweeper; zero values take the defaults.
type Options struct {
	StaleAfter time.Duration
	Interval   time.Duration
	Logger     *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Judged, when set, hears how many accounts each pass judged stale.
	Judged func(n int)
}

// Sweeper commits a freshness.stale entry for each HEALTHY account whose
// data grew older than the stale-after age. Several replicas may sweep at
// once: an entry judged on a record that a scan, a change of state or
// another replica's verdict changed since is recorded only (OutcomeStale).
type Sweeper struct {
	st     Store
	commit func(context.Context, store.Delivery) (store.Result, error)
	opts   Options
	wake   chan struct{}
}

// New sweeps st, committing with commit (the intake batcher's Submit).
func New(st Store, commit func(context.Context, store.Delivery) (store.Result, error), o Options) *Sweeper {
	if o.StaleAfter <= 0 {
		o.StaleAfter = DefaultStaleAfter
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Sweeper{st: st, commit: commit, opts: o, wake: make(chan struct{}, 1)}
}

// Notify asks for a pass soon: a commit may have brought an account
// object scanned longer ago than the stale-after age, which should not
// read FRESH until the next interval. It never blocks; wake-ups coalesce.
func (s *Sweeper) Notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// StaleAfter is the age past which data is stale.
func (s *Sweeper) StaleAfter() time.Duration { return s.opts.StaleAfter }

// Run passes at once, then at each interval and wake-up (at most one a
// second) until ctx ends: accounts that grew stale while no process swept
// are judged at start-up.
func (s *Sweeper) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		n, err := s.Pass(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.opts.Logger.Warn("freshness sweep failed; trying again next interval", "error", err, "judged_stale", n)
		case n > 0:
			s.opts.Logger.Info("freshness sweep judged accounts stale", "judged_stale", n, "stale_after", s.opts.StaleAfter.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(minPassGap, s.opts.Interval)):
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// Pass judges every account whose data is older than the stale-after age
// now, and returns how many it judged stale.
func (s *Sweeper) Pass(ctx context.Context) (int, error) {
	judged := 0
	defer func() {
		if s.opts.Judged != nil {
			s.opts.Judged(judged)
		}
	}()
	now := s.opts.Now().UTC()
	before := now.Add(-s.opts.StaleAfter)
	for {
		page, err := s.st.StaleCandidates(ctx, before, pageSize)
		if err != nil {
			return judged, err
		}
		applied, err := s.judgePage(ctx, page, now)
		judged += applied
		if err != nil {
			return judged, err
		}
		// A verdict applied takes its record out of the candidates; a page
		// that applied none (records changed under the sweeper) would come
		// back the same.
		if len(page) < pageSize || applied == 0 {
			return judged, nil
		}
		// A pass over many (after --stale-after was shortened, say)
		// tells its progress.
		s.opts.Logger.Info("freshness sweep under way", "judged_stale", judged)
	}
}

// judgePage commits the verdicts on a page of candidates at once, so that
// they share commits (one each would cost an fsync each), and returns how
// many applied.
func (s *Sweeper) judgePage(ctx context.Context, page []store.StaleCandidate, now time.Time) (int, error) {
	var applied atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	for _, c := range page {
		g.Go(func() error {
			res, err := s.judge(ctx, c, now)
			if err != nil {
				return fmt.Errorf("account %s: %w", c.AccountID, err)
			}
			if res.Outcome == health.OutcomeApplied {
				applied.Add(1)
			}
			return nil
		})
	}
	err := g.Wait()
	return int(applied.Load()), err
}

func (s *Sweeper) judge(ctx context.Context, c store.StaleCandidate, now time.Time) (store.Result, error) {
	v := health.Staleness{FreshAsOf: c.FreshAsOf.UTC(), Since: c.FreshAsOf.Add(s.opts.StaleAfter).UTC()}
	body, err := EncodeStaleness(v)
	if err != nil {
		return store.Result{}, err
	}
	return s.commit(ctx, store.Delivery{Source: store.SourceAPI, Actor: Actor, Body: body, Verified: true, Decoded: health.Delivery{
		Event: health.EventAccountStale, AccountID: c.AccountID, UserID: c.UserID, ReceivedAt: now, Staleness: &v,
	}})
}

// stalenessBody is the body of a freshness.stale entry.
type stalenessBody struct {
	FreshAsOf time.Time `json:"fresh_as_of"`
	Since     time.Time `json:"stale_since"`
}

// EncodeStaleness is the body of v's entry.
func EncodeStaleness(v health.Staleness) ([]byte, error) {
	return json.Marshal(stalenessBody{FreshAsOf: v.FreshAsOf, Since: v.Since})
}

// DecodeStaleness reads the body of a freshness.stale entry back.
func DecodeStaleness(body []byte) (health.Staleness, error) {
	var b stalenessBody
	if err := json.Unmarshal(body, &b); err != nil || b.FreshAsOf.IsZero() || b.Since.IsZero() {
		return health.Staleness{}, fmt.Errorf("a freshness.stale entry's body is not one the freshness sweeper writes: %q", body)
	}
	return health.Staleness{FreshAsOf: b.FreshAsOf, Since: b.Since}, nil
}
