package backfill

import (
	"context"
	"errors"
	"sync"

	"github.com/accounthealth/accounthealth/server/store"
)

// ErrInProgress: a backfill already runs in this process.
var ErrInProgress = errors.New("a backfill is already running")

// Runner runs one backfill at a time in a process, for the API and for
// serve's start alike.
type Runner struct {
	st     State
	list   Lister
	commit Commit
	base   Options

	mu sync.Mutex
	// current is the running backfill's context, nil when none runs;
	// finished closes when it returns.
	current  context.Context
	finished chan struct{}
}

// NewRunner returns a Runner; base gives the options of every run but its
// Restart and Progress.
func NewRunner(st State, list Lister, commit Commit, base Options) *Runner {
	return &Runner{st: st, list: list, commit: commit, base: base}
}

// Run runs a backfill (see Run), or fails with ErrInProgress while another
// runs. One whose caller has gone (its context is done) is waited for, as
// it stops at its next page, and then taken over. progress, when not nil,
// hears of each page after the base Options' Progress.
func (r *Runner) Run(ctx context.Context, restart bool, progress func(Progress)) (store.SyncState, error) {
	if err := r.begin(ctx); err != nil {
		return store.SyncState{}, err
	}
	defer r.end()
	o := r.base
	o.Restart = restart
	o.Progress = func(p Progress) {
		if r.base.Progress != nil {
			r.base.Progress(p)
		}
		if progress != nil {
			progress(p)
		}
	}
	return Run(ctx, r.st, r.list, r.commit, o)
}

// begin makes ctx's backfill the running one.
func (r *Runner) begin(ctx context.Context) error {
	for {
		r.mu.Lock()
		if r.current == nil {
			r.current, r.finished = ctx, make(chan struct{})
			r.mu.Unlock()
			return nil
		}
		abandoned, finished := r.current.Err() != nil, r.finished
		r.mu.Unlock()
		if !abandoned {
			return ErrInProgress
		}
		select {
		case <-finished:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (r *Runner) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.finished)
	r.current, r.finished = nil, nil
}

// Pending reports whether a backfill is due at start: never run, or cut
// short.
func (r *Runner) Pending(ctx context.Context) (bool, error) {
	s, err := r.st.SyncState(ctx)
	return !s.Done, err
}
