package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/provider/simulate"
	"github.com/accounthealth/accounthealth/server/provider/simulate/simtest"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// These tests deliver the health rules' named cases and random histories
// to the built binary, signed over HTTP, and read the outcome back over
// gRPC: GetAccountHealth, ListAccountEvents, and StreamDisconnections,
// where every event is counted. They wait for events, never for time: a
// stream has seen everything a test delivered once it carries the event of
// a sentinel delivered after it (the log is read in commit order).

// e2e is a served binary, one gRPC connection to it, and one stream of all
// its transitions, read in the background and kept by account.
type e2e struct {
	s   *server
	api ahv1.AccountHealthServiceClient

	mu      sync.Mutex
	events  map[string][]*ahv1.DisconnectionEvent // by account
	changed chan struct{}                         // closed and replaced on every event
	err     error                                 // the stream's end

	sentinels atomic.Int64
}

// streamWait bounds how long a test waits for an event that must come: a
// guard against a hang, not a synchronisation.
const streamWait = 60 * time.Second

func newE2E(t *testing.T) *e2e {
	t.Helper()
	e := &e2e{s: serve(t, t.TempDir()), events: map[string][]*ahv1.DisconnectionEvent{}, changed: make(chan struct{})}
	conn, err := grpc.NewClient(e.s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e.api = ahv1.NewAccountHealthServiceClient(conn)

	ctx, cancel := context.WithCancel(context.Background())
	stream, err := e.api.StreamDisconnections(ctx, &ahv1.StreamDisconnectionsRequest{IncludeRecoveries: true})
	if err != nil {
		t.Fatal(err)
	}
	// The stream opens with a heartbeat once subscribed: every event
	// committed from then on comes.
	if first, err := stream.Recv(); err != nil || first.GetHeartbeat() == nil {
		t.Fatalf("the stream opened with %v, %v; want a heartbeat", first, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msg, err := stream.Recv()
			e.mu.Lock()
			if err != nil {
				e.err = err
			} else if ev := msg.GetEvent(); ev != nil {
				e.events[ev.GetAccountId()] = append(e.events[ev.GetAccountId()], ev)
			}
			close(e.changed)
			e.changed = make(chan struct{})
			e.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// deliver posts a signed delivery to the webhook route and returns what it
// did and its entry's sequence (the original's, for a duplicate).
func (e *e2e) deliver(t *testing.T, body []byte) (ahv1.DeliveryOutcome, int64) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+e.s.webhook+"/v1/webhooks/argyle", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(fixtureSecret, body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("delivery answered %d %s\n%s", res.StatusCode, b, e.s.stderr)
	}
	var out ahv1.ReceiveArgyleWebhookResponse
	if err := protojson.Unmarshal(b, &out); err != nil {
		t.Fatalf("webhook answer %s: %v", b, err)
	}
	return out.GetOutcome(), out.GetSequence()
}

// sync returns once the stream has carried every event of what was
// delivered before it: it delivers a failure for a fresh sentinel account
// and waits for its event.
func (e *e2e) sync(t *testing.T) {
	t.Helper()
	sentinel := fmt.Sprintf("sentinel-%d", e.sentinels.Add(1))
	body := fmt.Appendf(nil, `{"event":"accounts.failed","name":"order-test","data":{"account":%q,"user":"sentinel-user"}}`, sentinel)
	e.deliver(t, body)
	e.eventsOf(t, sentinel, 1)
}

// eventsOf waits until the stream has carried n events of account and
// returns all those it carried.
func (e *e2e) eventsOf(t *testing.T, account string, n int) []*ahv1.DisconnectionEvent {
	t.Helper()
	guard := time.NewTimer(streamWait)
	defer guard.Stop()
	for {
		e.mu.Lock()
		evs, err, changed := slices.Clone(e.events[account]), e.err, e.changed
		e.mu.Unlock()
		switch {
		case len(evs) >= n:
			return evs
		case err != nil:
			t.Fatalf("the stream ended: %v", err)
		}
		select {
		case <-changed:
		case <-guard.C:
			t.Fatalf("no event %d for %s within %v\n%s", n, account, streamWait, e.s.stderr)
		}
	}
}

// seenEvents is every event the stream carried for account by now; call
// sync first.
func (e *e2e) seenEvents(account string) []*ahv1.DisconnectionEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.events[account])
}

func (e *e2e) health(t *testing.T, account string) *ahv1.AccountHealth {
	t.Helper()
	resp, err := e.api.GetAccountHealth(t.Context(), &ahv1.GetAccountHealthRequest{AccountId: account})
	if err != nil {
		t.Fatalf("GetAccountHealth(%s): %v", account, err)
	}
	return resp.GetAccountHealth()
}

// timeline is the account's log entries, oldest first.
func (e *e2e) timeline(t *testing.T, account string) []*ahv1.AccountEvent {
	t.Helper()
	var out []*ahv1.AccountEvent
	token := ""
	for {
		resp, err := e.api.ListAccountEvents(t.Context(), &ahv1.ListAccountEventsRequest{AccountId: account, PageSize: 500, PageToken: token})
		if err != nil {
			t.Fatalf("ListAccountEvents(%s): %v", account, err)
		}
		out = append(out, resp.GetEvents()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	slices.SortFunc(out, func(a, b *ahv1.AccountEvent) int { return int(a.GetSequence() - b.GetSequence()) })
	return out
}

// The API's names for the health package's values.
func protoState(s health.State) ahv1.HealthState {
	return ahv1.HealthState(ahv1.HealthState_value["HEALTH_STATE_"+s.String()])
}

func protoAction(a health.Action) ahv1.RemedyAction {
	return ahv1.RemedyAction(ahv1.RemedyAction_value["REMEDY_ACTION_"+a.String()])
}

func protoKind(k health.Kind) ahv1.TransitionKind {
	return ahv1.TransitionKind(ahv1.TransitionKind_value["TRANSITION_KIND_"+k.String()])
}

func protoOutcome(o health.Outcome) ahv1.DeliveryOutcome {
	return ahv1.DeliveryOutcome(ahv1.DeliveryOutcome_value["DELIVERY_OUTCOME_"+o.String()])
}

// twin is one simulated account as a subscription with the account object
// and one without see it (the same ids and times).
type twin struct{ lean, full *simulate.Account }

// twinSeeds gives every twin of the package its own account.
var twinSeeds atomic.Int64

func newTwin() twin {
	seed := 1000 + twinSeeds.Add(1)
	opts := simulate.Options{Name: "order-test", Seed: seed, Start: simtest.Start}
	lean := opts
	lean.Lean = true
	return twin{lean: simulate.NewGenerator(lean).NewAccount(), full: simulate.NewGenerator(opts).NewAccount()}
}

// change is a change of the account, as a simulator builder makes it.
type change func(*simulate.Account) []simulate.Delivery

func add(a *simulate.Account) []simulate.Delivery     { return a.Add() }
func connect(a *simulate.Account) []simulate.Delivery { return a.Connect() }

func fail(code string) change {
	return func(a *simulate.Account) []simulate.Delivery { return a.Fail(code) }
}

func disconnect(code string) change {
	return func(a *simulate.Account) []simulate.Delivery { return a.Disconnect(code) }
}

// shape says which deliveries of an attempt carry the account object, and
// whether its accounts.failed carries its code in data.
type shape int

const (
	shapeFull          shape = iota // both with the object
	shapeLean                       // neither; accounts.failed with its code in data
	shapeLeanEvent                  // the event lean (code in data), the accounts.updated with the object
	shapeCodelessEvent              // the event lean and codeless, the accounts.updated with the object
)

var shapeNames = [...]string{"full", "lean", "lean event, full update", "codeless event, full update"}

func (s shape) String() string { return shapeNames[s] }

// play makes change on both twins and returns the deliveries of shape s:
// the event (accounts.failed, accounts.connected) first when there is one.
func (tw twin) play(c change, s shape) [][]byte {
	full, lean := c(tw.full), c(tw.lean)
	var out [][]byte
	for i := range full {
		body := full[i].Body
		switch {
		case s == shapeLean:
			body = lean[i].Body
		case s == shapeFull, full[i].Event == simulate.EventUpdated:
		case s == shapeCodelessEvent && full[i].Event == simulate.EventFailed:
			body = simtest.Codeless(lean[i].Body)
		default:
			body = lean[i].Body
		}
		out = append(out, body)
	}
	return out
}

// accountOf is the account a delivery is for.
func accountOf(t *testing.T, body []byte) string {
	t.Helper()
	env, err := webhook.Decode(body, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return env.Delivery.AccountID
}

// attemptResult is what delivering an attempt to a prepared account did.
type attemptResult struct {
	health *ahv1.AccountHealth
	events []*ahv1.DisconnectionEvent // caused by the attempt's deliveries
}

// deliverAttempt delivers setup, then the attempt's deliveries in the
// order given, and returns the record and the events the attempt caused.
func (e *e2e) deliverAttempt(t *testing.T, setup, attempt [][]byte) attemptResult {
	t.Helper()
	account := accountOf(t, setup[0])
	for _, b := range setup {
		e.deliver(t, b)
	}
	seqs := map[int64]bool{}
	for _, b := range attempt {
		_, seq := e.deliver(t, b)
		seqs[seq] = true
	}
	e.sync(t)
	var r attemptResult
	for _, ev := range e.seenEvents(account) {
		if seqs[ev.GetDelivery().GetSequence()] {
			r.events = append(r.events, ev)
		}
	}
	r.health = e.health(t, account)
	return r
}

// One attempt is one event, whatever the order of its two deliveries and
// whichever of them carries the account object: both orders end in the
// same state, code and remedy, with exactly one event of the same kind.
func TestOrderOfAnAttemptEndToEnd(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	tests := []struct {
		name    string
		setup   []change
		setupIn shape // the shape of the setup's deliveries
		attempt change
		shapes  []shape
		state   health.State
		code    string
		action  health.Action
		kind    health.Kind
		from    health.State // the event's previous state, unless the attempt's event is codeless
	}{
		{
			name: "mistyped MFA code on a connected account", setup: []change{add, connect}, attempt: fail("invalid_mfa"),
			shapes: []shape{shapeFull, shapeLean, shapeLeanEvent, shapeCodelessEvent},
			state:  health.StateAuthFailed, code: "invalid_mfa", action: health.ActionRetryMFA, kind: health.KindAuthFailed, from: health.StateHealthy,
		},
		{
			name: "first login fails on the provider's side", setup: []change{add}, attempt: fail("system_error"),
			shapes: []shape{shapeFull, shapeLean, shapeLeanEvent, shapeCodelessEvent},
			state:  health.StateAuthFailed, code: "system_error", action: health.ActionWait, kind: health.KindAuthFailed, from: health.StateConnecting,
		},
		{
			name: "re-authentication after a logout", setup: []change{add, connect, disconnect("auth_required")}, attempt: connect,
			shapes: []shape{shapeFull, shapeLeanEvent},
			state:  health.StateHealthy, action: health.ActionNone, kind: health.KindRecovered, from: health.StateDisconnected,
		},
		{
			name: "reconnection after a failed login", setup: []change{add, fail("invalid_credentials")}, setupIn: shapeLean, attempt: connect,
			shapes: []shape{shapeLean, shapeFull},
			state:  health.StateHealthy, action: health.ActionNone, kind: health.KindRecovered, from: health.StateAuthFailed,
		},
	}
	for _, tt := range tests {
		for _, sh := range tt.shapes {
			t.Run(tt.name+"/"+sh.String(), func(t *testing.T) {
				t.Parallel()
				var results [2]attemptResult
				for i, reversed := range []bool{false, true} {
					tw := newTwin()
					var setup [][]byte
					for _, c := range tt.setup {
						setupShape := tt.setupIn
						if sh == shapeLean {
							setupShape = shapeLean
						}
						setup = append(setup, tw.play(c, setupShape)...)
					}
					attempt := tw.play(tt.attempt, sh)
					if reversed {
						slices.Reverse(attempt)
					}
					results[i] = e.deliverAttempt(t, setup, attempt)
				}
				for i, r := range results {
					order := [...]string{"in order", "reversed"}[i]
					h := r.health
					if h.GetState() != protoState(tt.state) || h.GetErrorCode() != tt.code || h.GetRemedy().GetAction() != protoAction(tt.action) {
						t.Errorf("%s: %s %q %s, want %s %q %s", order, h.GetState(), h.GetErrorCode(), h.GetRemedy().GetAction(),
							protoState(tt.state), tt.code, protoAction(tt.action))
					}
					if len(r.events) != 1 {
						t.Errorf("%s: %d events %v, want one", order, len(r.events), r.events)
						continue
					}
					ev := r.events[0]
					codeless := sh == shapeCodelessEvent && ev.GetDelivery().GetEventType() == health.EventAccountsFailed
					if ev.GetKind() != protoKind(tt.kind) || (!codeless && ev.GetPreviousState() != protoState(tt.from)) {
						t.Errorf("%s: event %s from %s, want %s from %s", order, ev.GetKind(), ev.GetPreviousState(), protoKind(tt.kind), protoState(tt.from))
					}
				}
				a, b := results[0].health, results[1].health
				if a.GetErrorMessage() != b.GetErrorMessage() || a.GetRemedy().GetMessage() != b.GetRemedy().GetMessage() ||
					a.GetConsecutiveFailures() != b.GetConsecutiveFailures() || a.GetEverConnected() != b.GetEverConnected() {
					t.Errorf("the order decides the record:\nin order %v\nreversed %v", a, b)
				}
			})
		}
	}
}

// Missing data never erases known data: a lean accounts.failed (no code in
// data, no object) arriving after the accounts.updated that carried the
// code keeps the code, its message and remedy, and causes no event.
func TestMissingDataKeepsWhatIsKnownEndToEnd(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	tests := []struct {
		name  string
		setup []change
		from  health.State
	}{
		{"first login", []change{add}, health.StateConnecting},
		{"re-login of a connected account", []change{add, connect}, health.StateHealthy},
		{"re-login of a disconnected account", []change{add, connect, disconnect("auth_required")}, health.StateDisconnected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tw := newTwin()
			var setup [][]byte
			for _, c := range tt.setup {
				setup = append(setup, tw.play(c, shapeFull)...)
			}
			account := accountOf(t, setup[0])
			attempt := tw.play(fail("invalid_mfa"), shapeCodelessEvent) // accounts.failed, accounts.updated
			for _, b := range setup {
				e.deliver(t, b)
			}
			_, updSeq := e.deliver(t, attempt[1])
			outcome, failSeq := e.deliver(t, attempt[0])
			e.sync(t)

			h := e.health(t, account)
			const msg = "This user did not provide the correct multi-factor authentication response."
			if h.GetState() != ahv1.HealthState_HEALTH_STATE_AUTH_FAILED || h.GetErrorCode() != "invalid_mfa" || h.GetErrorMessage() != msg ||
				h.GetRemedy().GetAction() != ahv1.RemedyAction_REMEDY_ACTION_RETRY_MFA || h.GetConsecutiveFailures() != 1 {
				t.Errorf("record %v; want AUTH_FAILED invalid_mfa %q, RETRY_MFA, one failure", h, msg)
			}
			if outcome != ahv1.DeliveryOutcome_DELIVERY_OUTCOME_APPLIED {
				t.Errorf("the lean accounts.failed: %s, want applied (it counts the attempt)", outcome)
			}
			var byUpdate, byFailure int
			for _, ev := range e.seenEvents(account) {
				switch ev.GetDelivery().GetSequence() {
				case updSeq:
					byUpdate++
					if ev.GetKind() != ahv1.TransitionKind_TRANSITION_KIND_AUTH_FAILED || ev.GetPreviousState() != protoState(tt.from) || ev.GetErrorCode() != "invalid_mfa" {
						t.Errorf("event %v, want AUTH_FAILED from %s with the code", ev, protoState(tt.from))
					}
				case failSeq:
					byFailure++
				}
			}
			if byUpdate != 1 || byFailure != 0 {
				t.Errorf("%d events by the accounts.updated, %d by the lean accounts.failed; want one and none", byUpdate, byFailure)
			}
		})
	}
}

// Redelivery detection never drops a new fact: a delivery whose application
// changes nothing is applied again (a reconnection's lean
// accounts.connected has the same bytes every time); a retried lean
// accounts.failed counts one failure, unless something changed since.
func TestRedeliveryRuleEndToEnd(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	type step struct {
		c     change
		shape shape
		only  string // deliver only this event of the change; "" all
	}
	tests := []struct {
		name     string
		steps    []step
		repeat   []int // indexes into the deliveries, delivered again at the end, in order
		last     health.Outcome
		state    health.State
		code     string
		failures int32
		kinds    []health.Kind
	}{
		{
			name:  "a reconnection by an identical lean accounts.connected is applied",
			steps: []step{{add, shapeLean, ""}, {connect, shapeLean, simulate.EventConnected}, {fail("invalid_mfa"), shapeLean, simulate.EventFailed}},
			// The reconnection's accounts.connected, the same bytes as the first.
			repeat: []int{1},
			last:   health.OutcomeApplied, state: health.StateHealthy, failures: 0,
			kinds: []health.Kind{health.KindAuthFailed, health.KindRecovered},
		},
		{
			name:   "a byte-identical lean accounts.failed retried at once counts one failure",
			steps:  []step{{add, shapeLean, ""}, {fail("invalid_mfa"), shapeLean, simulate.EventFailed}},
			repeat: []int{1},
			last:   health.OutcomeDuplicate, state: health.StateAuthFailed, code: "invalid_mfa", failures: 1,
			kinds: []health.Kind{health.KindAuthFailed},
		},
		{
			name:   "the same failure bytes after a reconnection in between are a new attempt",
			steps:  []step{{add, shapeLean, ""}, {fail("invalid_mfa"), shapeLean, simulate.EventFailed}, {connect, shapeLean, simulate.EventConnected}},
			repeat: []int{1},
			last:   health.OutcomeApplied, state: health.StateAuthFailed, code: "invalid_mfa", failures: 1,
			kinds: []health.Kind{health.KindAuthFailed, health.KindRecovered, health.KindAuthFailed},
		},
		{
			name:   "a delivery with the account object repeated after a reconnection is a duplicate",
			steps:  []step{{add, shapeFull, ""}, {fail("invalid_mfa"), shapeFull, simulate.EventFailed}, {connect, shapeFull, ""}},
			repeat: []int{1},
			last:   health.OutcomeDuplicate, state: health.StateHealthy, failures: 0,
			kinds: []health.Kind{health.KindAuthFailed, health.KindRecovered},
		},
		{
			// Fails today: health.IsRedelivery takes the third attempt for
			// a retry of the first (same bytes, state unchanged), and the
			// record keeps the second attempt's code and remedy.
			name: "a failure with the code of the failure before last is a new attempt",
			steps: []step{{add, shapeLean, ""}, {fail("invalid_mfa"), shapeLean, simulate.EventFailed},
				{fail("invalid_credentials"), shapeLean, simulate.EventFailed}},
			repeat: []int{1},
			last:   health.OutcomeApplied, state: health.StateAuthFailed, code: "invalid_mfa", failures: 3,
			kinds: []health.Kind{health.KindAuthFailed, health.KindAuthFailed, health.KindAuthFailed},
		},
		{
			// With two subscriptions the codeless accounts.failed keeps
			// the disconnection and its accounts.updated then moves the
			// account to AUTH_FAILED. A copy of the codeless failure
			// arriving after that object has the bytes of the next
			// attempt's failure, which also follows an object: it counts,
			// so that no new attempt is lost (see health.IsRedelivery).
			name: "a codeless accounts.failed again after its attempt's object counts, as the next attempt's would",
			steps: []step{{add, shapeFull, ""}, {connect, shapeFull, ""}, {disconnect("auth_required"), shapeFull, ""},
				{fail("invalid_mfa"), shapeCodelessEvent, ""}},
			repeat: []int{4}, // the codeless accounts.failed
			last:   health.OutcomeApplied, state: health.StateAuthFailed, code: "invalid_mfa", failures: 2,
			kinds: []health.Kind{health.KindDisconnected, health.KindAuthFailed},
		},
		{
			name: "a codeless accounts.failed retried before its attempt's object counts once",
			steps: []step{{add, shapeFull, ""}, {connect, shapeFull, ""}, {disconnect("auth_required"), shapeFull, ""},
				{fail("invalid_mfa"), shapeCodelessEvent, simulate.EventFailed}},
			repeat: []int{4}, // the codeless accounts.failed, at once
			last:   health.OutcomeDuplicate, state: health.StateDisconnected, code: "auth_required", failures: 1,
			kinds: []health.Kind{health.KindDisconnected},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tw := newTwin()
			var bodies [][]byte
			for _, s := range tt.steps {
				ds := tw.play(s.c, s.shape)
				for _, b := range ds {
					env, err := webhook.Decode(b, time.Time{})
					if err != nil {
						t.Fatal(err)
					}
					if s.only == "" || env.Event == s.only {
						bodies = append(bodies, b)
					}
				}
			}
			account := accountOf(t, bodies[0])
			for _, i := range tt.repeat {
				bodies = append(bodies, bodies[i])
			}
			var last ahv1.DeliveryOutcome
			for _, b := range bodies {
				last, _ = e.deliver(t, b)
			}
			e.sync(t)
			h := e.health(t, account)
			var kinds []health.Kind
			for _, ev := range e.seenEvents(account) {
				kinds = append(kinds, kindOf(ev.GetKind()))
			}
			if last != protoOutcome(tt.last) || h.GetState() != protoState(tt.state) || h.GetErrorCode() != tt.code ||
				h.GetConsecutiveFailures() != tt.failures || !slices.Equal(kinds, tt.kinds) {
				t.Errorf("last delivery %s, record %s %q with %d failures, events %v\nwant %s, %s %q with %d failures, events %v",
					last, h.GetState(), h.GetErrorCode(), h.GetConsecutiveFailures(), kinds,
					protoOutcome(tt.last), protoState(tt.state), tt.code, tt.failures, tt.kinds)
			}
			// The timeline counts the retry on the original.
			if tt.last == health.OutcomeDuplicate {
				var redeliveries int32
				for _, entry := range e.timeline(t, account) {
					redeliveries += entry.GetRedeliveries()
				}
				if redeliveries != 1 {
					t.Errorf("the timeline counts %d redeliveries, want 1", redeliveries)
				}
			}
		})
	}
}

// Remedies fit the state: a failed login is retried, whatever code (or
// none) it came with; a recovery names the state it recovered from, not
// an intermediate CONNECTING.
func TestRemediesEndToEnd(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	reauth := func(a *simulate.Account) []simulate.Delivery { return simtest.Reauth(a, "auth_required") }
	tests := []struct {
		name    string
		changes []change
		shapes  []shape // of each change
		state   health.State
		code    string
		action  health.Action
		last    *simtest.Event // the last event, when checked
	}{
		{
			name: "a first login failed without a code", changes: []change{add, fail("invalid_mfa")}, shapes: []shape{shapeLean, shapeCodelessEvent},
			state: health.StateAuthFailed, code: "invalid_mfa", action: health.ActionRetryMFA,
		},
		{
			name: "a first login failed without a code, and no object", changes: []change{add, fail("invalid_mfa")}, shapes: []shape{shapeLean, -1},
			state: health.StateAuthFailed, action: health.ActionRetryLogin,
			last: &simtest.Event{Kind: health.KindAuthFailed, From: health.StateConnecting, To: health.StateAuthFailed},
		},
		{
			name: "a re-login of a connected account failed without a code, and no object", changes: []change{add, connect, fail("invalid_mfa")},
			shapes: []shape{shapeLean, shapeLean, -1},
			state:  health.StateAuthFailed, action: health.ActionRetryLogin,
			last: &simtest.Event{Kind: health.KindAuthFailed, From: health.StateHealthy, To: health.StateAuthFailed},
		},
		{
			name: "a first login failed with a code nobody documented", changes: []change{add, fail("brand_new_code")}, shapes: []shape{shapeFull, shapeFull},
			state: health.StateAuthFailed, code: "brand_new_code", action: health.ActionRetryLogin,
			last: &simtest.Event{Kind: health.KindAuthFailed, From: health.StateConnecting, To: health.StateAuthFailed, Code: "brand_new_code"},
		},
		{
			name:    "a first login failed with a code nobody documented, lean",
			changes: []change{add, fail("brand_new_code")}, shapes: []shape{shapeLean, shapeLean},
			state: health.StateAuthFailed, code: "brand_new_code", action: health.ActionRetryLogin,
		},
		{
			name:    "a recovery via CONNECTING names DISCONNECTED",
			changes: []change{add, connect, disconnect("auth_required"), reauth, connect}, shapes: []shape{shapeFull, shapeFull, shapeFull, shapeFull, shapeFull},
			state: health.StateHealthy, action: health.ActionNone,
			last: &simtest.Event{Kind: health.KindRecovered, From: health.StateDisconnected, To: health.StateHealthy},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tw := newTwin()
			var bodies [][]byte
			for i, c := range tt.changes {
				if tt.shapes[i] < 0 {
					// Only the codeless accounts.failed: no object at all.
					ds := tw.play(c, shapeCodelessEvent)
					bodies = append(bodies, ds[0])
					continue
				}
				bodies = append(bodies, tw.play(c, tt.shapes[i])...)
			}
			account := accountOf(t, bodies[0])
			for _, b := range bodies {
				e.deliver(t, b)
			}
			e.sync(t)
			h := e.health(t, account)
			if h.GetState() != protoState(tt.state) || h.GetErrorCode() != tt.code || h.GetRemedy().GetAction() != protoAction(tt.action) {
				t.Errorf("%s %q %s (%q), want %s %q %s", h.GetState(), h.GetErrorCode(), h.GetRemedy().GetAction(), h.GetRemedy().GetMessage(),
					protoState(tt.state), tt.code, protoAction(tt.action))
			}
			if tt.action == health.ActionRetryLogin && !bytes.Contains([]byte(h.GetRemedy().GetMessage()), []byte("retry the login in Link")) {
				t.Errorf("remedy %q does not say to retry the login in Link", h.GetRemedy().GetMessage())
			}
			if tt.last != nil {
				evs := e.seenEvents(account)
				if len(evs) == 0 {
					t.Fatal("no event")
				}
				ev := evs[len(evs)-1]
				if ev.GetKind() != protoKind(tt.last.Kind) || ev.GetPreviousState() != protoState(tt.last.From) ||
					ev.GetState() != protoState(tt.last.To) || ev.GetErrorCode() != tt.last.Code {
					t.Errorf("last event %v, want %+v", ev, *tt.last)
				}
			}
		})
	}
}
