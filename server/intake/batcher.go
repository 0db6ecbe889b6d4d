package intake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/accounthealth/accounthealth/server/store"
)

// ErrStopped is returned for deliveries submitted after Close began.
var ErrStopped = errors.New("intake is shutting down")

// Batcher group-commits deliveries: while one commit is in flight, new
// deliveries queue up and the next commit takes all of them at once. A lone
// delivery is committed at once (no timer, no added latency); under load the
// fsync per commit is shared by up to MaxBatch deliveries.
type Batcher struct {
	store    store.Store
	maxBatch int
	onChange func() // after a commit that appended changes
	observe  CommitObserver
	queue    chan *pending
	// room bounds the bytes of the bodies queued or being committed:
	// webhook bodies are bounded by their route already, but refreshes,
	// backfills and deletions submit too.
	room *semaphore.Weighted

	mu      sync.RWMutex // guards closed against Submit racing Close
	closed  bool
	stopped chan struct{}
}

type pending struct {
	delivery store.Delivery
	done     chan outcome // buffered: the loop never blocks on a caller
	bytes    int64        // of room held until committed
}

type outcome struct {
	result store.Result
	err    error
}

// DefaultMaxBatch bounds one commit: large enough to amortise the fsync,
// small enough that one transaction stays short.
const DefaultMaxBatch = 256

// MaxQueueBytes bounds the bodies queued or in a commit at once: a
// commit's worth (DefaultMaxBatch) of 256 KiB deliveries, a hundred times
// the usual size; larger ones make smaller commits, and a Submit waits
// for room (within commitTimeout). A body larger than all of it waits for
// the queue to empty.
const MaxQueueBytes = 64 << 20

// commitTimeout bounds one commit, and a sender's wait for its own, so a
// stuck store cannot hold senders forever: they get errNotCommitted (a 503)
// and retry. It stays below the provider's 10 s webhook timeout (see
// DOMAIN.md), which answers nothing the sender could act on; a commit of a
// full batch normally takes milliseconds.
const commitTimeout = 8 * time.Second

// errNotCommitted: commitTimeout ran out. A retry may find the store back.
var errNotCommitted = fmt.Errorf("%w: the store did not commit within %s", store.ErrUnavailable, commitTimeout)

// CommitObserver hears about every commit, for metrics and readiness: how
// many deliveries it held, how long the store took, and their results, or
// (results nil) why it failed. It runs on the commit loop, so it must be
// quick.
type CommitObserver func(size int, elapsed time.Duration, results []store.Result, err error)

// NewBatcher starts the commit loop. Call Close to stop it. onChange, when
// not nil, is called after every commit that appended at least one change
// to the change log (streams use it to wake up); it must not block.
// observe, when not nil, hears about every commit.
func NewBatcher(s store.Store, maxBatch int, onChange func(), observe CommitObserver) *Batcher {
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	b := &Batcher{
		store:    s,
		maxBatch: maxBatch,
		onChange: onChange,
		observe:  observe,
		queue:    make(chan *pending, maxBatch),
		room:     semaphore.NewWeighted(MaxQueueBytes),
		stopped:  make(chan struct{}),
	}
	go b.loop()
	return b
}

// Submit commits d and returns its result once it is durable. A caller that
// gives up (ctx done) gets ctx's error, and one that waited commitTimeout
// gets errNotCommitted; either way its delivery may still be committed,
// which is safe: the sender retries and the redelivery is recognised.
func (b *Batcher) Submit(ctx context.Context, d store.Delivery) (store.Result, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, commitTimeout, errNotCommitted)
	defer cancel()
	p := &pending{delivery: d, done: make(chan outcome, 1), bytes: min(int64(len(d.Body)), MaxQueueBytes)}
	if err := b.room.Acquire(ctx, p.bytes); err != nil {
		return store.Result{}, context.Cause(ctx)
	}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		b.room.Release(p.bytes)
		return store.Result{}, ErrStopped
	}
	select {
	case b.queue <- p:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		b.room.Release(p.bytes)
		return store.Result{}, context.Cause(ctx)
	}
	select {
	case o := <-p.done:
		return o.result, o.err
	case <-ctx.Done():
		return store.Result{}, context.Cause(ctx)
	}
}

// Close stops taking deliveries, commits every one already queued and
// returns when the last commit is done, so nothing acknowledged is lost.
func (b *Batcher) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	<-b.stopped
}

func (b *Batcher) loop() {
	defer close(b.stopped)
	batch := make([]*pending, 0, b.maxBatch)
	for first := range b.queue {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < b.maxBatch {
			select {
			case p, ok := <-b.queue:
				if !ok {
					break fill
				}
				batch = append(batch, p)
			default:
				break fill
			}
		}
		b.commit(batch)
		// An idle loop keeps no delivery, nor its body, alive.
		clear(batch)
	}
}

func (b *Batcher) commit(batch []*pending) {
	// Deliveries whose caller already left are still committed: the caller
	// may have been cut off after the sender got nothing, and committing
	// costs less than the redelivery it saves.
	deliveries := make([]store.Delivery, len(batch))
	for i, p := range batch {
		deliveries[i] = p.delivery
	}
	// The commit is not tied to any caller's context: one caller giving up
	// must not roll back the others. The timeout bounds a stuck store; the
	// senders then get an error and retry.
	ctx, cancel := context.WithTimeoutCause(context.Background(), commitTimeout, errNotCommitted)
	defer cancel()
	start := time.Now()
	results, err := b.store.Ingest(ctx, deliveries)
	if err != nil {
		results = nil // a failed commit has no results, whatever Ingest returned
		if ctx.Err() != nil {
			// The store's error would say "context deadline exceeded",
			// which reads as the sender's own deadline.
			err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
		}
	}
	if b.observe != nil {
		b.observe(len(batch), time.Since(start), results, err)
	}
	if err == nil && b.onChange != nil && slices.ContainsFunc(results, func(r store.Result) bool { return r.Change != nil }) {
		b.onChange()
	}
	for i, p := range batch {
		b.room.Release(p.bytes)
		if err != nil {
			p.done <- outcome{err: err}
			continue
		}
		p.done <- outcome{result: results[i]}
	}
}
