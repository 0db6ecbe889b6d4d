// Package natsexport publishes every committed transition to a NATS
// JetStream stream, in the order of the change log, exactly once.
//
// The export is a cursor over the change log (a stream.Subscription, so it
// wakes on local commits and, on PostgreSQL, on other replicas' commits)
// whose position lives in JetStream itself: the last message the stream
// holds names the change it carries (its Nats-Msg-Id is outbound's stable
// id). Each message is published with the stream sequence it expects to
// follow (Nats-Expected-Last-Sequence), so the stream takes it only right
// after the change before it. That one check makes the stream an exact
// copy of the log's order:
//   - a crash between a publish and its acknowledgement loses nothing and
//     duplicates nothing: the next start reads where the stream ends;
//   - several replicas may export to one stream at once: the first to
//     append a change wins, the others' publishes are refused, and they
//     read the stream's end again and carry on from there;
//   - a broker outage pauses the export, which resumes where the stream
//     ends, nothing skipped.
//
// Nats-Msg-Id is set as well, so that JetStream's deduplication window
// also removes a copy from any other path.
package natsexport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/accounthealth/accounthealth/server/stream"
)

// Defaults of Options.
const (
	DefaultStream        = "ACCOUNTHEALTH"
	DefaultSubjectPrefix = "accounthealth"
	// DefaultDuplicates is the deduplication window of a stream the export
	// creates: JetStream's own default.
	DefaultDuplicates = 2 * time.Minute
	// DefaultAckTimeout bounds the wait for one PubAck, and so the flush
	// of in-flight publishes at shutdown.
	DefaultAckTimeout = 5 * time.Second
	// DefaultRetryInterval is the first wait after a failure; it doubles
	// up to maxRetryInterval while failures go on. A reconnection to the
	// broker ends the wait at once.
	DefaultRetryInterval = time.Second
	maxRetryInterval     = 30 * time.Second
)

// Batch bounds: the changes published before their acknowledgements are
// awaited, in count and in bytes of message bodies.
const (
	maxBatch      = 256
	maxBatchBytes = 4 << 20
)

// Options configure an Exporter. Zero values take the defaults; URL is
// required.
type Options struct {
	URL           string // the NATS server(s), comma-separated
	Stream        string // the JetStream stream's name
	SubjectPrefix string // the first tokens of every subject
	// Duplicates is the deduplication window of the stream when the
	// export creates it; an existing stream is used as configured.
	Duplicates    time.Duration
	AckTimeout    time.Duration
	RetryInterval time.Duration
	// Name names the connection on the NATS server (its monitoring).
	Name   string
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = DefaultSubjectPrefix
	}
	if o.Duplicates <= 0 {
		o.Duplicates = DefaultDuplicates
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.Name == "" {
		o.Name = "accounthealth export"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate reports every problem with o at once, each naming its flag.
func (o Options) Validate() error {
	var errs []error
	if err := checkURLs(o.URL); err != nil {
		errs = append(errs, err)
	}
	if o.Stream != "" && strings.ContainsAny(o.Stream, ".*> \t\r\n/\\") {
		errs = append(errs, fmt.Errorf("nats-stream: %q is not a stream name: it must not hold '.', '*', '>', '/', '\\' or whitespace", o.Stream))
	}
	if o.SubjectPrefix != "" && !validPrefix(o.SubjectPrefix) {
		errs = append(errs, fmt.Errorf("nats-subject-prefix: %q is not a subject prefix: dot-separated non-empty tokens without '*', '>' or whitespace, e.g. accounthealth", o.SubjectPrefix))
	}
	if o.Duplicates < 0 || o.AckTimeout < 0 || o.RetryInterval < 0 {
		errs = append(errs, errors.New("nats: durations must not be negative"))
	}
	return errors.Join(errs...)
}

// checkURLs checks the comma-separated server URLs as nats.Connect reads
// them, so that a typo is refused at start rather than retried for ever.
func checkURLs(urls string) error {
	if strings.TrimSpace(urls) == "" {
		return errors.New("nats-url: required to export to JetStream (e.g. nats://127.0.0.1:4222)")
	}
	for raw := range strings.SplitSeq(urls, ",") {
		raw = strings.TrimSpace(raw)
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("nats-url: %w", err)
		}
		switch {
		case u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss":
			return fmt.Errorf("nats-url: %q: the scheme must be nats, tls, ws or wss", raw)
		case u.Hostname() == "":
			return fmt.Errorf("nats-url: %q has no host", raw)
		}
	}
	return nil
}

func validPrefix(p string) bool {
	for tok := range strings.SplitSeq(p, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return false
		}
	}
	return true
}

// Status is the export's state, for metrics.
type Status struct {
	Exported uint64 // messages this process appended to the stream
	Failures uint64 // failed attempts (publish, acknowledgement, stream lookup)
	LastSeq  int64  // the change the stream's last message carries, as last seen
	Behind   int64  // changes the log held past LastSeq at the last look
	Paused   bool   // the broker is unreachable or refuses the export
	// Current: the stream held every change of the log at the last look.
	// CurrentAt is when the export last found it so (at first, when it
	// was created), for the lag in seconds while it is not.
	Current   bool
	CurrentAt time.Time
}

// Log is where the export learns how far the change log reaches (a
// store.Store), for its lag right after it reads where the stream ends.
type Log interface {
	LastChangeSeq(ctx context.Context) (int64, error)
}

// Exporter publishes the change log to JetStream. Create it with New and
// run it with Run.
type Exporter struct {
	broker *stream.Broker
	log    Log
	opts   Options
	wake   chan struct{} // a reconnection: retry now

	mu     sync.Mutex
	status Status
}

// New returns an exporter of the change log that broker reads from log. It
// connects to nothing until Run.
func New(broker *stream.Broker, log Log, opts Options) (*Exporter, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Exporter{broker: broker, log: log, opts: opts.withDefaults(), wake: make(chan struct{}, 1), status: Status{CurrentAt: time.Now()}}, nil
}

// Status returns the export's state now.
func (e *Exporter) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.status
}

// Run exports until ctx ends or the broker closes, then waits for the
// acknowledgements of what is in flight (at most AckTimeout) and returns
// nil. It never gives up on the broker: an unreachable or failing NATS
// pauses the export, which resumes when it answers again. It fails only
// when the URL cannot be used at all.
func (e *Exporter) Run(ctx context.Context) error {
	nc, err := nats.Connect(e.opts.URL,
		nats.Name(e.opts.Name),
		// Start even while NATS is down: intake never waits for it.
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(e.opts.RetryInterval),
		// Publishes fail at once while disconnected rather than queue in
		// the client: the log keeps them, the export resumes from it.
		nats.ReconnectBufSize(-1),
		nats.ConnectHandler(func(*nats.Conn) { e.poke() }),
		nats.ReconnectHandler(func(*nats.Conn) { e.poke() }),
	)
	if err != nil {
		return fmt.Errorf("natsexport: connect to %s: %w", redacted(e.opts.URL), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(e.opts.AckTimeout), jetstream.WithPublishAsyncMaxPending(maxBatch))
	if err != nil {
		return fmt.Errorf("natsexport: %w", err)
	}
	e.opts.Logger.Info("exporting transitions to JetStream", "nats_url", redacted(e.opts.URL), "stream", e.opts.Stream, "subject_prefix", e.opts.SubjectPrefix)
	delay := e.opts.RetryInterval
	for {
		progressed, err := e.session(ctx, js)
		switch {
		case ctx.Err() != nil, errors.Is(err, stream.ErrClosed):
			return nil
		case errors.Is(err, errConflict):
			// Another replica appended first: read the stream's end again,
			// at once if this one got anything in; one that keeps losing
			// waits a little, so that it does not spin beside the winner,
			// and takes over within that wait if the winner stops.
			delay = e.opts.RetryInterval
			if !progressed && !sleep(ctx, delay) {
				return nil
			}
			continue
		case progressed:
			delay = e.opts.RetryInterval
		}
		e.pause(err, delay)
		select {
		case <-ctx.Done():
			return nil
		case <-e.wake:
		case <-time.After(delay):
		}
		delay = min(2*delay, maxRetryInterval)
	}
}

// sleep waits for d and says whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// redacted is urls without passwords, for logs; a user name without a
// password is NATS's token authentication, so it goes too.
func redacted(urls string) string {
	parts := strings.Split(urls, ",")
	for i, raw := range parts {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.User == nil {
			continue
		}
		if _, ok := u.User.Password(); ok {
			parts[i] = u.Redacted()
			continue
		}
		u.User = url.User("xxxxx")
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// poke ends a wait between retries.
func (e *Exporter) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// pause records a failed attempt, logging when the export stops.
func (e *Exporter) pause(err error, retryIn time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.status.Failures++
	e.status.Current = false
	if !e.status.Paused {
		e.opts.Logger.Warn("JetStream export paused; intake goes on, and the export resumes where the stream ends",
			"error", err, "last_exported_seq", e.status.LastSeq, "retry_in", retryIn)
	}
	e.status.Paused = true
}

// resume records that the stream answers again.
func (e *Exporter) resume(lastSeq int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.status.LastSeq = lastSeq
	if e.status.Paused {
		e.opts.Logger.Info("JetStream export resumed", "after_seq", lastSeq)
	}
	e.status.Paused = false
}

// progress records a batch appended up to lastSeq, with behind changes
// known to follow it.
func (e *Exporter) progress(appended int, lastSeq, behind int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.status.Exported += uint64(appended)
	e.status.LastSeq, e.status.Behind = lastSeq, behind
	e.status.Current = behind == 0
	if e.status.Current {
		e.status.CurrentAt = time.Now()
	}
}
