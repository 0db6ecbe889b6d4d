package stream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/sqlite"
	"github.com/accounthealth/accounthealth/server/store/storetest"
)

func TestStart(t *testing.T) {
	e := newEnv(t, Options{HeartbeatInterval: 20 * time.Millisecond})
	before := e.ingest(failures(0, 5, 1)...) // occurred at t0 + 0..4 ms
	subs := map[string]*Subscription{
		"now":                 e.subscribe(Request{}),
		"after a cursor":      e.subscribe(Request{Start: StartAfter(before[1].Seq)}),
		"after the last":      e.subscribe(Request{Start: StartAfter(before[4].Seq)}),
		"after zero":          e.subscribe(Request{Start: StartAfter(0)}),
		"since a time":        e.subscribe(Request{Start: StartSince(t0.Add(3 * time.Millisecond))}),
		"since the zero time": e.subscribe(Request{Start: StartSince(time.Time{})}),
	}
	later := e.ingest(failures(5, 3, 1)...)
	// Occurred before the start time of "since a time", committed after it.
	late := e.ingest(failed(100, 0, "invalid_mfa", time.Millisecond))
	all := e.log()
	newOnes := append(later, late...)
	want := map[string][]store.Change{
		"now":                 newOnes,
		"after a cursor":      append(before[2:], newOnes...),
		"after the last":      newOnes,
		"after zero":          all,
		"since a time":        append(before[3:], later...),
		"since the zero time": all,
	}
	for name, sub := range subs {
		t.Run(name, func(t *testing.T) {
			checkSame(t, "received", want[name], drain(t, sub, lastSeq(all)))
		})
	}
	t.Run("invalid cursor", func(t *testing.T) {
		for _, seq := range []int64{-1, lastSeq(all) + 1} {
			_, err := e.broker.Subscribe(t.Context(), Request{Start: StartAfter(seq)})
			if !errors.Is(err, ErrInvalidCursor) || !errors.Is(err, store.ErrInvalidArgument) {
				t.Errorf("StartAfter(%d): err = %v, want ErrInvalidCursor", seq, err)
			}
		}
	})
}

// consume reads sub until its cursor reaches final, once final is known
// (non-zero), calling pause after each change. It runs beside the test, so
// it returns its error instead of failing the test.
func consume(ctx context.Context, sub *Subscription, final *atomic.Int64, pause func(received int)) ([]store.Change, error) {
	var got []store.Change
	for {
		it, err := sub.Next(ctx)
		if err != nil {
			return got, err
		}
		if it.Change != nil {
			got = append(got, *it.Change)
			pause(len(got))
		}
		if f := final.Load(); f > 0 && it.Cursor >= f {
			return got, nil
		}
	}
}

// fallBehind waits until the ring no longer holds the change after sub's
// cursor, so that sub's next read goes to the store, or until written is
// closed: then the ring may never move again.
func fallBehind(ctx context.Context, b *Broker, sub *Subscription, written <-chan struct{}) {
	for {
		b.mu.RLock()
		floor, changed := b.ring.floor, b.changed
		b.mu.RUnlock()
		if floor > sub.cursor {
			return
		}
		select {
		case <-changed:
		case <-written:
			return
		case <-ctx.Done():
			return
		}
	}
}

// TestReplayThenLiveUnderIngestion starts subscribers at several cursors
// while a writer commits continuously. The ring is small and some
// subscribers are slow: every 50 changes they wait until the ring has
// moved past them, so they cross between replay and live many times; each
// must still get exactly the log after its cursor.
func TestReplayThenLiveUnderIngestion(t *testing.T) {
	const total, users = 3000, 3
	e := newEnv(t, Options{RingSize: 32, HeartbeatInterval: 20 * time.Millisecond})
	// Bounds every step, so that a failing writer ends the test.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	type subscriber struct {
		name   string
		after  int64
		filter Filter
		slow   bool
		sub    *Subscription
		got    []store.Change
		err    error
	}
	subs := []*subscriber{
		{name: "from the start, before writing"},
		{name: "from the start, slow", slow: true},
		{name: "one user", filter: Filter{UserIDs: []string{userID(1)}}},
		{name: "from the middle"},
		{name: "from the end, slow", slow: true},
		{name: "from the end"},
	}

	var final atomic.Int64
	// reached[i] is closed once the writer is i/len(subs) of the way, and
	// written once it is done; both also when it gives up.
	reached := make([]chan struct{}, len(subs))
	for i := range reached {
		reached[i] = make(chan struct{})
	}
	written := make(chan struct{})
	var writer sync.WaitGroup
	writer.Go(func() {
		milestone := 0
		reach := func(from int) {
			for ; milestone < len(reached) && from >= milestone*total/len(reached); milestone++ {
				close(reached[milestone])
			}
		}
		defer close(written)
		defer reach(total)
		for from := 0; from < total; {
			reach(from)
			n := min(1+rand.IntN(20), total-from)
			if _, err := e.store.Ingest(ctx, storetest.Deliveries(failures(from, n, users)...)); err != nil {
				t.Errorf("writer: %v", err)
				return
			}
			e.broker.Notify()
			from += n
		}
		seq, err := e.store.LastChangeSeq(ctx)
		if err != nil {
			t.Errorf("writer: %v", err)
		}
		final.Store(seq)
	})

	var readers sync.WaitGroup
	for i, s := range subs {
		select {
		case <-reached[i]:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		last, err := e.store.LastChangeSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0, 1, 2:
		case 3:
			s.after = last / 2
		default:
			s.after = last
		}
		s.sub = e.subscribe(Request{Filter: s.filter, Start: StartAfter(s.after)})
		pause := func(n int) {
			if s.slow && n%50 == 0 {
				fallBehind(ctx, e.broker, s.sub, written)
			}
		}
		readers.Go(func() { s.got, s.err = consume(ctx, s.sub, &final, pause) })
	}
	writer.Wait()
	readers.Wait()
	all := e.log()
	if len(all) != total {
		t.Fatalf("the log holds %d changes, want %d", len(all), total)
	}
	for _, s := range subs {
		if s.err != nil {
			t.Errorf("%s: %v", s.name, s.err)
		}
		checkSame(t, s.name, after(all, s.after, s.filter), s.got)
	}
	if subs[1].sub.replays == 0 {
		t.Errorf("the slow subscriber from the start never read the store: the test did not exercise replay")
	}
}

// TestStalledSubscriber: one subscriber stops reading while 10,000
// deliveries are committed. The others get everything meanwhile, the
// broker's memory stays within the ring, and the stalled one then catches
// up from the store.
func TestStalledSubscriber(t *testing.T) {
	const ringSize, total, batch = 256, 10000, 100
	e := newEnv(t, Options{RingSize: ringSize, HeartbeatInterval: 50 * time.Millisecond})
	// Only a stop for a hang: under -race on two loaded cores the 10,000
	// commits alone have taken a minute.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	stalled := e.subscribe(Request{})
	var final atomic.Int64
	active := make([]struct {
		got []store.Change
		err error
	}, 3)
	var readers sync.WaitGroup
	for i := range active {
		sub := e.subscribe(Request{})
		readers.Go(func() { active[i].got, active[i].err = consume(ctx, sub, &final, func(int) {}) })
	}

	start := time.Now()
	for from := 0; from < total; from += batch {
		e.ingest(failures(from, batch, 7)...)
		e.broker.mu.RLock()
		held := e.broker.ring.n
		e.broker.mu.RUnlock()
		if held > ringSize {
			t.Fatalf("the ring holds %d changes, more than its %d", held, ringSize)
		}
	}
	t.Logf("ingested %d deliveries in %v", total, time.Since(start))
	all := e.log()
	final.Store(lastSeq(all))
	readers.Wait()
	for i, a := range active {
		if a.err != nil {
			t.Errorf("active subscriber %d: %v", i, a.err)
		}
		checkSame(t, "active subscriber", all, a.got)
	}

	if len(stalled.pending) != 0 || stalled.cursor != 0 {
		t.Fatalf("the stalled subscription holds %d changes or moved to %d without reading", len(stalled.pending), stalled.cursor)
	}
	checkSame(t, "stalled subscriber", all, drain(t, stalled, lastSeq(all)))
	if want := (total - ringSize) / replayPage; stalled.replays < want {
		t.Errorf("the stalled subscriber read %d pages from the store, want at least %d", stalled.replays, want)
	}
}

// TestHeartbeats: an idle or filtered-out subscriber gets heartbeats whose
// cursor follows the log, and resuming from one loses nothing.
func TestHeartbeats(t *testing.T) {
	const interval = 30 * time.Millisecond
	e := newEnv(t, Options{HeartbeatInterval: interval})
	filter := Filter{UserIDs: []string{userID(1)}}
	sub := e.subscribe(Request{Filter: filter})

	h1, h2 := next(t, sub), next(t, sub)
	for _, h := range []Item{h1, h2} {
		if !h.Heartbeat || h.Change != nil || h.Cursor != 0 {
			t.Fatalf("idle: got %+v, want a heartbeat at cursor 0", h)
		}
	}
	if gap := h2.At.Sub(h1.At); gap < interval {
		t.Errorf("heartbeats %v apart, want at least %v", gap, interval)
	}

	unwanted := e.ingest(failures(0, 3, 1)...) // user 0
	var h Item
	for h.Cursor < lastSeq(unwanted) {
		prev := h.Cursor
		if h = next(t, sub); !h.Heartbeat || h.Cursor < prev {
			t.Fatalf("filtered out: got %+v after cursor %d, want a heartbeat at or after it", h, prev)
		}
	}
	if h.Cursor != lastSeq(unwanted) {
		t.Fatalf("heartbeat cursor %d, want %d", h.Cursor, lastSeq(unwanted))
	}

	// The client goes away after the heartbeat; what it wants is committed
	// before it comes back.
	wanted := e.ingest(failed(10, 1, "invalid_mfa", time.Minute))
	resumed := e.subscribe(Request{Filter: filter, Start: StartAfter(h.Cursor)})
	checkSame(t, "resumed", wanted, drain(t, resumed, lastSeq(wanted)))
	checkSame(t, "original", wanted, drain(t, sub, lastSeq(wanted)))
}

// TestShutdown: Close, or the end of Run's context, ends every pending Next
// promptly with ErrClosed, whether it waits live or replays, and refuses
// new subscriptions.
// It runs in a synctest bubble, where time is fake and moves only when
// every goroutine waits: "promptly" means before the clock moves at all.
func TestShutdown(t *testing.T) {
	for name, shutdown := range map[string]func(*env){
		"Close":             func(e *env) { e.broker.Close() },
		"Run's context end": func(e *env) { e.stopRun() },
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, Options{RingSize: 8})
				e.ingest(failures(0, 50, 1)...)
				subs := []*Subscription{e.subscribe(Request{}), e.subscribe(Request{}), e.subscribe(Request{Start: StartAfter(0)})}
				errs := make(chan error, len(subs))
				for _, sub := range subs[:2] {
					go func() {
						_, err := sub.Next(context.Background())
						errs <- err
					}()
				}
				synctest.Wait() // until both Next calls wait
				shutdown(e)
				start := time.Now()
				for range 2 {
					select {
					case err := <-errs:
						if !errors.Is(err, ErrClosed) {
							t.Errorf("waiting Next: %v, want ErrClosed", err)
						}
					case <-time.After(waitLimit):
						t.Fatal("Next still waiting after shutdown")
					}
				}
				if d := time.Since(start); d != 0 {
					t.Errorf("Next took %v to end, want no wait", d)
				}
				if _, err := subs[2].Next(context.Background()); !errors.Is(err, ErrClosed) {
					t.Errorf("Next behind the ring: %v, want ErrClosed", err)
				}
				if _, err := e.broker.Subscribe(t.Context(), Request{}); !errors.Is(err, ErrClosed) {
					t.Errorf("Subscribe: %v, want ErrClosed", err)
				}
			})
		})
	}
}

// TestNextContext: a caller that leaves gets its context's error, and the
// subscription can go on.
func TestNextContext(t *testing.T) {
	e := newEnv(t, Options{})
	sub := e.subscribe(Request{})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := sub.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: %v, want DeadlineExceeded", err)
	}
	changes := e.ingest(failures(0, 1, 1)...)
	checkSame(t, "after the timeout", changes, drain(t, sub, lastSeq(changes)))
}

// TestRestart: a client resuming from its last cursor on a restarted server
// gets exactly what it missed, then what comes next.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	first := openEnv(t, dir, Options{}, nil)
	sub := first.subscribe(Request{})
	seen := first.ingest(failures(0, 5, 1)...)
	var last Item
	for range 3 {
		last = next(t, sub)
	}
	missed := first.ingest(failures(5, 4, 1)...)
	first.broker.Close()
	if _, err := sub.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v, want ErrClosed", err)
	}
	if err := first.store.Close(); err != nil {
		t.Fatal(err)
	}

	second := openEnv(t, dir, Options{}, nil)
	resumed := second.subscribe(Request{Start: StartAfter(last.Cursor)})
	later := second.ingest(failures(9, 2, 1)...)
	want := append(append(seen[3:], missed...), later...)
	checkSame(t, "resumed", want, drain(t, resumed, lastSeq(later)))
}

// TestPollWithoutNotify: a commit nobody announces still reaches
// subscribers, at the next poll. On synctest's fake clock, that is exactly
// one PollInterval after the broker started.
func TestPollWithoutNotify(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const poll = 50 * time.Millisecond
		e := newEnv(t, Options{PollInterval: poll})
		sub := e.subscribe(Request{})
		synctest.Wait() // until Run has read the log's end and waits
		start := time.Now()
		changes := e.ingestQuietly(failures(0, 1, 1)...)
		checkSame(t, "polled", changes, drain(t, sub, lastSeq(changes)))
		if d := time.Since(start); d != poll {
			t.Errorf("delivered after %v, want at the first poll, %v", d, poll)
		}
	})
}

// watchingStore is a store shared with other processes: it hands the
// broker's wake-up to the test, which plays the other processes.
type watchingStore struct {
	store.Store
	calls atomic.Int32
	fail  error       // what the first watch returns at once, if not nil
	wakes chan func() // each lasting watch's wake function
}

func (w *watchingStore) WatchChanges(ctx context.Context, wake func()) error {
	if w.calls.Add(1) == 1 && w.fail != nil {
		return w.fail
	}
	w.wakes <- wake
	<-ctx.Done()
	return ctx.Err()
}

func TestWatcher(t *testing.T) {
	watch := func(t *testing.T, poll time.Duration, fail error) (*env, *watchingStore) {
		w := &watchingStore{fail: fail, wakes: make(chan func(), 1)}
		e := openEnv(t, t.TempDir(), Options{PollInterval: poll},
			func(s *sqlite.Store) store.Store { w.Store = s; return w })
		return e, w
	}
	t.Run("wake-ups deliver", func(t *testing.T) {
		// On synctest's fake clock the 200ms below pass only once every
		// goroutine waits: anything on its way would have come first.
		synctest.Test(t, func(t *testing.T) {
			e, w := watch(t, time.Hour, nil)
			wake := <-w.wakes
			sub := e.subscribe(Request{})
			nothing := func(when string) {
				ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
				defer cancel()
				if it, err := sub.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("%s: Next = %+v, %v; want nothing", when, it, err)
				}
			}
			nothing("before any commit")
			changes := e.ingestQuietly(failures(0, 2, 1)...)
			nothing("after a commit nobody announced")
			wake()
			checkSame(t, "woken", changes, drain(t, sub, lastSeq(changes)))
		})
	})
	t.Run("a broken watch is reopened", func(t *testing.T) {
		_, w := watch(t, 10*time.Millisecond, errors.New("connection lost"))
		select {
		case <-w.wakes:
		case <-time.After(waitLimit):
			t.Fatal("the watch was not reopened")
		}
		if n := w.calls.Load(); n != 2 {
			t.Errorf("WatchChanges called %d times, want 2", n)
		}
	})
	t.Run("a closed store is not watched again", func(t *testing.T) {
		// On synctest's fake clock, ten retry intervals pass only once
		// every goroutine waits, so a retry due in them would have happened.
		synctest.Test(t, func(t *testing.T) {
			const poll = 10 * time.Millisecond
			_, w := watch(t, poll, store.ErrClosed)
			time.Sleep(10 * poll)
			if n := w.calls.Load(); n != 1 {
				t.Errorf("WatchChanges called %d times, want 1", n)
			}
		})
	})
}

// Items say how far behind the tail their subscriber is, from the ring and
// from the store alike.
func TestItemsSayHowFarBehind(t *testing.T) {
	e := newEnv(t, Options{RingSize: 4, HeartbeatInterval: time.Hour})
	all := e.ingest(failures(0, 10, 1)...)
	waitTail(t, e.broker, lastSeq(all))
	for name, start := range map[string]int64{"replayed from the store": 0, "from the ring": all[6].Seq} {
		t.Run(name, func(t *testing.T) {
			sub := e.subscribe(Request{Start: StartAfter(start)})
			for _, c := range all {
				if c.Seq <= start {
					continue
				}
				it := next(t, sub)
				if want := lastSeq(all) - c.Seq; it.Change.Seq != c.Seq || it.Behind != want {
					t.Errorf("change %d: Behind = %d, want %d", it.Change.Seq, it.Behind, want)
				}
			}
		})
	}
}

// waitTail waits until the broker's tail has read the log up to seq.
func waitTail(t *testing.T, b *Broker, seq int64) {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		b.mu.RLock()
		tail, changed := b.ring.tail, b.changed
		b.mu.RUnlock()
		if tail >= seq {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("the tail reached %d, not %d", tail, seq)
		}
	}
}

// failingReads is a store whose ReadChanges fails while failing is set.
type failingReads struct {
	store.Store
	failing atomic.Bool
}

var errLogUnreadable = fmt.Errorf("%w: connection refused", store.ErrUnavailable)

func (f *failingReads) ReadChanges(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	if f.failing.Load() {
		return nil, errLogUnreadable
	}
	return f.Store.ReadChanges(ctx, after, limit)
}

// TestTailFailureEndsStreams: while the tail cannot read the log, a live
// subscriber gets the store's error instead of a heartbeat that would
// vouch for a stale cursor; once the tail reads again, heartbeats and
// changes follow as before, and the cursor loses nothing.
func TestTailFailureEndsStreams(t *testing.T) {
	f := &failingReads{}
	e := openEnv(t, t.TempDir(), Options{HeartbeatInterval: 30 * time.Millisecond}, func(s *sqlite.Store) store.Store {
		f.Store = s
		return f
	})
	sub := e.subscribe(Request{})
	f.failing.Store(true)
	missed := e.ingest(failed(1, 1, "invalid_mfa", 0))
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	for {
		it, err := sub.Next(ctx)
		if errors.Is(err, errLogUnreadable) {
			break
		}
		if err != nil || !it.Heartbeat {
			t.Fatalf("Next while the tail fails: %+v, %v; want heartbeats until the store's error", it, err)
		}
	}
	// The client retries until the tail reads again and the change comes.
	f.failing.Store(false)
	e.broker.Notify()
	for {
		it, err := sub.Next(ctx)
		if err != nil && !errors.Is(err, errLogUnreadable) {
			t.Fatalf("Next once the store is back: %v", err)
		}
		if it.Change != nil {
			checkSame(t, "after the tail recovered", missed, []store.Change{*it.Change})
			return
		}
	}
}

// Changes carry the provider's error messages, which may be as large as a
// delivery: the ring holds at most RingBytes of them, and a subscriber
// still gets every change, from the ring or from the store, in order.
func TestRingBoundedInBytes(t *testing.T) {
	const budget = 64 << 10
	e := newEnv(t, Options{RingSize: 1000, RingBytes: budget, HeartbeatInterval: time.Hour})
	sub := e.subscribe(Request{})
	var events []storetest.Event
	for i := range 40 {
		ev := failed(i, i, "invalid_mfa", time.Duration(i)*time.Millisecond)
		ev.ErrorMessage = strings.Repeat("m", (i%4)*10<<10) // 0 to 30 KB
		events = append(events, ev)
	}
	// One alone larger than the whole budget: it is not kept.
	events[25].ErrorMessage = strings.Repeat("m", 2*budget)
	var all []store.Change
	for _, ev := range events {
		all = append(all, e.ingest(ev)...)
		waitTail(t, e.broker, lastSeq(all))
		e.broker.mu.RLock()
		r := e.broker.ring
		held := 0
		for i := range r.n {
			held += changeSize(r.at(i))
		}
		e.broker.mu.RUnlock()
		if held > budget || held != r.bytes {
			t.Fatalf("after %d changes the ring holds %d bytes (counted %d), budget %d", len(all), held, r.bytes, budget)
		}
		if r.n > 0 && r.at(r.n-1).Seq != lastSeq(all) {
			t.Fatalf("the ring's newest change is %d, not the log's %d", r.at(r.n-1).Seq, lastSeq(all))
		}
	}
	checkSame(t, "subscriber", all, drain(t, sub, lastSeq(all)))
	if sub.replays == 0 {
		t.Error("the subscriber never read the store: the ring kept everything")
	}
}
