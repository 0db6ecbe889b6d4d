package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/accounthealth/accounthealth/server/store"
)

// Request says what a subscriber wants and from where.
type Request struct {
	Filter Filter
	Start  Start
}

// Start is where a subscription begins. The zero value starts now: only
// changes committed after Subscribe.
type Start struct {
	mode  startMode
	after int64
	since time.Time
}

// startMode's zero value means now.
type startMode int

const (
	startAfter startMode = iota + 1
	startSince
)

// StartAfter starts right after a cursor: exactly the changes with a
// greater Seq, whether they are still to come or already in the log.
func StartAfter(seq int64) Start {
	return Start{mode: startAfter, after: seq}
}

// StartSince starts with the changes that occurred at or after t; the zero
// time means the beginning of the log.
func StartSince(t time.Time) Start {
	return Start{mode: startSince, since: t}
}

// Item is what Next returns: a change, or a heartbeat when there was none
// for HeartbeatInterval.
type Item struct {
	// Change is nil for a heartbeat. It is shared with other subscribers:
	// read it, never modify it.
	Change    *store.Change
	Heartbeat bool
	// Cursor is where to resume after this item: the change's Seq, or for a
	// heartbeat the position up to which the log was scanned, so that a
	// filtered subscriber resumes past the changes it did not want.
	Cursor int64
	At     time.Time // when Next returned it
	// Behind is how many changes the log held past this item when Next
	// returned it, as of the subscription's last look at the tail: 0 for a
	// subscriber that keeps up. For metrics; it costs no store read.
	Behind int64
}

// Subscription is one subscriber's position in the log. It holds no
// resource of the broker, so it needs no closing. Use it from one
// goroutine at a time.
type Subscription struct {
	b      *Broker
	filter matcher
	// cursor: every change with Seq <= cursor was scanned; those that
	// matched are in pending or were returned.
	cursor int64
	// tail is the ring's tail at the last scan, for Item.Behind.
	tail int64
	// pending holds matches scanned but not yet returned, at most one page
	// (a slice of buf): a scan takes several at once, so that a busy
	// subscriber locks the ring once per batch rather than once per change.
	pending []*store.Change
	buf     []*store.Change
	// due is when a heartbeat is due; timer waits for it.
	due   time.Time
	timer *time.Timer
	// replays counts pages read from the store, for tests.
	replays int
}

// Subscribe checks req and starts a subscription. Errors: ErrClosed when
// the broker is shutting down; wrapping store.ErrInvalidArgument for an
// unknown kind, or ErrInvalidCursor for a cursor beyond the end of the log
// (it was issued by another database, and resuming from it would silently
// skip changes); the store's error if it cannot be read.
func (b *Broker) Subscribe(ctx context.Context, req Request) (*Subscription, error) {
	if b.life.Err() != nil {
		return nil, ErrClosed
	}
	m, err := req.Filter.compile(req.Start.since)
	var cursor int64
	if err == nil {
		cursor, err = b.startCursor(ctx, req.Start)
	}
	if err != nil {
		return nil, fmt.Errorf("stream: subscribe: %w", err)
	}
	timer := time.NewTimer(b.opts.HeartbeatInterval)
	timer.Stop()
	return &Subscription{
		b:      b,
		filter: m,
		cursor: cursor,
		buf:    make([]*store.Change, 0, replayPage),
		due:    time.Now().Add(b.opts.HeartbeatInterval),
		timer:  timer,
	}, nil
}

// startCursor turns a Start into the Seq to read after.
func (b *Broker) startCursor(ctx context.Context, start Start) (int64, error) {
	switch start.mode {
	case startAfter:
		last, err := b.store.LastChangeSeq(ctx)
		if err != nil {
			return 0, err
		}
		if start.after < 0 || start.after > last {
			return 0, fmt.Errorf("%w: position %d is not in this log (0..%d); it may come from another database", ErrInvalidCursor, start.after, last)
		}
		return start.after, nil
	case startSince:
		if start.since.IsZero() {
			return 0, nil
		}
		// Some changes after this Seq may have occurred before since (they
		// were committed late); the filter drops them.
		return b.store.ChangeSeqBefore(ctx, start.since)
	}
	// Now: the store's end of the log, which may be ahead of the tail; the
	// subscription then simply waits for the tail to pass it.
	return b.store.LastChangeSeq(ctx)
}

// Next returns the next change that matches the filter, waiting for it to
// be committed, or a heartbeat after HeartbeatInterval without one. It
// fails with ErrClosed when the broker shuts down, with ctx's error when
// ctx ends, and with the store's error when replaying from it fails or
// when a heartbeat is due while the tail's reads of it fail; the
// subscription stays usable after a ctx or store error.
func (s *Subscription) Next(ctx context.Context) (Item, error) {
	for {
		switch {
		case s.b.life.Err() != nil:
			return Item{}, ErrClosed
		case ctx.Err() != nil:
			return Item{}, ctx.Err()
		}
		now := time.Now()
		if len(s.pending) > 0 {
			c := s.pending[0]
			// Returned changes are not kept: an idle subscriber pins
			// nothing the ring has evicted.
			s.pending[0] = nil
			s.pending = s.pending[1:]
			return s.item(c, now), nil
		}
		if !now.Before(s.due) {
			// A heartbeat says the log holds nothing more for this
			// subscriber; with the tail failing, no one knows that, so
			// the stream ends instead, and its client resumes from its
			// cursor, here or on another replica.
			if err := s.b.tailFailure(); err != nil {
				return Item{}, err
			}
			return s.item(nil, now), nil
		}
		behind, changed := s.scanRing()
		if len(s.pending) > 0 {
			continue
		}
		if behind {
			read, err := s.replay(ctx)
			if err != nil {
				return Item{}, err
			}
			if read {
				continue
			}
			// The log has nothing the ring lacks after all: wait for the
			// tail rather than spin on the store.
		}
		s.timer.Reset(s.due.Sub(now))
		select {
		case <-changed:
		case <-s.timer.C:
		case <-ctx.Done():
		case <-s.b.life.Done():
		}
		s.timer.Stop()
	}
}

// Cursor is where the subscription stands: everything up to it was either
// returned or filtered out. Right after Subscribe it is the start.
func (s *Subscription) Cursor() int64 { return s.cursor }

// item returns c as an Item, or a heartbeat when c is nil, and restarts
// the heartbeat clock.
func (s *Subscription) item(c *store.Change, now time.Time) Item {
	s.due = now.Add(s.b.opts.HeartbeatInterval)
	if c == nil {
		return Item{Heartbeat: true, Cursor: s.cursor, At: now, Behind: max(s.tail-s.cursor, 0)}
	}
	return Item{Change: c, Cursor: c.Seq, At: now, Behind: max(s.tail-c.Seq, 0)}
}

// scanRing fills pending from the ring. It says whether the cursor is
// behind the ring (read the store instead), and returns the channel that
// will signal the tail's next move, taken under the same lock as the scan
// so that no move is missed. It notes the tail for Item.Behind.
func (s *Subscription) scanRing() (behind bool, changed <-chan struct{}) {
	b := s.b
	b.mu.RLock()
	defer b.mu.RUnlock()
	s.tail = b.ring.tail
	if s.cursor < b.ring.floor {
		return true, b.changed
	}
	s.pending = s.buf[:0]
	for i := b.ring.after(s.cursor); i < b.ring.n && len(s.pending) < cap(s.pending); i++ {
		s.take(b.ring.at(i))
	}
	return false, b.changed
}

// take moves the cursor past c and keeps c if it matches.
func (s *Subscription) take(c *store.Change) {
	s.cursor = c.Seq
	if s.filter.match(c) {
		s.pending = append(s.pending, c)
	}
}

// replay fills pending from the page after the cursor in the store and
// says whether the page held anything.
func (s *Subscription) replay(ctx context.Context) (bool, error) {
	ctx, cancel := s.b.bind(ctx)
	defer cancel()
	page, err := s.b.store.ReadChanges(ctx, s.cursor, replayPage)
	if err != nil {
		if s.b.life.Err() != nil {
			return false, ErrClosed
		}
		return false, fmt.Errorf("stream: replay after %d: %w", s.cursor, err)
	}
	s.pending = s.buf[:0]
	for i := range page {
		s.take(&page[i])
	}
	s.replays++
	return len(page) > 0, nil
}
