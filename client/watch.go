package client

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

// Backoff shapes the waits between reconnections: the n-th wait (from 0)
// is Min·2^n capped at Max, less up to half of it at random, so that many
// watchers of one restarted server do not all come back at once.
type Backoff struct {
	Min, Max time.Duration
}

// Watch's backoff where WatchOptions.Backoff leaves a field zero.
const (
	DefaultBackoffMin = 250 * time.Millisecond
	DefaultBackoffMax = 30 * time.Second
)

func (b Backoff) delay(n int) time.Duration {
	d := b.Min
	for range n {
		if d >= b.Max/2 {
			d = b.Max
			break
		}
		d *= 2
	}
	d = min(d, b.Max)
	return d - rand.N(d/2+1)
}

// WatchOptions say which events Watch delivers and from where.
type WatchOptions struct {
	// UserIDs: only these users' accounts; empty: all.
	UserIDs []string
	// Kinds: only these kinds; empty: every kind of disconnection.
	Kinds []ahv1.TransitionKind
	// ErrorCodes: only disconnections with one of these codes (removals
	// carry none, so this leaves them out).
	ErrorCodes []string
	// IncludeRecoveries also delivers returns to HEALTHY.
	IncludeRecoveries bool
	// Items: only events of these payroll platforms' accounts, and their
	// own; empty: all. IncludeItemEvents also delivers items' outages
	// beginning and ending (no account).
	Items             []string
	IncludeItemEvents bool
	// IncludeFreshnessEvents also delivers HEALTHY accounts' data going
	// stale, failing to sync or losing its refresh (FRESHNESS_LOST), and
	// fresh again (FRESHNESS_RESTORED); ErrorCodes does not filter them,
	// they carry no code.
	IncludeFreshnessEvents bool

	// ResumeAfter starts right after this cursor, the last one the caller
	// kept from an event or a heartbeat. Since starts with the events that
	// occurred at or after a time. Without either, Watch starts with the
	// events committed after it subscribed. At most one of them may be set.
	ResumeAfter string
	Since       time.Time

	// Backoff spaces reconnections; zero fields take the defaults.
	Backoff Backoff
	// OnHeartbeat, when set, is called with every heartbeat, including the
	// one that opens each connection. Its cursor is as good as an event's
	// to resume from, and lets a filtered watcher skip past events it did
	// not want; persist it too. An error ends Watch with that error.
	OnHeartbeat func(ctx context.Context, hb *ahv1.Heartbeat) error
	// OnReconnect, when set, is called when the stream broke and Watch is
	// about to wait delay before reconnecting, with the error it broke
	// with: e.g. to log it.
	OnReconnect func(err error, delay time.Duration)
}

// Watch streams disconnection events to handle, one at a time, in log
// order, each with its cursor (ev.Cursor). Watch persists nothing: the
// caller keeps the cursors it wants and passes the last one as ResumeAfter
// when it starts again.
//
// When the stream breaks (UNAVAILABLE, as on a server restart, or a
// transport error), Watch reconnects with Backoff, which starts over after
// every message received, and resumes right after the last cursor it handed
// to handle or OnHeartbeat: no event is skipped or delivered twice.
//
// Watch returns ctx's error when ctx ends, handle's or OnHeartbeat's error
// as is, or an *Error for a failure that retrying cannot fix, such as
// INVALID_ARGUMENT for a cursor the server does not know.
func (c *Client) Watch(ctx context.Context, opts WatchOptions, handle func(ctx context.Context, ev *ahv1.DisconnectionEvent) error) error {
	if opts.ResumeAfter != "" && !opts.Since.IsZero() {
		return errors.New("client: Watch: set ResumeAfter or Since, not both")
	}
	b := opts.Backoff
	if b.Min <= 0 {
		b.Min = DefaultBackoffMin
	}
	if b.Max == 0 {
		b.Max = DefaultBackoffMax
	}
	b.Max = max(b.Max, b.Min)
	w := &watch{c: c, opts: opts, handle: handle, cursor: opts.ResumeAfter}
	for failures := 0; ; failures++ {
		err := w.stream(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var stop callbackError
		if errors.As(err, &stop) {
			return stop.err
		}
		if !errors.Is(err, io.EOF) && !retryable(err) {
			return err
		}
		if w.received {
			failures, w.received = 0, false
		}
		delay := b.delay(failures)
		if opts.OnReconnect != nil {
			opts.OnReconnect(err, delay)
		}
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
	}
}

// watch is the state Watch keeps across connections.
type watch struct {
	c      *Client
	opts   WatchOptions
	handle func(context.Context, *ahv1.DisconnectionEvent) error
	// cursor is the last one handed to the caller: where to resume.
	cursor   string
	received bool // a message arrived since the last reconnection
}

// callbackError carries an error of the caller's callbacks out of stream.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// stream runs one connection until it breaks. io.EOF means the server ended
// the stream without a status, which it never does by itself (a proxy may).
func (w *watch) stream(ctx context.Context) error {
	req := &ahv1.StreamDisconnectionsRequest{
		UserIds: w.opts.UserIDs, Kinds: w.opts.Kinds, ErrorCodes: w.opts.ErrorCodes, IncludeRecoveries: w.opts.IncludeRecoveries,
		Items: w.opts.Items, IncludeItemEvents: w.opts.IncludeItemEvents, IncludeFreshnessEvents: w.opts.IncludeFreshnessEvents,
	}
	switch {
	case w.cursor != "":
		req.Start = &ahv1.StreamDisconnectionsRequest_ResumeAfter{ResumeAfter: w.cursor}
	case !w.opts.Since.IsZero():
		req.Start = &ahv1.StreamDisconnectionsRequest_Since{Since: timestamppb.New(w.opts.Since)}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const method = ahv1.AccountHealthService_StreamDisconnections_FullMethodName
	s, err := w.c.api.StreamDisconnections(ctx, req)
	if err != nil {
		return asError(method, err)
	}
	for {
		msg, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return err
		}
		if err != nil {
			return asError(method, err)
		}
		w.received = true
		switch m := msg.GetMessage().(type) {
		case *ahv1.StreamDisconnectionsResponse_Event:
			if err := w.handle(ctx, m.Event); err != nil {
				return callbackError{err}
			}
			w.cursor = m.Event.GetCursor()
		case *ahv1.StreamDisconnectionsResponse_Heartbeat:
			if w.opts.OnHeartbeat != nil {
				if err := w.opts.OnHeartbeat(ctx, m.Heartbeat); err != nil {
					return callbackError{err}
				}
			}
			w.cursor = m.Heartbeat.GetCursor()
		}
	}
}
