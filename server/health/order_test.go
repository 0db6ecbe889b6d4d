package health

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// leanFailed is an accounts.failed as v2 deliveries may come: no error in
// data, no resource.
func leanFailed(n int) Delivery { return event(EventAccountsFailed, n) }

// fullFailed is an accounts.failed with its account object at minute snap,
// the same object its accompanying updated(snap, ...) carries.
func fullFailed(n int, code string, snap int, scanned bool) Delivery {
	return withResource(failed(n, code), ConnectionError, code, snap, scanned)
}

// companion is the accounts.updated that accompanies an attempt at minute
// snap, received at minute n.
func companion(n int, status, code string, snap int, scanned bool) Delivery {
	return withResource(event(EventAccountsUpdated, n), status, code, snap, scanned)
}

// outcomeOf replays ds from start and returns the record and the events.
func outcomeOf(t *testing.T, start Record, ds []Delivery) (Record, []Transition) {
	t.Helper()
	rec := start
	var events []Transition
	for _, d := range ds {
		res := Apply(rec, d)
		checkInvariants(t, rec, d, res)
		if res.Transition != nil {
			events = append(events, *res.Transition)
		}
		rec = res.Record
	}
	return rec, events
}

// arrive receives ds one minute apart from minute n on, in the order given.
func arrive(n int, ds ...Delivery) []Delivery {
	out := make([]Delivery, len(ds))
	for i, d := range ds {
		d.ReceivedAt = at(n + i)
		out[i] = d
	}
	return out
}

// comparable blanks the arrival times that only say which delivery came
// last.
func comparable(r Record) Record {
	r.LastEventType, r.LastEventAt, r.SnapshotReceivedAt, r.ConfirmedAt = "", time.Time{}, time.Time{}, time.Time{}
	return r
}

// TestApplyOrderOfAnAttempt delivers the two deliveries of one attempt
// (accounts.failed or accounts.connected, and its accounts.updated), lean
// or full, in both orders: every order must end in the same record and one
// event of the same kind.
func TestApplyOrderOfAnAttempt(t *testing.T) {
	disconnected := []Delivery{added(0), withResource(connected(1), ConnectionConnected, "", 1, true), updated(2, ConnectionError, "auth_required", true)}
	tests := []struct {
		name   string
		given  []Delivery
		pair   [2]Delivery // in the order the provider documents nothing about
		state  State
		code   string
		action Action
		kind   Kind
		from   State // the event's previous state
	}{
		{
			name:  "mistyped MFA code on the re-authentication of a connected account",
			given: disconnected, pair: [2]Delivery{fullFailed(10, "invalid_mfa", 10, true), companion(10, ConnectionError, "invalid_mfa", 10, true)},
			state: StateAuthFailed, code: "invalid_mfa", action: ActionRetryMFA, kind: KindAuthFailed, from: StateDisconnected,
		},
		{
			name:  "mistyped MFA code, the failed with its code in data only",
			given: connectedOnce, pair: [2]Delivery{failed(10, "invalid_mfa"), companion(10, ConnectionError, "invalid_mfa", 10, true)},
			state: StateAuthFailed, code: "invalid_mfa", action: ActionRetryMFA, kind: KindAuthFailed, from: StateHealthy,
		},
		{
			name:  "mistyped updated credentials after a forced password reset",
			given: []Delivery{added(0), connected(1), updated(2, ConnectionError, "expired_credentials", true)},
			pair:  [2]Delivery{fullFailed(10, "invalid_credentials", 10, true), companion(10, ConnectionError, "invalid_credentials", 10, true)},
			state: StateAuthFailed, code: "invalid_credentials", action: ActionRetryLogin, kind: KindAuthFailed, from: StateDisconnected,
		},
		{
			name:  "first login fails on the provider's side",
			given: []Delivery{added(0)}, pair: [2]Delivery{fullFailed(10, "system_error", 10, false), companion(10, ConnectionError, "system_error", 10, false)},
			state: StateAuthFailed, code: "system_error", action: ActionWait, kind: KindAuthFailed, from: StateConnecting,
		},
		{
			name:  "first login fails on the provider's side, lean failed with the code in data",
			given: []Delivery{added(0)}, pair: [2]Delivery{failed(10, "service_unavailable"), companion(10, ConnectionError, "service_unavailable", 10, false)},
			state: StateAuthFailed, code: "service_unavailable", action: ActionWait, kind: KindAuthFailed, from: StateConnecting,
		},
		{
			name:  "re-authentication of a connected account fails on the provider's side",
			given: connectedOnce, pair: [2]Delivery{fullFailed(10, "system_error", 10, true), companion(10, ConnectionError, "system_error", 10, true)},
			state: StateDegraded, code: "system_error", action: ActionWait, kind: KindDegraded, from: StateHealthy,
		},
		{
			name:  "lean failed without a code and the updated that carries it",
			given: []Delivery{added(0)}, pair: [2]Delivery{leanFailed(10), companion(10, ConnectionError, "invalid_mfa", 10, false)},
			state: StateAuthFailed, code: "invalid_mfa", action: ActionRetryMFA, kind: KindAuthFailed, from: StateConnecting,
		},
		{
			name:  "successful re-authentication from DISCONNECTED",
			given: disconnected, pair: [2]Delivery{withResource(connected(10), ConnectionConnected, "", 10, true), companion(11, ConnectionConnected, "", 11, true)},
			state: StateHealthy, action: ActionNone, kind: KindRecovered, from: StateDisconnected,
		},
		{
			name:  "successful re-authentication, lean connected",
			given: disconnected, pair: [2]Delivery{connected(10), companion(11, ConnectionConnected, "", 11, true)},
			state: StateHealthy, action: ActionNone, kind: KindRecovered, from: StateDisconnected,
		},
		{
			name:  "successful re-authentication via CONNECTING names the state it recovered from",
			given: append(disconnected[:len(disconnected):len(disconnected)], companion(5, ConnectionConnecting, "", 5, true)),
			pair:  [2]Delivery{connected(10), companion(11, ConnectionConnected, "", 11, true)},
			state: StateHealthy, action: ActionNone, kind: KindRecovered, from: StateDisconnected,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, _ := outcomeOf(t, Record{}, tt.given)
			inOrder, inOrderEvents := outcomeOf(t, start, arrive(20, tt.pair[0], tt.pair[1]))
			reversed, reversedEvents := outcomeOf(t, start, arrive(20, tt.pair[1], tt.pair[0]))
			for name, got := range map[string][]Transition{"in order": inOrderEvents, "reversed": reversedEvents} {
				if len(got) != 1 {
					t.Errorf("%s: %d events %+v, want one", name, len(got), got)
					continue
				}
				if e := got[0]; e.Kind != tt.kind || e.PreviousState != tt.from {
					t.Errorf("%s: event %v from %v, want %v from %v", name, e.Kind, e.PreviousState, tt.kind, tt.from)
				}
			}
			if !reflect.DeepEqual(comparable(inOrder), comparable(reversed)) {
				t.Errorf("the order decides the record:\nin order %+v\nreversed %+v", inOrder, reversed)
			}
			if inOrder.State != tt.state || inOrder.ErrorCode != tt.code || inOrder.Remedy.Action != tt.action {
				t.Errorf("record %v %q %v, want %v %q %v", inOrder.State, inOrder.ErrorCode, inOrder.Remedy.Action, tt.state, tt.code, tt.action)
			}
		})
	}
}

// TestApplyKeepsWhatIsKnown: a delivery that does not say something does not
// erase it.
func TestApplyKeepsWhatIsKnown(t *testing.T) {
	tests := []struct {
		name   string
		ds     []Delivery
		state  State
		code   string
		msg    string
		action Action
		events int
	}{
		{
			name:  "lean failed after the updated that carried the code",
			ds:    []Delivery{added(0), companion(10, ConnectionError, "invalid_mfa", 10, false), leanFailed(11)},
			state: StateAuthFailed, code: "invalid_mfa", msg: "message of invalid_mfa", action: ActionRetryMFA, events: 1,
		},
		{
			name:  "lean failed on a disconnected account keeps the disconnection",
			ds:    []Delivery{added(0), connected(1), companion(10, ConnectionError, "auth_required", 10, true), leanFailed(11)},
			state: StateDisconnected, code: "auth_required", msg: "message of auth_required", action: ActionReconnect, events: 1,
		},
		{
			name:  "error snapshot without a code keeps the code",
			ds:    []Delivery{added(0), failed(10, "invalid_credentials"), companion(11, ConnectionError, "", 11, false)},
			state: StateAuthFailed, code: "invalid_credentials", msg: "message of invalid_credentials", action: ActionRetryLogin, events: 1,
		},
		{
			name: "a lean delivery repeating the code keeps the object's message",
			ds: []Delivery{added(0), companion(10, ConnectionError, "invalid_mfa", 10, false),
				func() Delivery { d := failed(11, "invalid_mfa"); d.ErrorMessage = "another wording"; return d }()},
			state: StateAuthFailed, code: "invalid_mfa", msg: "message of invalid_mfa", action: ActionRetryMFA, events: 1,
		},
		{
			name:  "lean failed with nothing known: a failed login to retry",
			ds:    []Delivery{added(0), leanFailed(10)},
			state: StateAuthFailed, action: ActionRetryLogin, events: 1,
		},
		{
			name:  "lean failed on a connected account: a failed login to retry, not a reconnection",
			ds:    []Delivery{added(0), connected(1), leanFailed(10)},
			state: StateAuthFailed, action: ActionRetryLogin, events: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, events := outcomeOf(t, Record{}, tt.ds)
			if rec.State != tt.state || rec.ErrorCode != tt.code || rec.ErrorMessage != tt.msg || rec.Remedy.Action != tt.action || len(events) != tt.events {
				t.Errorf("got %v %q %q %v with %d events %+v\nwant %v %q %q %v with %d", rec.State, rec.ErrorCode, rec.ErrorMessage, rec.Remedy.Action, len(events), events,
					tt.state, tt.code, tt.msg, tt.action, tt.events)
			}
			if rec.State == StateAuthFailed && (rec.Remedy.LinkAccountID != testAccount || rec.Remedy.LinkUserID != testUser) {
				t.Errorf("remedy %+v does not open Link on the account", rec.Remedy)
			}
		})
	}
}

// TestRetryLoginRemedies: a failed login is never told to "reconnect",
// whatever code (or none) it carries.
func TestRetryLoginRemedies(t *testing.T) {
	codes := append([]string{"", "brand_new_code"}, documentedCodes...)
	for _, code := range codes {
		t.Run(fmt.Sprintf("%q", code), func(t *testing.T) {
			action, msg := remedyText(StateAuthFailed, code)
			if action == ActionReconnect {
				t.Errorf("AUTH_FAILED %q: %v %q", code, action, msg)
			}
			if action == ActionRetryLogin && !strings.Contains(strings.ToLower(msg), "retry") {
				t.Errorf("AUTH_FAILED %q: %q does not say to retry", code, msg)
			}
		})
	}
}

func TestIsRedelivery(t *testing.T) {
	const window = 10 * time.Minute
	// failedAt is an account whose login failed with invalid_mfa at minute n.
	failedAt := func(n int) Record {
		rec, _ := outcomeOf(t, Record{}, []Delivery{added(0), failed(n, "invalid_mfa")})
		return rec
	}
	tests := []struct {
		name       string
		cur        Record
		d          Delivery
		originalAt time.Time
		want       bool
	}{
		{"with the account object, however late", Record{State: StateHealthy, StateSince: at(500)}, companion(900, ConnectionError, "auth_required", 10, true), at(10), true},
		{"lean failed retried, state unchanged", failedAt(10), failed(11, "invalid_mfa"), at(10), true},
		{"lean failed retried, failed already before", failedAt(2), failed(11, "invalid_mfa"), at(10), true},
		{"lean failed retried after another code", func() Record {
			r, _ := outcomeOf(t, failedAt(10), []Delivery{failed(12, "invalid_credentials")})
			return r
		}(), failed(13, "invalid_mfa"), at(10), false},
		{"lean failed retried after an account object came", func() Record {
			r, _ := outcomeOf(t, failedAt(10), []Delivery{companion(11, ConnectionError, "invalid_mfa", 11, false)})
			return r
		}(), failed(12, "invalid_mfa"), at(10), false},
		{"lean failed at the window's edge", failedAt(10), failed(20, "invalid_mfa"), at(10), true},
		{"lean failed past the window", failedAt(10), failed(21, "invalid_mfa"), at(10), false},
		{"lean failed after the state changed since", Record{State: StateHealthy, StateSince: at(12)}, failed(13, "invalid_mfa"), at(10), false},
		{"lean failed, detection off", failedAt(10), failed(11, "invalid_mfa"), at(10), false},
		{"lean connected: a reconnection", Record{State: StateDisconnected, StateSince: at(5)}, connected(11), at(1), false},
		{"lean removed", Record{State: StateRemoved, StateSince: at(5)}, removed(11), at(10), false},
		{"lean updated", failedAt(10), event(EventAccountsUpdated, 11), at(10), false},
		{"lean added", Record{State: StateConnecting}, added(11), at(10), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := window
			if tt.name == "lean failed, detection off" {
				w = -1
			}
			if got := IsRedelivery(tt.cur, tt.d, tt.originalAt, w); got != tt.want {
				t.Errorf("IsRedelivery = %v, want %v", got, tt.want)
			}
		})
	}
}
