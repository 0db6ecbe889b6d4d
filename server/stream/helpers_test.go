package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/sqlite"
	"github.com/accounthealth/accounthealth/server/store/storetest"
)

// waitLimit bounds every wait of the tests: far above what any step needs,
// even under -race, so that a hang fails instead of stalling the suite.
const waitLimit = 10 * time.Second

// t0 is the time of the first test delivery.
var t0 = time.Date(2026, 10, 6, 10, 30, 51, 901122123, time.UTC)

func accountID(n int) string { return fmt.Sprintf("0190a1e3-%04x-7c12-8e55-6b2d9f0c1a11", n) }
func userID(n int) string    { return fmt.Sprintf("0190a1e2-%04x-7b41-9f2e-1d7c3a4b5e60", n) }

// Event builders: each gives one delivery of account acct of user user at
// t0 + at.

func failed(acct, user int, code string, at time.Duration) storetest.Event {
	return storetest.Event{Event: health.EventAccountsFailed, AccountID: accountID(acct), UserID: userID(user),
		ErrorCode: code, ErrorMessage: "The login failed: " + code + ".", ReceivedAt: t0.Add(at)}
}

func connected(acct, user int, at time.Duration) storetest.Event {
	return storetest.Event{Event: health.EventAccountsConnected, AccountID: accountID(acct), UserID: userID(user), ReceivedAt: t0.Add(at),
		Resource: &storetest.Resource{Status: health.ConnectionConnected, UpdatedAt: t0.Add(at), ScannedAt: t0.Add(at)}}
}

func updatedError(acct, user int, code string, at time.Duration) storetest.Event {
	return storetest.Event{Event: health.EventAccountsUpdated, AccountID: accountID(acct), UserID: userID(user), ReceivedAt: t0.Add(at),
		Resource: &storetest.Resource{Status: health.ConnectionError, ErrorCode: code, ErrorMessage: "Connection error: " + code + ".", UpdatedAt: t0.Add(at)}}
}

func removed(acct, user int, at time.Duration) storetest.Event {
	return storetest.Event{Event: health.EventAccountsRemoved, AccountID: accountID(acct), UserID: userID(user), ReceivedAt: t0.Add(at)}
}

// failures gives n deliveries that each make a change: a first failed login
// of accounts from..from+n-1, spread over users 0..users-1, a millisecond
// apart.
func failures(from, n, users int) []storetest.Event {
	events := make([]storetest.Event, n)
	for i := range events {
		a := from + i
		events[i] = failed(a, a%users, "invalid_mfa", time.Duration(a)*time.Millisecond)
	}
	return events
}

// env is a SQLite store in a test directory with a running broker over it.
type env struct {
	t      testing.TB
	store  store.Store
	broker *Broker
	// stopRun ends the context Run was given.
	stopRun context.CancelFunc
}

// newEnv opens a store in a new directory and runs a broker over it until
// the test ends.
func newEnv(t testing.TB, opts Options) *env {
	return openEnv(t, t.TempDir(), opts, nil)
}

// openEnv opens the store in dir, wraps it with wrap when not nil, and runs
// a broker over it until the test ends or stop is called.
func openEnv(t testing.TB, dir string, opts Options, wrap func(*sqlite.Store) store.Store) *env {
	t.Helper()
	s, err := sqlite.Open(t.Context(), dir, store.Options{})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	e := &env{t: t, store: s}
	if wrap != nil {
		e.store = wrap(s)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e.broker = New(e.store, opts)
	ctx, stopRun := context.WithCancel(context.Background())
	e.stopRun = stopRun
	ran := make(chan error, 1)
	go func() { ran <- e.broker.Run(ctx) }()
	t.Cleanup(func() {
		e.broker.Close()
		stopRun()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("store Close: %v", err)
		}
	})
	return e
}

// ingest commits the events as one batch and notifies the broker, as the
// service does, and returns the changes they made.
func (e *env) ingest(events ...storetest.Event) []store.Change {
	e.t.Helper()
	changes := e.ingestQuietly(events...)
	e.broker.Notify()
	return changes
}

// ingestQuietly commits without notifying the broker, like another process.
func (e *env) ingestQuietly(events ...storetest.Event) []store.Change {
	e.t.Helper()
	results, err := e.store.Ingest(context.Background(), storetest.Deliveries(events...))
	if err != nil {
		e.t.Fatalf("Ingest: %v", err)
	}
	var changes []store.Change
	for _, r := range results {
		if r.Change != nil {
			changes = append(changes, *r.Change)
		}
	}
	return changes
}

func (e *env) subscribe(req Request) *Subscription {
	e.t.Helper()
	sub, err := e.broker.Subscribe(e.t.Context(), req)
	if err != nil {
		e.t.Fatalf("Subscribe(%+v): %v", req, err)
	}
	return sub
}

// log returns the whole change log.
func (e *env) log() []store.Change {
	e.t.Helper()
	var all []store.Change
	for {
		page, err := e.store.ReadChanges(context.Background(), lastSeq(all), store.MaxPageSize)
		if err != nil {
			e.t.Fatalf("ReadChanges: %v", err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
	}
}

func lastSeq(changes []store.Change) int64 {
	if len(changes) == 0 {
		return 0
	}
	return changes[len(changes)-1].Seq
}

// after returns the changes with Seq > seq that f selects.
func after(changes []store.Change, seq int64, f Filter) []store.Change {
	m, err := f.compile(time.Time{})
	if err != nil {
		panic(err)
	}
	var out []store.Change
	for i := range changes {
		if changes[i].Seq > seq && m.match(&changes[i]) {
			out = append(out, changes[i])
		}
	}
	return out
}

// next calls Next with a time limit.
func next(t testing.TB, sub *Subscription) Item {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	it, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return it
}

// drain returns the changes sub receives until its cursor reaches upTo,
// skipping heartbeats (a filtered subscription reaches upTo by one).
func drain(t testing.TB, sub *Subscription, upTo int64) []store.Change {
	t.Helper()
	var got []store.Change
	for {
		it := next(t, sub)
		if it.Change != nil {
			got = append(got, *it.Change)
		}
		if it.Cursor >= upTo {
			return got
		}
	}
}

// checkSame fails unless got holds exactly the changes of want, in order,
// and names the first difference.
func checkSame(t testing.TB, name string, want, got []store.Change) {
	t.Helper()
	for i := range min(len(want), len(got)) {
		if got[i].Seq != want[i].Seq || got[i].AccountID != want[i].AccountID || got[i].Kind != want[i].Kind {
			t.Errorf("%s: change %d is %d %s %s, want %d %s %s", name, i,
				got[i].Seq, got[i].AccountID, got[i].Kind, want[i].Seq, want[i].AccountID, want[i].Kind)
			return
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: got %d changes (last Seq %d), want %d (last Seq %d)", name, len(got), lastSeq(got), len(want), lastSeq(want))
	}
}
