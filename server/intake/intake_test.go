package intake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/webhook"
)

const secret = "s3cret"

var body = []byte(`{"event":"accounts.failed","name":"n","data":{"account":"a1","user":"u1","error_code":"invalid_mfa"}}`)

// recorder commits nothing; it keeps what it was given.
type recorder struct {
	mu   sync.Mutex
	got  []store.Delivery
	fail error
}

func (r *recorder) commit(_ context.Context, d store.Delivery) (store.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return store.Result{}, r.fail
	}
	r.got = append(r.got, d)
	return store.Result{EntrySeq: int64(len(r.got)), Outcome: health.OutcomeApplied}, nil
}

func newTestPipeline(t *testing.T, cfg Config, r *recorder) *Pipeline {
	t.Helper()
	p, err := NewPipeline(cfg, r.commit)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewPipelineNeedsASecretOrExplicitUnsigned(t *testing.T) {
	if _, err := NewPipeline(Config{}, (&recorder{}).commit); err == nil {
		t.Fatal("a pipeline with no secret and unsigned not allowed was built")
	}
	if _, err := NewPipeline(Config{AllowUnsigned: true}, (&recorder{}).commit); err != nil {
		t.Fatalf("unsigned allowed: %v", err)
	}
	if _, err := NewPipeline(Config{Secrets: []string{""}}, (&recorder{}).commit); err == nil {
		t.Fatal("an empty secret was accepted")
	}
}

func TestCheckSize(t *testing.T) {
	p := newTestPipeline(t, Config{Secrets: []string{secret}, MaxBodyBytes: 10}, &recorder{})
	if err := p.checkSize(make([]byte, 10)); err != nil {
		t.Errorf("at the cap: %v", err)
	}
	if err := p.checkSize(make([]byte, 11)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the cap: %v", err)
	}
}

func TestVerify(t *testing.T) {
	cases := []struct {
		name      string
		cfg       Config
		signature string
		verified  bool
		err       error
	}{
		{"signed", Config{Secrets: []string{secret}}, webhook.Sign(secret, body), true, nil},
		{"second secret while rotating", Config{Secrets: []string{"old", secret}}, webhook.Sign(secret, body), true, nil},
		{"unsigned refused", Config{Secrets: []string{secret}}, "", false, webhook.ErrMissingSignature},
		{"wrong secret", Config{Secrets: []string{secret}}, webhook.Sign("other", body), false, webhook.ErrInvalidSignature},
		{"unsigned allowed", Config{Secrets: []string{secret}, AllowUnsigned: true}, "", false, nil},
		{"present signature still checked", Config{Secrets: []string{secret}, AllowUnsigned: true}, webhook.Sign("other", body), false, webhook.ErrInvalidSignature},
		{"no secret: verification off", Config{AllowUnsigned: true}, webhook.Sign("other", body), false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newTestPipeline(t, c.cfg, &recorder{})
			verified, err := p.verify(body, c.signature)
			if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if verified != c.verified {
				t.Errorf("verified = %v, want %v", verified, c.verified)
			}
		})
	}
}

func TestReceiveStopsAtTheFirstFailingStep(t *testing.T) {
	cases := []struct {
		name      string
		body      []byte
		signature string
		storeErr  error
		want      error
		stored    bool
	}{
		{"accepted", body, webhook.Sign(secret, body), nil, nil, true},
		{"too large is refused before the signature is looked at", append(append([]byte{}, body...), make([]byte, 200)...), "", nil, ErrTooLarge, false},
		{"bad signature", body, webhook.Sign("x", body), nil, webhook.ErrInvalidSignature, false},
		{"malformed", []byte(`{"name":"no event"}`), webhook.Sign(secret, []byte(`{"name":"no event"}`)), nil, webhook.ErrMalformed, false},
		{"store down", body, webhook.Sign(secret, body), errors.New("disk full"), ErrUnavailable, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &recorder{fail: c.storeErr}
			p := newTestPipeline(t, Config{Secrets: []string{secret}, MaxBodyBytes: len(body) + 100}, r)
			acc, err := p.Receive(t.Context(), c.body, c.signature)
			if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if stored := len(r.got) == 1; stored != c.stored {
				t.Fatalf("stored = %v, want %v", stored, c.stored)
			}
			if c.stored {
				d := r.got[0]
				if string(d.Body) != string(c.body) || !d.Verified || d.Name != "n" || d.Decoded.AccountID != "a1" || d.Decoded.ErrorCode != "invalid_mfa" {
					t.Errorf("stored delivery = %+v", d)
				}
				if acc.Envelope.Event != "accounts.failed" || acc.Result.EntrySeq != 1 {
					t.Errorf("accepted = %+v", acc)
				}
			}
		})
	}
}

// heard records what an Observer was told, one entry per call.
type heard struct {
	mu    sync.Mutex
	calls []string
}

func (h *heard) add(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, s)
}

func (h *heard) DeliveryReceived()                                  { h.add("received") }
func (h *heard) DeliveryAccepted(o health.Outcome, _ time.Duration) { h.add("accepted " + o.String()) }
func (h *heard) DeliveryRejected(reason string)                     { h.add("rejected " + reason) }

func TestObserverHearsEveryDelivery(t *testing.T) {
	malformed := []byte(`{"name":"no event"}`)
	cases := []struct {
		name      string
		body      []byte
		signature string
		storeErr  error
		canceled  bool
		want      string
	}{
		{"accepted", body, webhook.Sign(secret, body), nil, false, "accepted APPLIED"},
		{"too large", append(append([]byte{}, body...), make([]byte, 200)...), "", nil, false, "rejected too_large"},
		{"unsigned", body, "", nil, false, "rejected missing_signature"},
		{"bad signature", body, webhook.Sign("x", body), nil, false, "rejected invalid_signature"},
		{"malformed", malformed, webhook.Sign(secret, malformed), nil, false, "rejected malformed"},
		{"store down", body, webhook.Sign(secret, body), errors.New("disk full"), false, "rejected store_unavailable"},
		{"sender gone", body, webhook.Sign(secret, body), context.Canceled, true, "rejected canceled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &heard{}
			p := newTestPipeline(t, Config{Secrets: []string{secret}, MaxBodyBytes: len(body) + 100, Observer: h}, &recorder{fail: c.storeErr})
			ctx, cancel := context.WithCancel(t.Context())
			if c.canceled {
				cancel()
			}
			defer cancel()
			_, _ = p.Receive(ctx, c.body, c.signature)
			if got := strings.Join(h.calls, ", "); got != "received, "+c.want {
				t.Errorf("observer heard %q, want %q", got, "received, "+c.want)
			}
		})
	}
}

// gate is a store whose commits wait until released, so a test can pile
// deliveries up behind one in-flight commit.
type gate struct {
	store.Store
	entered atomic.Int32 // commits started
	release chan struct{}
	mu      sync.Mutex
	batches []int
	fail    error
}

func (g *gate) Ingest(_ context.Context, ds []store.Delivery) ([]store.Result, error) {
	g.entered.Add(1)
	<-g.release
	g.mu.Lock()
	g.batches = append(g.batches, len(ds))
	g.mu.Unlock()
	if g.fail != nil {
		return nil, g.fail
	}
	out := make([]store.Result, len(ds))
	for i, d := range ds {
		out[i] = store.Result{EntrySeq: int64(len(d.Body)), Outcome: health.OutcomeApplied}
	}
	return out, nil
}

func TestBatcherGroupsDeliveriesBehindACommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &gate{release: make(chan struct{})}
		var observed []int // commit loop only, read after Close
		b := NewBatcher(g, 64, nil, func(size int, _ time.Duration, results []store.Result, err error) {
			if len(results) != size || err != nil {
				t.Errorf("observer got %d results and error %v for a commit of %d", len(results), err, size)
			}
			observed = append(observed, size)
		})

		var wg sync.WaitGroup
		results := make([]store.Result, 41)
		submit := func(i int) {
			defer wg.Done()
			res, err := b.Submit(context.Background(), store.Delivery{Body: make([]byte, i)})
			if err != nil {
				t.Errorf("submit %d: %v", i, err)
			}
			results[i] = res
		}
		wg.Add(1)
		go submit(0) // its commit holds the gate
		settled(t, "one commit in flight", func() bool { return g.entered.Load() == 1 })
		for i := 1; i <= 40; i++ {
			wg.Add(1)
			go submit(i)
		}
		settled(t, "40 queued", func() bool { return len(b.queue) == 40 })
		close(g.release)
		wg.Wait()
		b.Close()

		if len(g.batches) != 2 || g.batches[0] != 1 || g.batches[1] != 40 {
			t.Errorf("batches = %v, want [1 40]", g.batches)
		}
		if !slices.Equal(observed, g.batches) {
			t.Errorf("observed commits of %v, want %v", observed, g.batches)
		}
		for i, r := range results {
			if r.EntrySeq != int64(i) {
				t.Errorf("delivery %d got the result of %d", i, r.EntrySeq)
			}
		}
	})
}

func TestBatcherReportsCommitFailureToEveryone(t *testing.T) {
	g := &gate{release: make(chan struct{}), fail: errors.New("disk full")}
	close(g.release)
	b := NewBatcher(g, 0, nil, nil)
	defer b.Close()
	if _, err := b.Submit(t.Context(), store.Delivery{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v", err)
	}
}

// hung is a store whose commits never return until their ctx ends.
type hung struct{ store.Store }

func (hung) Ingest(ctx context.Context, _ []store.Delivery) ([]store.Result, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("ingest: %w", ctx.Err())
}

// TestBatcherBoundsAHungStore: a store that does not answer costs senders
// commitTimeout, below the provider's webhook timeout, and they hear a
// failure a retry can fix, not a deadline of their own; so does the
// observer.
func TestBatcherBoundsAHungStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var observed error
		b := NewBatcher(hung{}, 0, nil, func(_ int, _ time.Duration, results []store.Result, err error) {
			if results != nil {
				t.Errorf("observer got results of a failed commit")
			}
			observed = err
		})
		start := time.Now()
		_, err := b.Submit(context.Background(), store.Delivery{})
		if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Submit to a hung store: %v, want store.ErrUnavailable and not a deadline", err)
		}
		if waited := time.Since(start); waited != commitTimeout || commitTimeout >= 10*time.Second {
			t.Errorf("the sender waited %s (fake clock), want commitTimeout, %s, below the provider's 10 s", waited, commitTimeout)
		}
		b.Close()
		if !errors.Is(observed, store.ErrUnavailable) || errors.Is(observed, context.DeadlineExceeded) {
			t.Errorf("the observer heard %v, want store.ErrUnavailable and not a deadline", observed)
		}
	})
}

func TestBatcherCloseCommitsWhatIsQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &gate{release: make(chan struct{})}
		b := NewBatcher(g, 8, nil, nil)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var ok int
		submit := func() {
			defer wg.Done()
			if _, err := b.Submit(context.Background(), store.Delivery{}); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}
		wg.Add(5)
		go submit() // held in the commit
		settled(t, "one commit in flight", func() bool { return g.entered.Load() == 1 })
		for range 4 {
			go submit()
		}
		settled(t, "4 queued", func() bool { return len(b.queue) == 4 })
		closed := make(chan struct{})
		go func() { b.Close(); close(closed) }()
		close(g.release)
		<-closed
		wg.Wait()
		if ok != 5 {
			t.Errorf("%d of 5 queued deliveries committed before Close returned", ok)
		}
		if _, err := b.Submit(t.Context(), store.Delivery{}); !errors.Is(err, ErrStopped) {
			t.Errorf("submit after close: %v", err)
		}
	})
}

func TestBatcherCallerGivingUpDoesNotBlockTheLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &gate{release: make(chan struct{})}
		b := NewBatcher(g, 8, nil, nil)
		defer b.Close()
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { _, err := b.Submit(ctx, store.Delivery{}); errc <- err }()
		settled(t, "one commit in flight", func() bool { return g.entered.Load() == 1 })
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		close(g.release)
		// The loop delivers the abandoned result without blocking, then serves others.
		if _, err := b.Submit(t.Context(), store.Delivery{}); err != nil {
			t.Fatalf("next submit: %v", err)
		}
	})
}

// settled waits, in a synctest bubble, until every other goroutine of the
// test is blocked, and fails unless cond then holds: with all of them
// blocked, nothing can make it true before the test acts.
func settled(t *testing.T, what string, cond func() bool) {
	t.Helper()
	synctest.Wait()
	if !cond() {
		t.Fatalf("not %s once every goroutine waits", what)
	}
}

// changer commits everything and reports a change for bodies that say so.
type changer struct{ store.Store }

func (changer) Ingest(_ context.Context, ds []store.Delivery) ([]store.Result, error) {
	out := make([]store.Result, len(ds))
	for i, d := range ds {
		if string(d.Body) == "change" {
			out[i].Change = &store.Change{Seq: 1}
		}
	}
	return out, nil
}

func TestBatcherWakesStreamsOnlyForChanges(t *testing.T) {
	var wakes atomic.Int32
	b := NewBatcher(changer{}, 8, func() { wakes.Add(1) }, nil)
	defer b.Close()
	for _, body := range []string{"quiet", "change", "quiet"} {
		if _, err := b.Submit(t.Context(), store.Delivery{Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := wakes.Load(); n != 1 {
		t.Errorf("%d wake-ups, want 1 (one commit appended a change)", n)
	}
}

// The bodies queued or in a commit stay within MaxQueueBytes: a Submit
// beyond it waits (outside the queue) for a commit to make room, and a body
// larger than all of it is still committed, alone.
func TestBatcherQueueBoundedInBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &gate{release: make(chan struct{})}
		b := NewBatcher(g, 64, nil, nil)
		var wg sync.WaitGroup
		submit := func(size int) {
			wg.Go(func() {
				if _, err := b.Submit(context.Background(), store.Delivery{Body: make([]byte, size)}); err != nil {
					t.Errorf("submit of %d bytes: %v", size, err)
				}
			})
		}
		submit(MaxQueueBytes / 2) // its commit holds the gate
		settled(t, "one commit in flight", func() bool { return g.entered.Load() == 1 })
		submit(MaxQueueBytes / 2)
		settled(t, "the second queued", func() bool { return len(b.queue) == 1 })
		submit(1)
		submit(MaxQueueBytes + 1)
		settled(t, "the others waiting for room", func() bool { return len(b.queue) == 1 })
		close(g.release)
		wg.Wait()
		b.Close()
		if n := len(g.batches); n < 3 || g.batches[0] != 1 || g.batches[n-1] != 1 {
			t.Errorf("batches = %v, want the first alone (it filled half the room) and the last alone (the too-large body, or the one that waited behind it)", g.batches)
		}
	})
}
