package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/accounthealth/accounthealth/internal/eventually"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
)

// wakeTimeout bounds how long a wake-up may take. They come within
// milliseconds; the margin is for loaded CI machines.
const wakeTimeout = 5 * time.Second

// watch runs s.WatchChanges until the test ends; wake-ups arrive on the
// returned channel, WatchChanges' result on the other.
func watch(t *testing.T, ctx context.Context, s *Store) (<-chan struct{}, <-chan error) {
	wakes, done, exited := make(chan struct{}, 1), make(chan error, 1), make(chan struct{})
	go func() {
		defer close(exited)
		done <- s.WatchChanges(ctx, func() {
			select {
			case wakes <- struct{}{}:
			default: // one pending wake-up stands for any number
			}
		})
	}()
	t.Cleanup(func() {
		s.Close()
		<-exited
	})
	return wakes, done
}

func waitWake(t *testing.T, wakes <-chan struct{}, after string) {
	t.Helper()
	start := time.Now()
	select {
	case <-wakes:
		t.Logf("woken %v after %s", time.Since(start).Round(10*time.Microsecond), after)
	case <-time.After(wakeTimeout):
		t.Fatalf("no wake-up within %v after %s", wakeTimeout, after)
	}
}

func noWake(t *testing.T, wakes <-chan struct{}, after string) {
	t.Helper()
	select {
	case <-wakes:
		t.Fatalf("woken after %s", after)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestWatchChangesAcrossReplicas: a store watching the log hears about
// changes another store (another replica) commits, also after its
// listening connection was killed, and finds them in the log.
func TestWatchChangesAcrossReplicas(t *testing.T) {
	databaseURL := pgtest.URL(t)
	a, b := openURL(t, databaseURL), openURL(t, databaseURL)
	wakes, _ := watch(t, t.Context(), b)
	waitWake(t, wakes, "starting to listen")

	ingestOn := func(s *Store, i int) {
		t.Helper()
		res, err := s.Ingest(t.Context(), []store.Delivery{flip(1, i)})
		if err != nil || res[0].Change == nil {
			t.Fatalf("Ingest: %+v, %v; want a change", res, err)
		}
	}
	ingestOn(a, 0)
	waitWake(t, wakes, "an ingest on the other replica")
	if seq, err := b.LastChangeSeq(t.Context()); err != nil || seq == 0 {
		t.Errorf("LastChangeSeq on the watching replica = %d, %v; want the new change", seq, err)
	}

	// An ingest that appends no change (a redelivery) sends no notification.
	if _, err := a.Ingest(t.Context(), []store.Delivery{flip(1, 0)}); err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	noWake(t, wakes, "an ingest without changes")

	pid := listener(t, a, b.channel, 0)
	if _, err := a.pool.Exec(t.Context(), `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatalf("terminate the listener: %v", err)
	}
	waitWake(t, wakes, "the listening connection was killed")
	listener(t, a, b.channel, pid)
	ingestOn(a, 1)
	waitWake(t, wakes, "an ingest after reconnecting")
}

// listener returns the pid of the backend that listens on channel, waiting
// for one other than old.
func listener(t *testing.T, s *Store, channel string, old int32) int32 {
	t.Helper()
	var pid int32
	eventually.Until(t, wakeTimeout, "a backend listens on "+channel, func() (bool, string) {
		err := s.pool.QueryRow(t.Context(), `SELECT pid FROM pg_stat_activity WHERE query = $1 AND pid <> $2`,
			"LISTEN "+pgx.Identifier{channel}.Sanitize(), old).Scan(&pid)
		if err != nil && !isNoRows(err) {
			t.Fatalf("find the listener: %v", err)
		}
		return err == nil, fmt.Sprint(err)
	})
	return pid
}

// TestWatchChangesEnds: WatchChanges returns when its context ends, and
// when the store closes, with an error that says which.
func TestWatchChangesEnds(t *testing.T) {
	s := openURL(t, pgtest.URL(t))
	ctx, cancel := context.WithCancel(t.Context())
	wakes, done := watch(t, ctx, s)
	waitWake(t, wakes, "starting to listen")
	cancel()
	wantReturn(t, done, context.Canceled)

	wakes, done = watch(t, t.Context(), s)
	waitWake(t, wakes, "starting to listen")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantReturn(t, done, store.ErrClosed)

	if err := s.WatchChanges(t.Context(), func() {}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("WatchChanges after Close: %v, want ErrClosed", err)
	}
}

func wantReturn(t *testing.T, done <-chan error, want error) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, want) {
			t.Errorf("WatchChanges returned %v, want %v", err, want)
		}
	case <-time.After(wakeTimeout):
		t.Fatalf("WatchChanges still runs %v later", wakeTimeout)
	}
}
