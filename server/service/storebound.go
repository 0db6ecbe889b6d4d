package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// storeReadTimeout bounds each read the server makes of the store: one
// page or one row, which takes milliseconds, so a store that takes this
// long has hung (a lost network path, a lock held elsewhere). Like
// pingTimeout, it is short enough that a caller retrying elsewhere beats
// waiting on.
const storeReadTimeout = 5 * time.Second

// errReadTimeout: storeReadTimeout ran out; the caller may retry. It wraps
// no context error, so the caller does not read it as its own deadline.
var errReadTimeout = fmt.Errorf("%w: the store did not answer within %s", store.ErrUnavailable, storeReadTimeout)

// boundedReads is the store as the server reads it: each read is bounded
// by storeReadTimeout and, on expiry, fails with errReadTimeout, while the
// caller's own deadline or cancel stays its error. Commits are bounded by
// the intake's batcher; Rebuild, ClaimDue, SaveSyncState and
// OldestUnconfirmed are the background workers', under their own contexts.
type boundedReads struct{ store.Store }

// boundReads wraps s, keeping it a store.Watcher when it is one.
func boundReads(s store.Store) store.Store {
	if w, ok := s.(store.Watcher); ok {
		return struct {
			boundedReads
			store.Watcher
		}{boundedReads{s}, w}
	}
	return boundedReads{s}
}

// bounded runs read under storeReadTimeout.
func bounded[T any](ctx context.Context, read func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, storeReadTimeout, errReadTimeout)
	defer cancel()
	v, err := read(ctx)
	if err != nil && errors.Is(context.Cause(ctx), errReadTimeout) {
		err = fmt.Errorf("%w (%v)", errReadTimeout, err)
	}
	return v, err
}

func (b boundedReads) GetHealth(ctx context.Context, accountID string) (health.Record, error) {
	return bounded(ctx, func(ctx context.Context) (health.Record, error) { return b.Store.GetHealth(ctx, accountID) })
}

func (b boundedReads) ListHealth(ctx context.Context, q store.HealthQuery) (store.HealthPage, error) {
	return bounded(ctx, func(ctx context.Context) (store.HealthPage, error) { return b.Store.ListHealth(ctx, q) })
}

func (b boundedReads) Summary(ctx context.Context) (store.Summary, error) {
	return bounded(ctx, b.Store.Summary)
}

func (b boundedReads) ListEntries(ctx context.Context, q store.EntryQuery) (store.EntryPage, error) {
	return bounded(ctx, func(ctx context.Context) (store.EntryPage, error) { return b.Store.ListEntries(ctx, q) })
}

func (b boundedReads) ReadChanges(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	return bounded(ctx, func(ctx context.Context) ([]store.Change, error) { return b.Store.ReadChanges(ctx, after, limit) })
}

func (b boundedReads) LastChangeSeq(ctx context.Context) (int64, error) {
	return bounded(ctx, b.Store.LastChangeSeq)
}

func (b boundedReads) ChangeSeqBefore(ctx context.Context, t time.Time) (int64, error) {
	return bounded(ctx, func(ctx context.Context) (int64, error) { return b.Store.ChangeSeqBefore(ctx, t) })
}

func (b boundedReads) CountChanges(ctx context.Context, q store.ChangeCountQuery) ([]store.ChangeCount, error) {
	return bounded(ctx, func(ctx context.Context) ([]store.ChangeCount, error) { return b.Store.CountChanges(ctx, q) })
}

func (b boundedReads) Derivation(ctx context.Context) (store.Derivation, error) {
	return bounded(ctx, b.Store.Derivation)
}

func (b boundedReads) SyncState(ctx context.Context) (store.SyncState, error) {
	return bounded(ctx, b.Store.SyncState)
}
