package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/accounthealth/accounthealth/server/store"
)

// Guard is a store's closed flag and the wrapping of the errors its methods
// return: "<Driver>: <op>: <error>". The zero value, with Driver set, is
// an open store.
type Guard struct {
	Driver string // "sqlite", "postgres"
	// Transient reports whether a database error is one a retry can fix;
	// Fail then adds store.ErrUnavailable. Each driver classifies its own
	// library's errors; nil: none is.
	Transient func(error) bool
	closed    atomic.Bool
}

// Close marks the store closed; it fails with store.ErrClosed when it
// already was.
func (g *Guard) Close() error {
	if !g.closed.CompareAndSwap(false, true) {
		return g.wrap("close", store.ErrClosed)
	}
	return nil
}

// Closed reports whether Close was called.
func (g *Guard) Closed() bool { return g.closed.Load() }

// CheckOpen fails with store.ErrClosed once the store is closed.
func (g *Guard) CheckOpen(op string) error {
	if g.closed.Load() {
		return g.wrap(op, store.ErrClosed)
	}
	return nil
}

// Fail wraps an error for the caller. A call that raced with Close fails
// with whatever the database library says about closed handles; adding
// store.ErrClosed lets callers test one sentinel. A transient failure gets
// store.ErrUnavailable, unless the caller's ctx ended: then the caller
// gave up, and the error stays ctx's.
func (g *Guard) Fail(op string, err error) error {
	switch {
	case g.closed.Load() && !errors.Is(err, store.ErrClosed):
		return fmt.Errorf("%s: %s: %w: %w", g.Driver, op, store.ErrClosed, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The caller gave up: whatever the database said then is no
		// verdict on the store.
	case g.Transient != nil && g.Transient(err):
		return fmt.Errorf("%s: %s: %w: %w", g.Driver, op, store.ErrUnavailable, err)
	}
	return g.wrap(op, err)
}

func (g *Guard) wrap(op string, err error) error {
	return fmt.Errorf("%s: %s: %w", g.Driver, op, err)
}
