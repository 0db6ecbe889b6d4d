package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/accounthealth/accounthealth/server/store"
)

// Timing of WatchChanges.
const (
	// Reconnection waits from the first to the last delay, doubling, with
	// jitter so that replicas do not all knock at once after an outage.
	firstRetryDelay = 100 * time.Millisecond
	lastRetryDelay  = 5 * time.Second
	// After this long without a notification the connection is pinged: a
	// peer that vanished without closing the connection (a failover, a
	// dropped NAT entry) would otherwise go unnoticed for as long as TCP
	// keepalives take.
	listenIdle  = time.Minute
	pingTimeout = 10 * time.Second
)

// WatchChanges calls wake whenever a commit on any replica may have appended
// changes to this log, until ctx ends or the store is closed; it then
// returns an error wrapping ctx's error or store.ErrClosed.
//
// It listens on a connection of its own, outside the pool, for the NOTIFY
// each such commit sends. When that connection fails it reconnects, with
// backoff, for as long as it runs. It also calls wake each time it starts
// listening, the first time included: a commit made while nobody listened
// sent a notification nobody heard, and the caller must read the log to
// find out.
func (s *Store) WatchChanges(ctx context.Context, wake func()) error {
	const op = "watch changes"
	s.mu.Lock()
	if err := s.guard.CheckOpen(op); err != nil {
		s.mu.Unlock()
		return err
	}
	s.watchers.Add(1)
	s.mu.Unlock()
	defer s.watchers.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()

	for delay := firstRetryDelay; ; delay = min(2*delay, lastRetryDelay) {
		if s.listen(ctx, wake) {
			delay = firstRetryDelay
		}
		// The wait starts at half the delay, so it never reaches zero.
		select {
		case <-ctx.Done():
			if s.closing.Err() != nil {
				return fmt.Errorf("postgres: %s: %w", op, store.ErrClosed)
			}
			return fmt.Errorf("postgres: %s: %w", op, context.Cause(ctx))
		case <-time.After(delay/2 + rand.N(delay/2)):
		}
	}
}

// listen connects, listens and calls wake for every notification until the
// connection fails or ctx ends. It reports whether it got as far as
// listening, so that the caller's backoff restarts.
func (s *Store) listen(ctx context.Context, wake func()) (listened bool) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return false
	}
	// A context of its own: ctx may be over, and closing must not hang.
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(ctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return false
	}
	wake()
	for {
		idle, cancel := context.WithTimeout(ctx, listenIdle)
		_, err := conn.WaitForNotification(idle)
		cancel()
		switch {
		case err == nil:
			wake()
		case ctx.Err() != nil:
			return true
		case idle.Err() != nil:
			// A timeout leaves the connection usable: check it is alive.
			ping, cancel := context.WithTimeout(ctx, pingTimeout)
			err := conn.Ping(ping)
			cancel()
			if err != nil {
				return true
			}
		default:
			return true
		}
	}
}
