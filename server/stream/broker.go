// Package stream serves many subscribers a resumable, filtered stream of
// health transitions read from the store's change log.
//
// The log is the only source of truth and a subscriber's cursor (the Seq up
// to which it has seen the log) its only state. One tail goroutine reads new
// changes into a bounded ring of recent ones and wakes the waiting
// subscribers; a subscriber whose cursor is still in the ring reads from
// memory, one that fell behind it reads the log from the store, a page at a
// time, until it catches up. Both paths return the changes after the cursor
// in Seq order, so the seam between replay and live has no gap and no
// duplicate, a slow subscriber costs one page of memory at most, and nothing
// a subscriber does can slow ingestion or the others: there is no
// per-subscriber queue to fill.
package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/accounthealth/accounthealth/server/store"
)

// ErrClosed is returned by Subscribe and Next once the broker is shutting
// down: the caller should end the stream with UNAVAILABLE, and its client
// resume from the last cursor it received.
var ErrClosed = errors.New("stream: shutting down")

// Defaults of Options.
const (
	// DefaultRingSize keeps a few seconds of a heavy burst in memory, so
	// subscribers that are merely scheduled late never touch the store.
	DefaultRingSize = 4096
	// DefaultRingBytes bounds the ring in bytes: DefaultRingSize ordinary
	// changes take about 2 MiB, but a change carries the provider's error
	// message, which may be as large as a delivery. A ring of large
	// changes holds fewer of them; subscribers behind it read the log.
	DefaultRingBytes = 16 << 20
	// DefaultPollInterval is the safety net for wake-ups that never come
	// (a commit by a process that does not notify this one).
	DefaultPollInterval = time.Second
	// DefaultHeartbeatInterval stays well below the idle timeouts of common
	// proxies and load balancers (often 60 s, some 30 s), so an idle stream
	// gets at least two heartbeats within any of them.
	DefaultHeartbeatInterval = 15 * time.Second
)

const (
	// tailPage: the tail reads in the largest pages the store allows, so it
	// catches up with a burst in few queries.
	tailPage = store.MaxPageSize
	// replayPage is all the memory a subscriber behind the ring holds.
	replayPage = 100
)

// Options tune a Broker. Zero or negative values mean the defaults.
type Options struct {
	// RingSize is how many recent changes are kept in memory (a change
	// takes about half a kilobyte).
	RingSize int
	// RingBytes bounds the ring's changes in bytes (see changeSize); a
	// change larger than that alone is not kept.
	RingBytes int
	// PollInterval: the log is re-read this often even without wake-ups.
	PollInterval time.Duration
	// HeartbeatInterval: Next returns a heartbeat after this long without
	// returning anything else.
	HeartbeatInterval time.Duration
	// Logger receives the tail's read failures; nil means slog.Default().
	Logger *slog.Logger
	// OnTail, when set, is called whenever the tail has read new changes,
	// committed by this process or (through the store's Watcher or the
	// poll) another: other readers of the log (the outbound webhooks) wake
	// on it rather than watching the store themselves. It must not block.
	OnTail func()
}

func (o Options) withDefaults() Options {
	if o.RingSize <= 0 {
		o.RingSize = DefaultRingSize
	}
	if o.RingBytes <= 0 {
		o.RingBytes = DefaultRingBytes
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Broker fans the change log out to subscriptions. Create it with New, run
// its tail with Run, and call Notify after each local commit that appended
// changes.
type Broker struct {
	store store.Store
	opts  Options
	wake  chan struct{} // Notify's coalesced wake-up for the tail

	// life ends at Close or when Run returns. A context, not a channel, so
	// that it also cancels the store reads made on its behalf.
	life context.Context
	end  context.CancelFunc

	mu      sync.RWMutex
	ring    ring
	changed chan struct{} // closed and replaced whenever ring.tail moves
	// tailErr is why the tail's last read failed, nil once one succeeds:
	// while it is set, the ring may lag the log, and a heartbeat would
	// vouch for a cursor the tail cannot check (see Subscription.Next).
	tailErr error
}

// New returns a broker over s. It reads nothing until Run.
func New(s store.Store, opts Options) *Broker {
	opts = opts.withDefaults()
	life, end := context.WithCancel(context.Background())
	return &Broker{
		store:   s,
		opts:    opts,
		wake:    make(chan struct{}, 1),
		life:    life,
		end:     end,
		ring:    ring{buf: make([]*store.Change, opts.RingSize), budget: opts.RingBytes},
		changed: make(chan struct{}),
	}
}

// Notify tells the broker that new changes may be in the log. It never
// blocks: wake-ups that arrive while the tail is reading coalesce into one
// more read.
func (b *Broker) Notify() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Close ends every subscription: pending and later Next calls return
// ErrClosed, and Run returns. It does not wait for Run.
func (b *Broker) Close() {
	b.end()
}

// Run is the tail: it reads new changes from the log whenever woken (by
// Notify, by the store's Watcher if it has one, or every PollInterval) until
// ctx ends or Close is called, then ends every subscription and returns nil.
// It fails only when it cannot find the end of the log to start from. Call
// it once.
func (b *Broker) Run(ctx context.Context) error {
	defer b.end()
	ctx, cancel := b.bind(ctx)
	defer cancel()

	seq, err := b.store.LastChangeSeq(ctx)
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream: find the end of the change log: %w", err)
	}
	b.mu.Lock()
	b.ring.floor, b.ring.tail = seq, seq
	b.broadcast()
	b.mu.Unlock()

	var watching sync.WaitGroup
	if w, ok := b.store.(store.Watcher); ok {
		watching.Go(func() { b.watch(ctx, w) })
	}
	poll := time.NewTicker(b.opts.PollInterval)
	defer poll.Stop()
	for {
		b.readTail(ctx)
		select {
		case <-ctx.Done():
			watching.Wait()
			return nil
		case <-b.wake:
		case <-poll.C:
		}
	}
}

// bind returns a context that ends with ctx or with the broker.
func (b *Broker) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(b.life, cancel)
	return ctx, func() { stop(); cancel() }
}

// watch keeps the store's change watch open. A watch that breaks (e.g. a
// lost database connection) is retried every PollInterval, meanwhile the
// poll keeps the stream going, only later; a closed store has nothing left
// to watch.
func (b *Broker) watch(ctx context.Context, w store.Watcher) {
	for {
		err := w.WatchChanges(ctx, b.Notify)
		if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
			return
		}
		b.opts.Logger.Warn("stream: change watch ended; polling meanwhile", "error", err, "retry_in", b.opts.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-time.After(b.opts.PollInterval):
		}
	}
}

// readTail appends every change committed after the tail to the ring. A
// failed read is retried at the next wake-up or poll: the log keeps the
// changes, and subscribers keep their cursors meanwhile.
func (b *Broker) readTail(ctx context.Context) {
	for {
		// Only this goroutine writes ring.tail, so it reads it unlocked.
		after := b.ring.tail
		page, err := b.store.ReadChanges(ctx, after, tailPage)
		if err != nil {
			if ctx.Err() == nil {
				b.opts.Logger.Warn("stream: reading the change log failed; retrying", "after", after, "error", err)
				b.mu.Lock()
				b.tailErr = fmt.Errorf("stream: the change log cannot be read, so this stream cannot vouch for its cursor; resume from it: %w", err)
				b.mu.Unlock()
			}
			return
		}
		if len(page) > 0 || b.tailFailure() != nil {
			b.mu.Lock()
			for i := range page {
				b.ring.push(&page[i])
			}
			b.tailErr = nil
			b.broadcast()
			b.mu.Unlock()
		}
		if len(page) > 0 && b.opts.OnTail != nil {
			b.opts.OnTail()
		}
		// A page may end early, full in bytes: only an empty one is the end.
		if len(page) == 0 {
			return
		}
	}
}

// tailFailure is why the tail's last read failed, nil if it did not.
func (b *Broker) tailFailure() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.tailErr
}

// broadcast wakes every waiting subscriber. b.mu must be held for writing.
func (b *Broker) broadcast() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// ring holds the most recent changes the tail read, oldest first, at most
// len(buf) of them and budget bytes. Every committed change with floor <
// Seq <= tail is in it, so a cursor at or above floor can be served from
// memory alone. Changes are shared with subscribers and never modified.
type ring struct {
	buf    []*store.Change
	head   int // index in buf of the oldest change
	n      int // changes held
	bytes  int // their changeSize
	budget int
	floor  int64
	tail   int64
}

func (r *ring) push(c *store.Change) {
	if r.n == len(r.buf) {
		r.evict()
	}
	r.buf[(r.head+r.n)%len(r.buf)] = c
	r.n++
	r.bytes += changeSize(c)
	r.tail = c.Seq
	// The newest change goes too when it alone is over the budget: the
	// ring is then empty, floor == tail, and subscribers read it from the
	// log.
	for r.bytes > r.budget {
		r.evict()
	}
}

// evict drops the oldest change.
func (r *ring) evict() {
	c := r.buf[r.head]
	r.buf[r.head] = nil // nothing pins an evicted change
	r.floor = c.Seq
	r.bytes -= changeSize(c)
	r.head = (r.head + 1) % len(r.buf)
	r.n--
}

// changeOverhead is what a change takes besides its strings: the struct,
// the strings' headers, and the ring's and the page's pointers to it.
const changeOverhead = 256

// changeSize estimates the memory c holds.
func changeSize(c *store.Change) int { return changeOverhead + store.ChangeBytes(*c) }

// at returns the i-th oldest change.
func (r *ring) at(i int) *store.Change {
	return r.buf[(r.head+i)%len(r.buf)]
}

// after returns the index of the first change with Seq > seq (r.n if none).
func (r *ring) after(seq int64) int {
	return sort.Search(r.n, func(i int) bool { return r.at(i).Seq > seq })
}
