package natsexport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/accounthealth/accounthealth/internal/natstest"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/sqlite"
	"github.com/accounthealth/accounthealth/server/store/storetest"
	"github.com/accounthealth/accounthealth/server/stream"
)

// waitLimit bounds every wait: far above what any step needs, even under
// -race, so that a hang fails instead of stalling the suite.
const waitLimit = 20 * time.Second

var t0 = time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)

func accountID(n int) string { return fmt.Sprintf("0190a1e3-%04x-7c12-8e55-6b2d9f0c1a11", n) }
func userID(n int) string    { return fmt.Sprintf("0190a1e2-%04x-7b41-9f2e-1d7c3a4b5e60", n) }

func failed(acct int, at time.Duration) storetest.Event {
	return storetest.Event{Event: health.EventAccountsFailed, AccountID: accountID(acct), UserID: userID(acct % 3),
		ErrorCode: "invalid_mfa", ErrorMessage: "The MFA code was wrong.", ReceivedAt: t0.Add(at)}
}

func connected(acct int, at time.Duration) storetest.Event {
	return storetest.Event{Event: health.EventAccountsConnected, AccountID: accountID(acct), UserID: userID(acct % 3), ReceivedAt: t0.Add(at),
		Resource: &storetest.Resource{Status: health.ConnectionConnected, UpdatedAt: t0.Add(at), ScannedAt: t0.Add(at)}}
}

// story gives, for accounts from..from+n-1, a failed login then a
// recovery: two changes each, interleaved across accounts.
func story(from, n int) []storetest.Event {
	var events []storetest.Event
	for i := range n {
		events = append(events, failed(from+i, time.Duration(from+i)*time.Second))
	}
	for i := range n {
		events = append(events, connected(from+i, time.Duration(from+i)*time.Second+time.Hour))
	}
	return events
}

// env is a SQLite store with a broker over it, and a NATS server.
type env struct {
	t      testing.TB
	store  store.Store
	broker *stream.Broker
	nats   *natstest.Server
	logs   *logWatch
}

func newEnv(t testing.TB) *env {
	t.Helper()
	s, err := sqlite.Open(t.Context(), t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: s, nats: natstest.Start(t), logs: newLogWatch()}
	e.broker = e.runBroker()
	t.Cleanup(func() {
		_ = s.Close()
		if t.Failed() {
			e.logs.mu.Lock()
			defer e.logs.mu.Unlock()
			t.Logf("the exporters' log:\n%s", strings.Join(e.logs.lines, "\n"))
		}
	})
	return e
}

// runBroker runs a broker over the store until the test ends; a second
// one stands for another replica's.
func (e *env) runBroker() *stream.Broker {
	b := stream.New(e.store, stream.Options{Logger: slog.New(slog.DiscardHandler)})
	ran := make(chan error, 1)
	go func() { ran <- b.Run(context.Background()) }()
	e.t.Cleanup(func() {
		b.Close()
		if err := <-ran; err != nil {
			e.t.Errorf("broker Run: %v", err)
		}
	})
	return b
}

// ingest commits the events and wakes the broker, as the service does.
func (e *env) ingest(events ...storetest.Event) {
	e.t.Helper()
	if _, err := e.store.Ingest(context.Background(), storetest.Deliveries(events...)); err != nil {
		e.t.Fatalf("Ingest: %v", err)
	}
	e.broker.Notify()
}

// changes returns the whole change log.
func (e *env) changes() []store.Change {
	e.t.Helper()
	var all []store.Change
	for {
		after := int64(0)
		if len(all) > 0 {
			after = all[len(all)-1].Seq
		}
		page, err := e.store.ReadChanges(context.Background(), after, store.MaxPageSize)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
	}
}

// running is an exporter in its own goroutine.
type running struct {
	*Exporter
	stop func() // cancels Run and waits for it
}

// export runs an exporter over broker b with opts (URL and logger filled
// in) until stop or the test's end.
func (e *env) export(b *stream.Broker, opts Options) *running {
	e.t.Helper()
	if opts.URL == "" {
		opts.URL = e.nats.URL()
	}
	opts.Logger = slog.New(e.logs)
	opts.RetryInterval = 50 * time.Millisecond
	x, err := New(b, e.store, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- x.Run(ctx) }()
	var once sync.Once
	r := &running{Exporter: x, stop: func() {
		once.Do(func() {
			cancel()
			if err := <-ran; err != nil {
				e.t.Errorf("Run: %v", err)
			}
		})
	}}
	e.t.Cleanup(r.stop)
	return r
}

// js connects a consumer's client to the NATS server.
func (e *env) js() jetstream.JetStream {
	e.t.Helper()
	nc, err := nats.Connect(e.nats.URL(), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	return js
}

// receive reads the stream from its start with an ordered consumer until
// it has n messages, and fails if they do not come.
func receive(t *testing.T, js jetstream.JetStream, streamName string, n int) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	var cons jetstream.Consumer
	var err error
	// The exporter creates the stream: wait for it.
	for cons == nil {
		cons, err = js.OrderedConsumer(ctx, streamName, jetstream.OrderedConsumerConfig{})
		if err != nil && (!errors.Is(err, jetstream.ErrStreamNotFound) || ctx.Err() != nil) {
			t.Fatalf("OrderedConsumer: %v", err)
		}
		if cons == nil {
			waitStream(ctx, js, streamName)
		}
	}
	var msgs []jetstream.Msg
	for len(msgs) < n {
		m, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(msgs), n, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// waitStream waits for the stream to be created, by watching the
// JetStream API's creation advisories.
func waitStream(ctx context.Context, js jetstream.JetStream, name string) {
	sub, err := js.Conn().SubscribeSync("$JS.EVENT.ADVISORY.STREAM.CREATED." + name)
	if err != nil {
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	if _, err := js.Stream(ctx, name); err == nil {
		return
	}
	_, _ = sub.NextMsgWithContext(ctx)
}

// streamState is the stream's message count and last sequence.
func streamState(t *testing.T, js jetstream.JetStream, name string) jetstream.StreamState {
	t.Helper()
	st, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}

// logWatch is a slog.Handler that lets a test wait for a log message, and
// keeps the log for a failed test to show.
type logWatch struct {
	mu    sync.Mutex
	seen  map[string]chan struct{} // closed once the message was logged
	lines []string
}

func newLogWatch() *logWatch { return &logWatch{seen: map[string]chan struct{}{}} }

func (w *logWatch) ch(msg string) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.seen[msg]
	if !ok {
		c = make(chan struct{})
		w.seen[msg] = c
	}
	return c
}

// wait waits until msg is logged (or was, since the last forget).
func (w *logWatch) wait(t *testing.T, msg string) {
	t.Helper()
	select {
	case <-w.ch(msg):
	case <-time.After(waitLimit):
		t.Fatalf("no %q logged within %s", msg, waitLimit)
	}
}

// forget makes wait wait for msg's next logging.
func (w *logWatch) forget(msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.seen, msg)
}

func (w *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *logWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *logWatch) WithGroup(string) slog.Handler            { return w }
func (w *logWatch) Handle(_ context.Context, r slog.Record) error {
	c := w.ch(r.Message)
	line := r.Time.Format("15:04:05.000") + " " + r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = append(w.lines, line)
	select {
	case <-c:
	default:
		close(c)
	}
	return nil
}
