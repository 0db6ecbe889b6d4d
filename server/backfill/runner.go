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

	mu      sync.Mutex
	running bool
}

// NewRunner returns a Runner; base gives the options of every run but its
// Restart and Progress.
func NewRunner(st State, list Lister, commit Commit, base Options) *Runner {
	return &Runner{st: st, list: list, commit: commit, base: base}
}

// Run runs a backfill (see Run), or fails with ErrInProgress while another
// runs. progress, when not nil, hears of each page after the base
// Options' Progress.
func (r *Runner) Run(ctx context.Context, restart bool, progress func(Progress)) (store.SyncState, error) {
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return store.SyncState{}, ErrInProgress
	}
	r.running = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running = false
		r.mu.Unlock()
	}()
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

// Pending reports whether a backfill is due at start: never run, or cut
// short.
func (r *Runner) Pending(ctx context.Context) (bool, error) {
	s, err := r.st.SyncState(ctx)
	return !s.Done, err
}
