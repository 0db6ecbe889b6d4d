// Package notify delivers committed transitions to outbound webhook
// endpoints, signed in the Standard Webhooks form, at least once and in
// order per account per endpoint.
//
// Delivery is a cursor over the durable change log, like a stream: each
// endpoint's cursor is moved by a fan-in that stores the endpoint's
// messages in the same commit (store.Outbox.FanIn), so nothing committed
// is skipped across crashes or replicas. A dispatcher leases due messages
// in the store (one process sends a message at a time; a crashed holder's
// lease expires), sends them within the endpoint's concurrency and rate
// limits, records every attempt, and reschedules failures on a retry
// schedule with jitter, honouring Retry-After. Only the oldest pending
// message of an account is due, so one failing account holds back only
// its own messages.
package notify

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/accounthealth/accounthealth/server/outbound"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/stream"
)

// Defaults of Options.
const (
	DefaultTimeout      = 15 * time.Second
	DefaultDisableAfter = 5 * 24 * time.Hour
	DefaultPollInterval = 5 * time.Second
	// leaseMargin is added to the timeout for a message's lease: the time
	// to record the attempt after the receiver answered.
	leaseMargin = 5 * time.Second
	// fanInPage is how many changes a fan-in reads at a time.
	fanInPage = 500
)

// Observer hears about deliveries, for metrics. Its functions may be nil.
type Observer struct {
	Attempted func(endpointID string, delivered bool, latency time.Duration)
	Disabled  func(endpointID string)
}

// Config is what an operator sets (flags of `accounthealth serve`). Zero
// values take the defaults.
type Config struct {
	Schedule     []time.Duration // DefaultSchedule when nil
	Timeout      time.Duration   // for a 2xx, DefaultTimeout when 0
	DisableAfter time.Duration   // of failing everything, DefaultDisableAfter when 0
	// PollInterval bounds how long a change committed elsewhere (another
	// replica without a store Watcher) or a retry waits to be noticed.
	PollInterval  time.Duration
	AllowInsecure bool // plain http to any host
}

// Validate reports a problem with c, naming the flag.
func (c Config) Validate() error {
	var errs []error
	if c.Schedule != nil && len(c.Schedule) == 0 {
		errs = append(errs, errors.New("notify-retry-schedule: lists no attempt; give at least one delay (0s: at once)"))
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"notify-timeout", c.Timeout}, {"notify-disable-after", c.DisableAfter}, {"notify-poll-interval", c.PollInterval}} {
		if d.d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %v (0 takes the default)", d.name, d.d))
		}
	}
	return errors.Join(errs...)
}

// Options configure a Notifier.
type Options struct {
	Config
	// Holder names this process in the store's leases.
	Holder   string
	OwnAddrs func() []string // the service's listeners, refused as endpoints
	Now      func() time.Time
	Logger   *slog.Logger
	Observer Observer
}

// Notifier manages the endpoints and delivers their messages.
type Notifier struct {
	log    store.Store
	outbox store.Outbox
	opts   Options
	urls   urlChecker
	wake   chan struct{}

	// records carries finished attempts to the dispatcher, whose next
	// pass commits what has gathered with its fan-in and claim: one commit
	// (an fsync) per attempt would bound deliveries to the store's commits
	// per second.
	records chan pendingRecord

	mu    sync.Mutex
	lanes map[string]*lane
	// unrecorded counts the attempts whose requests ended and whose records
	// no pass has taken yet; a claim leaves room for them, so that they
	// never exceed what records holds.
	unrecorded int
	turn       int         // which endpoint a claim lists first
	wakes      wakeTimes   // when retries (and rate limits) are due
	due        *time.Timer // wakes the dispatcher at the earliest of wakes
	dueAt      time.Time
	sends      sync.WaitGroup
}

// lane is an endpoint's deliveries in flight in this process.
type lane struct {
	inflight int           // requests not yet answered: the endpoint's concurrency
	limiter  *rate.Limiter // nil without a rate limit
	client   *http.Client  // the endpoint's own connections, as many as its concurrency
	idle     int           // client's pool size
}

// New returns a Notifier over a store that is both the log and its outbox.
func New(log store.Store, outbox store.Outbox, opts Options) *Notifier {
	if opts.Schedule == nil {
		opts.Schedule = DefaultSchedule
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.DisableAfter <= 0 {
		opts.DisableAfter = DefaultDisableAfter
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Notifier{
		log: log, outbox: outbox, opts: opts, wake: make(chan struct{}, 1), lanes: map[string]*lane{},
		records: make(chan pendingRecord, store.MaxAttemptRecords),
		urls:    urlChecker{allowInsecure: opts.AllowInsecure, own: opts.OwnAddrs, resolver: net.DefaultResolver},
	}
}

// newClient keeps up to idle connections open for reuse: an endpoint's
// concurrency. One pool for all endpoints kept at most a hundred, so
// endpoints sharing a host (or more than a hundred requests in flight)
// dialled and closed a connection for most requests. It does not follow
// redirects: a receiver answers for itself, and a 3xx counts as a
// failure.
func newClient(idle int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = idle, idle
	return &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (n *Notifier) now() time.Time { return n.opts.Now().UTC() }

// Notify tells the dispatcher that new changes or due messages may be
// there. It never blocks; wake-ups coalesce.
func (n *Notifier) Notify() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run fans in and delivers until ctx ends, then waits for the deliveries
// in flight (their requests end with ctx) and returns.
func (n *Notifier) Run(ctx context.Context) {
	poll := time.NewTicker(n.opts.PollInterval)
	defer poll.Stop()
	defer n.sends.Wait()
	for {
		n.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		case <-poll.C:
		}
	}
}

// pass records the attempts finished since the last one, fans in and
// claims, in one commit for every enabled endpoint (store.Outbox.Step),
// then sends what it claimed. A failing store is retried at the next
// wake-up or poll: the log and the outbox keep everything meanwhile, and
// an attempt whose record failed is made again once its lease expires.
func (n *Notifier) pass(ctx context.Context) {
	records := n.takeRecords()
	// Without the endpoints the step still records the attempts.
	all, err := n.outbox.ListEndpoints(ctx)
	if err != nil && ctx.Err() == nil {
		n.opts.Logger.Warn("notify: listing endpoints failed; retrying", "error", err)
	}
	if err == nil {
		n.forgetLanes(all)
	}
	var enabled []*store.Endpoint
	for i := range all {
		if !all[i].Disabled {
			enabled = append(enabled, &all[i])
		}
	}
	step := store.OutboxStep{Claim: store.MessageClaim{Holder: n.opts.Holder}}
	for _, r := range records {
		step.Records = append(step.Records, r.AttemptRecord)
	}
	var to int64
	if len(enabled) > 0 {
		if step.Batches, to, err = n.fanIn(ctx, enabled); err != nil && ctx.Err() == nil {
			n.opts.Logger.Warn("notify: fan-in failed; retrying", "error", err)
		}
	}
	byID, lanes := n.claimFor(enabled, &step.Claim)
	if len(step.Records)+len(step.Batches)+len(step.Claim.Endpoints) == 0 {
		return
	}
	res, err := n.outbox.Step(ctx, step)
	if err != nil && ctx.Err() == nil {
		n.opts.Logger.Warn("notify: an outbox step failed; retrying", "error", err)
	}
	for i, r := range records {
		out := recordResult{err: err}
		if err == nil {
			out.AttemptResult = res.Results[i]
		}
		r.done <- out
	}
	if err != nil {
		return
	}
	n.moved(enabled, res.Moved, to)
	n.dispatch(ctx, res.Messages, byID, lanes, step.Claim.Now)
}

// takeRecords takes the attempts waiting to be recorded.
func (n *Notifier) takeRecords() []pendingRecord {
	var records []pendingRecord
gather:
	for len(records) < store.MaxAttemptRecords {
		select {
		case r := <-n.records:
			records = append(records, r)
		default:
			break gather
		}
	}
	n.mu.Lock()
	n.unrecorded -= len(records)
	n.mu.Unlock()
	return records
}

// forgetLanes drops the lanes of endpoints deleted, once idle.
func (n *Notifier) forgetLanes(endpoints []store.Endpoint) {
	live := make(map[string]bool, len(endpoints))
	for _, e := range endpoints {
		live[e.ID] = true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, l := range n.lanes {
		if !live[id] && l.inflight == 0 {
			l.client.CloseIdleConnections()
			delete(n.lanes, id)
		}
	}
}

// fanInMessages bounds the messages of one fan-in commit (a page of
// changes times the endpoints), so that it stays a few MB.
const fanInMessages = 5000

// fanIn reads the next page of changes after the endpoints' cursors and
// returns the endpoints' batches of messages for it, up to to. It reads
// one page, so that a backlog does not hold back the dispatch; the step
// that stores it wakes the next pass when there may be more. An endpoint
// whose cursor another process moved first waits for the next pass, which
// reads on from where that one left it.
func (n *Notifier) fanIn(ctx context.Context, endpoints []*store.Endpoint) (_ []store.FanInBatch, to int64, _ error) {
	matchers := make([]stream.Matcher, len(endpoints))
	from := endpoints[0].Cursor
	for i, e := range endpoints {
		spec, err := SpecOf(*e)
		if err != nil {
			return nil, 0, err
		}
		if matchers[i], err = spec.Filter.Compile(); err != nil {
			return nil, 0, err
		}
		from = min(from, e.Cursor)
	}
	page := max(1, min(fanInPage, fanInMessages/len(endpoints)))
	changes, err := n.log.ReadChanges(ctx, from, page)
	if err != nil || len(changes) == 0 {
		return nil, 0, err
	}
	to = changes[len(changes)-1].Seq
	return n.batches(endpoints, matchers, changes, to), to, nil
}

// moved follows the cursors a step moved, and wakes the next pass: there
// may be more changes.
func (n *Notifier) moved(endpoints []*store.Endpoint, moved []bool, to int64) {
	if len(moved) == 0 {
		return
	}
	for i, e := range endpoints {
		if moved[i] {
			e.Cursor = to
		}
	}
	n.Notify()
}

// batches are the endpoints' messages for changes, each after its own
// cursor, up to to.
func (n *Notifier) batches(endpoints []*store.Endpoint, matchers []stream.Matcher, changes []store.Change, to int64) []store.FanInBatch {
	now := n.now()
	batches := make([]store.FanInBatch, 0, len(endpoints))
	// A change's message is the same for every endpoint: built once.
	built := make([]*outbound.Message, len(changes))
	for i, e := range endpoints {
		b := store.FanInBatch{EndpointID: e.ID, From: e.Cursor, To: to}
		for j := range changes {
			c := &changes[j]
			if c.Seq <= e.Cursor || !matchers[i].Match(c) {
				continue
			}
			if built[j] == nil {
				m, err := outbound.New(*c)
				if err != nil {
					// A change no message type names (e.g. a newer writer's
					// kind) is no transition receivers know; it is logged, not
					// sent.
					n.opts.Logger.Warn("notify: change not sent", "endpoint", e.ID, "seq", c.Seq, "error", err)
					continue
				}
				built[j] = &m
			}
			m := built[j]
			b.Messages = append(b.Messages, store.OutboxMessage{
				EndpointID: e.ID, Seq: m.Seq, AccountID: m.AccountID, Type: m.Type, Body: m.Body, OccurredAt: m.Timestamp,
				MessageState: store.MessageState{Status: store.MessagePending, NextAt: now}, CreatedAt: now,
			})
		}
		batches = append(batches, b)
	}
	return batches
}

// claimFor fills q with as many messages of each endpoint as its limits
// allow, within one budget for all that leaves room for the attempts not
// yet recorded, and returns the endpoints and lanes it names. The
// endpoints take turns at the head of the list, since those listed first
// may use up the budget.
func (n *Notifier) claimFor(endpoints []*store.Endpoint, q *store.MessageClaim) (map[string]*store.Endpoint, map[string]*lane) {
	now := n.opts.Now()
	q.Now, q.LeaseFor = now, n.opts.Timeout+leaseMargin
	byID := make(map[string]*store.Endpoint, len(endpoints))
	lanes := make(map[string]*lane, len(endpoints))
	n.mu.Lock()
	defer n.mu.Unlock()
	if q.Max = store.MaxClaimMessages - n.unrecorded; q.Max <= 0 {
		return byID, lanes
	}
	n.turn++
	for i := range endpoints {
		e := endpoints[(i+n.turn)%len(endpoints)]
		l := n.laneOf(e)
		free := e.Concurrency - l.inflight
		if l.limiter != nil {
			free = min(free, int(l.limiter.TokensAt(now)))
			if free <= 0 {
				n.wakeAtLocked(now.Add(time.Duration(float64(time.Second) / e.RateLimit)))
			}
		}
		if free = min(free, q.Max); free > 0 {
			q.Endpoints = append(q.Endpoints, store.EndpointLimit{EndpointID: e.ID, Limit: free})
			byID[e.ID], lanes[e.ID] = e, l
		}
	}
	return byID, lanes
}

// dispatch sends each message a step leased in its own goroutine.
func (n *Notifier) dispatch(ctx context.Context, msgs []store.OutboxMessage, byID map[string]*store.Endpoint, lanes map[string]*lane, now time.Time) {
	if len(msgs) == 0 {
		return
	}
	clients := make([]*http.Client, len(msgs))
	n.mu.Lock()
	for i, m := range msgs {
		l := lanes[m.EndpointID]
		l.inflight++
		if l.limiter != nil {
			l.limiter.ReserveN(now, 1)
		}
		clients[i] = l.client
	}
	n.mu.Unlock()
	for i, m := range msgs {
		ep, l := *byID[m.EndpointID], lanes[m.EndpointID]
		n.sends.Go(func() { n.deliver(ctx, &ep, m, l, clients[i]) })
	}
}

// laneOf returns the endpoint's lane, its limiter and its connections
// following the endpoint's rate and concurrency. n.mu must be held.
func (n *Notifier) laneOf(e *store.Endpoint) *lane {
	l := n.lanes[e.ID]
	if l == nil {
		l = &lane{}
		n.lanes[e.ID] = l
	}
	if idle := max(1, e.Concurrency); l.client == nil || l.idle != idle {
		if l.client != nil {
			l.client.CloseIdleConnections()
		}
		l.client, l.idle = newClient(idle), idle
	}
	switch {
	case e.RateLimit <= 0:
		l.limiter = nil
	case l.limiter == nil:
		l.limiter = rate.NewLimiter(rate.Limit(e.RateLimit), max(1, int(e.RateLimit)))
	case l.limiter.Limit() != rate.Limit(e.RateLimit):
		l.limiter.SetLimit(rate.Limit(e.RateLimit))
		l.limiter.SetBurst(max(1, int(e.RateLimit)))
	}
	return l
}

// wakeAtLocked has the dispatcher run at t, or earlier; n.mu must be
// held. Every time asked for is kept (up to maxWakes; the poll covers the
// rest) and the timer runs for the earliest: a pass at an earlier time
// finds a later retry not yet due, so one timer for the earliest alone
// left the later ones waiting for the poll.
func (n *Notifier) wakeAtLocked(t time.Time) {
	if !t.After(time.Now()) {
		n.Notify()
		return
	}
	if len(n.wakes) >= maxWakes {
		return
	}
	heap.Push(&n.wakes, t)
	n.armLocked()
}

// maxWakes bounds the times the dispatcher keeps to wake at.
const maxWakes = 10_000

// armLocked drops the wake times past and sets the timer for the
// earliest left; n.mu must be held.
func (n *Notifier) armLocked() {
	now := time.Now()
	for len(n.wakes) > 0 && !n.wakes[0].After(now) {
		heap.Pop(&n.wakes)
	}
	if len(n.wakes) == 0 {
		return
	}
	next := n.wakes[0]
	if n.due != nil && n.dueAt.Equal(next) {
		return
	}
	if n.due != nil {
		n.due.Stop()
	}
	var timer *time.Timer
	timer = time.AfterFunc(time.Until(next), func() {
		n.mu.Lock()
		if n.due == timer {
			n.due = nil
		}
		n.armLocked()
		n.mu.Unlock()
		n.Notify()
	})
	n.due, n.dueAt = timer, next
}

// wakeTimes is a min-heap of times.
type wakeTimes []time.Time

func (w wakeTimes) Len() int           { return len(w) }
func (w wakeTimes) Less(i, j int) bool { return w[i].Before(w[j]) }
func (w wakeTimes) Swap(i, j int)      { w[i], w[j] = w[j], w[i] }
func (w *wakeTimes) Push(x any)        { *w = append(*w, x.(time.Time)) }
func (w *wakeTimes) Pop() any {
	old := *w
	t := old[len(old)-1]
	*w = old[:len(old)-1]
	return t
}

// pendingRecord is an attempt waiting for the dispatcher, and where its
// result goes.
type pendingRecord struct {
	store.AttemptRecord
	done chan recordResult // buffered: the dispatcher never waits on it
}

type recordResult struct {
	store.AttemptResult
	err error
}

// recordAttempt hands an attempt that ended (counted in unrecorded) to
// the dispatcher, whose next step records it, and waits for the result.
func (n *Notifier) recordAttempt(ctx context.Context, a store.Attempt, next store.MessageState) (store.AttemptResult, error) {
	r := pendingRecord{AttemptRecord: store.AttemptRecord{Attempt: a, Next: next}, done: make(chan recordResult, 1)}
	select {
	case n.records <- r:
	case <-ctx.Done():
		n.mu.Lock()
		n.unrecorded--
		n.mu.Unlock()
		return store.AttemptResult{}, ctx.Err()
	}
	n.Notify()
	select {
	case res := <-r.done:
		return res.AttemptResult, res.err
	case <-ctx.Done():
		return store.AttemptResult{}, ctx.Err()
	}
}

// answered frees the request's place in l, at once: its record comes
// with the next pass, and meanwhile the endpoint may take another
// request (its concurrency bounds requests, so a slow pass does not bound
// its deliveries). With record, the attempt counts as unrecorded until a
// pass takes it. It wakes the dispatcher.
func (n *Notifier) answered(l *lane, record bool) {
	n.mu.Lock()
	l.inflight--
	if record {
		n.unrecorded++
	}
	n.mu.Unlock()
	n.Notify()
}
