package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/client"
	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/stream"
)

// fastBackoff keeps the tests quick; production watchers keep the default.
var fastBackoff = client.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}

// waitLimit only guards against a hang: no step comes near it.
const waitLimit = 10 * time.Second

// watching runs Watch on s in the background, sending what it hands the
// caller to got: "ACCOUNT KIND" per event, and to heartbeats the cursor of
// each heartbeat, including the one that opens each connection. Both come
// from Watch's goroutine in stream order, so an event is in got before any
// heartbeat that follows it is in heartbeats.
type watching struct {
	s          *server
	got        chan string
	heartbeats chan string
	cursors    []string // of the events, in order
	done       chan struct{}
	err        error // what Watch returned, once done is closed
	cancel     context.CancelFunc
}

func startWatch(t *testing.T, s *server, cl *client.Client, opts client.WatchOptions) *watching {
	t.Helper()
	w := &watching{s: s, got: make(chan string, 100), heartbeats: make(chan string, 100), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	w.cancel = cancel
	opts.Backoff = fastBackoff
	opts.OnHeartbeat = func(_ context.Context, hb *ahv1.Heartbeat) error {
		// Dropping one when full is harmless: the next comes soon.
		select {
		case w.heartbeats <- hb.GetCursor():
		default:
		}
		return nil
	}
	go func() {
		defer close(w.done)
		w.err = cl.Watch(ctx, opts, func(_ context.Context, ev *ahv1.DisconnectionEvent) error {
			w.cursors = append(w.cursors, ev.GetCursor())
			w.got <- ev.GetAccountId() + " " + strings.TrimPrefix(ev.GetKind().String(), "TRANSITION_KIND_")
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// expect waits for exactly these events, in order, then for a heartbeat
// whose cursor has reached the end of the log: any other event committed
// so far would have come before it. It returns that heartbeat's cursor.
func (w *watching) expect(t *testing.T, want ...string) string {
	t.Helper()
	timeout := time.After(waitLimit)
	for _, ev := range want {
		select {
		case got := <-w.got:
			if got != ev {
				t.Fatalf("got event %q, want %q", got, ev)
			}
		case <-w.done:
			t.Fatalf("Watch returned %v, waiting for %q", w.err, ev)
		case <-timeout:
			t.Fatalf("no event %q within %s", ev, waitLimit)
		}
	}
	end := w.s.lastChange(t)
	for {
		select {
		case got := <-w.got:
			t.Fatalf("unexpected event %q", got)
		case cursor := <-w.heartbeats:
			seq, err := stream.DecodeCursor(cursor)
			if err != nil {
				t.Fatal(err)
			}
			if seq < end {
				continue
			}
			select {
			case got := <-w.got:
				t.Fatalf("unexpected event %q", got)
			default:
			}
			return cursor
		case <-w.done:
			t.Fatalf("Watch returned %v, waiting for a heartbeat at %d", w.err, end)
		case <-timeout:
			t.Fatalf("no heartbeat at %d within %s", end, waitLimit)
		}
	}
}

func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("no %s within %s", what, waitLimit)
		panic("unreachable")
	}
}

// The server stops mid-stream and comes back on the same port and data;
// meanwhile events are committed that the watcher is not connected for.
// It delivers exactly those, then the live ones, none twice.
func TestWatchResumesAcrossRestart(t *testing.T) {
	s := startServer(t)
	cl := dial(t, s.target())

	reconnects := make(chan error, 100)
	var hold atomic.Bool
	held, release := make(chan struct{}), make(chan struct{})
	w := startWatch(t, s, cl, client.WatchOptions{
		IncludeRecoveries: true,
		OnReconnect: func(err error, _ time.Duration) {
			reconnects <- err
			if hold.CompareAndSwap(true, false) {
				held <- struct{}{}
				<-release
			}
		},
	})
	waitFor(t, w.heartbeats, "subscription")
	s.mustDeliver(t, failedLogin("acct-1", "user-1", "invalid_credentials"), failedLogin("acct-2", "user-1", "invalid_mfa"))
	w.expect(t, "acct-1 AUTH_FAILED", "acct-2 AUTH_FAILED")

	if err := s.shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(t, reconnects, "reconnection"); !client.IsUnavailable(err) {
		t.Fatalf("the stream broke with %v, want UNAVAILABLE", err)
	}
	// It keeps trying while the server is down...
	waitFor(t, reconnects, "second attempt")
	// ...and is held before its next attempt while the server comes back
	// and commits events it does not see live.
	hold.Store(true)
	waitFor(t, held, "held reconnection")
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	s.mustDeliver(t, failedLogin("acct-3", "user-2", "account_locked"), connected("acct-1", "user-1"), failedLogin("acct-4", "user-2", "invalid_credentials"))
	close(release)
	w.expect(t, "acct-3 AUTH_FAILED", "acct-1 RECOVERED", "acct-4 AUTH_FAILED")

	s.mustDeliver(t, failedLogin("acct-5", "user-3", "invalid_credentials"))
	w.expect(t, "acct-5 AUTH_FAILED")

	w.cancel()
	<-w.done
	if !errors.Is(w.err, context.Canceled) {
		t.Errorf("Watch returned %v after cancel, want context.Canceled", w.err)
	}
	seen := map[string]bool{}
	for _, c := range w.cursors {
		if seen[c] {
			t.Errorf("cursor %s delivered twice", c)
		}
		seen[c] = true
	}
}

// A heartbeat's cursor resumes as exactly as an event's: after it, only
// what came later.
func TestWatchResumeFromHeartbeat(t *testing.T) {
	s := startServer(t)
	cl := dial(t, s.target())
	first := startWatch(t, s, cl, client.WatchOptions{UserIDs: []string{"user-1"}})
	waitFor(t, first.heartbeats, "subscription")
	s.mustDeliver(t, failedLogin("acct-1", "user-1", "invalid_credentials"), failedLogin("acct-2", "user-2", "invalid_credentials"))
	// The heartbeat that shows acct-2 filtered out is past both events.
	cursor := first.expect(t, "acct-1 AUTH_FAILED")
	first.cancel()

	s.mustDeliver(t, failedLogin("acct-3", "user-1", "invalid_mfa"))
	second := startWatch(t, s, cl, client.WatchOptions{UserIDs: []string{"user-1"}, ResumeAfter: cursor})
	second.expect(t, "acct-3 AUTH_FAILED")
}

func TestWatchEnds(t *testing.T) {
	s := startServer(t)
	s.mustDeliver(t, failedLogin("acct-1", "user-1", "invalid_credentials"))
	cl := dial(t, s.target())
	errStop := errors.New("stop")
	since := time.Now().Add(-time.Hour)
	cases := []struct {
		name        string
		opts        client.WatchOptions
		handle      func(context.Context, *ahv1.DisconnectionEvent) error
		onHeartbeat func(context.Context, *ahv1.Heartbeat) error
		check       func(error) bool
	}{
		{"the handler's error", client.WatchOptions{Since: since}, func(context.Context, *ahv1.DisconnectionEvent) error { return errStop }, nil,
			func(err error) bool { return errors.Is(err, errStop) }},
		{"the heartbeat callback's error", client.WatchOptions{}, nil, func(context.Context, *ahv1.Heartbeat) error { return errStop },
			func(err error) bool { return errors.Is(err, errStop) }},
		{"a cursor the server never issued", client.WatchOptions{ResumeAfter: "bogus"}, nil, nil,
			func(err error) bool {
				var e *client.Error
				return errors.As(err, &e) && client.IsInvalidArgument(err) && strings.HasPrefix(e.Message, "resume_after: ")
			}},
		{"both starts", client.WatchOptions{ResumeAfter: "x", Since: since}, nil, nil,
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "not both") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Backoff = fastBackoff
			c.opts.OnHeartbeat = c.onHeartbeat
			c.opts.OnReconnect = func(err error, _ time.Duration) { t.Errorf("reconnecting after %v", err) }
			handle := c.handle
			if handle == nil {
				handle = func(_ context.Context, ev *ahv1.DisconnectionEvent) error {
					return fmt.Errorf("unexpected event %v", ev)
				}
			}
			ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
			defer cancel()
			if err := cl.Watch(ctx, c.opts, handle); !c.check(err) {
				t.Errorf("Watch returned %v", err)
			}
		})
	}
}

// IncludeFreshnessEvents delivers a HEALTHY account's dataset failing to
// sync, and syncing again; a watch without it gets neither. Meanwhile the
// Freshness filter of ListHealth finds the account, and Summary counts it.
func TestWatchFreshnessEvents(t *testing.T) {
	s := startServer(t)
	cl := dial(t, s.target())
	with := startWatch(t, s, cl, client.WatchOptions{IncludeFreshnessEvents: true})
	without := startWatch(t, s, cl, client.WatchOptions{IncludeRecoveries: true})
	waitFor(t, with.heartbeats, "subscription")
	waitFor(t, without.heartbeats, "subscription")
	at := time.Now().Add(-time.Hour)
	s.mustDeliver(t, scanned("acct-1", "user-1", at, ""), scanned("acct-2", "user-1", at, ""),
		scanned("acct-1", "user-1", at.Add(time.Minute), `,"availability":{"paystubs":{"status":"sync_failed"}}`))
	with.expect(t, "acct-1 FRESHNESS_LOST")

	syncFailed := []ahv1.FreshnessStatus{ahv1.FreshnessStatus_FRESHNESS_STATUS_SYNC_FAILED}
	page, err := cl.ListHealth(t.Context(), client.ListOptions{Freshness: syncFailed})
	if err != nil || len(page.GetAccounts()) != 1 || page.GetAccounts()[0].GetAccountId() != "acct-1" {
		t.Fatalf("ListHealth of SYNC_FAILED accounts: %v %v", page, err)
	}
	sum, err := cl.Summary(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, c := range sum.GetByFreshness() {
		counts[c.GetStatus().String()] = c.GetCount()
	}
	if counts["FRESHNESS_STATUS_FRESH"] != 1 || counts["FRESHNESS_STATUS_SYNC_FAILED"] != 1 || len(counts) != 4 {
		t.Errorf("summary by freshness: %v, want 1 fresh and 1 sync failed among the 4 statuses", counts)
	}

	s.mustDeliver(t, scanned("acct-1", "user-1", at.Add(2*time.Minute), `,"availability":{"paystubs":{"status":"synced"}}`))
	with.expect(t, "acct-1 FRESHNESS_RESTORED")
	without.expect(t)
}
