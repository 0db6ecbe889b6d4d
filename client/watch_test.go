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
)

// fastBackoff keeps the tests quick; production watchers keep the default.
var fastBackoff = client.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}

// watching runs Watch in the background, sending what it hands the caller
// to got: "ACCOUNT KIND" per event, and on subscribed the first heartbeat's
// cursor of each connection.
type watching struct {
	got        chan string
	subscribed chan string
	cursors    []string // of the events, in order
	done       chan struct{}
	err        error // what Watch returned, once done is closed
	cancel     context.CancelFunc
}

func startWatch(t *testing.T, cl *client.Client, opts client.WatchOptions) *watching {
	t.Helper()
	w := &watching{got: make(chan string, 100), subscribed: make(chan string, 100), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	w.cancel = cancel
	opts.Backoff = fastBackoff
	opts.OnHeartbeat = func(_ context.Context, hb *ahv1.Heartbeat) error {
		select {
		case w.subscribed <- hb.GetCursor():
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

// expect waits for exactly these events, in order, then checks that no
// other one follows.
func (w *watching) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, ev := range want {
		select {
		case got := <-w.got:
			if got != ev {
				t.Fatalf("got event %q, want %q", got, ev)
			}
		case <-w.done:
			t.Fatalf("Watch returned %v, waiting for %q", w.err, ev)
		case <-time.After(10 * time.Second):
			t.Fatalf("no event %q within 10s", ev)
		}
	}
	select {
	case got := <-w.got:
		t.Fatalf("unexpected event %q", got)
	case <-time.After(300 * time.Millisecond):
	}
}

func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
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
	w := startWatch(t, cl, client.WatchOptions{
		IncludeRecoveries: true,
		OnReconnect: func(err error, _ time.Duration) {
			reconnects <- err
			if hold.CompareAndSwap(true, false) {
				held <- struct{}{}
				<-release
			}
		},
	})
	waitFor(t, w.subscribed, "subscription")
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
	first := startWatch(t, cl, client.WatchOptions{UserIDs: []string{"user-1"}})
	waitFor(t, first.subscribed, "subscription")
	s.mustDeliver(t, failedLogin("acct-1", "user-1", "invalid_credentials"), failedLogin("acct-2", "user-2", "invalid_credentials"))
	first.expect(t, "acct-1 AUTH_FAILED")
	// Heartbeats come every 100ms; one after the events covers them.
	cursor := waitFor(t, first.subscribed, "heartbeat")
	first.cancel()

	s.mustDeliver(t, failedLogin("acct-3", "user-1", "invalid_mfa"))
	second := startWatch(t, cl, client.WatchOptions{UserIDs: []string{"user-1"}, ResumeAfter: cursor})
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
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := cl.Watch(ctx, c.opts, handle); !c.check(err) {
				t.Errorf("Watch returned %v", err)
			}
		})
	}
}
