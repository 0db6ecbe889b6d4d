package health

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	testAccount = "0190a1e3-0a4f-7c12-8e55-6b2d9f0c1a11"
	testUser    = "0190a1e2-5c3d-7b41-9f2e-1d7c3a4b5e60"
	otherUser   = "0190a1e2-ffff-7b41-9f2e-1d7c3a4b5e61"
)

// t0 anchors the test clock: minute n is at(n), for receipt and snapshot
// times alike.
var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

// event is a lean delivery (no resource, no error) for the test account,
// received at minute n.
func event(name string, n int) Delivery {
	return Delivery{Event: name, AccountID: testAccount, UserID: testUser, ReceivedAt: at(n)}
}

// withError puts an error in data, as v1-era accounts.failed carry it.
func withError(d Delivery, code string) Delivery {
	d.ErrorCode, d.ErrorMessage = code, "message of "+code
	return d
}

// withResource attaches the account object: connection status and code,
// updated at minute snap, scanned or never scanned. Like the decoder, it
// fills the delivery's error from the connection when data has none.
func withResource(d Delivery, status, code string, snap int, scanned bool) Delivery {
	s := &Snapshot{
		ConnectionStatus:    status,
		ConnectionUpdatedAt: at(snap),
		UpdatedAt:           at(snap).Add(time.Second),
		Raw:                 fmt.Appendf(nil, `{"id":%q,"connection":{"status":%q,"error_code":%q},"minute":%d}`, d.AccountID, status, code, snap),
	}
	if code != "" {
		s.ConnectionErrorCode, s.ConnectionErrorMessage = code, "message of "+code
	}
	if scanned {
		s.ScannedAt = at(snap).Add(-time.Hour)
	}
	if d.ErrorCode == "" {
		d.ErrorCode, d.ErrorMessage = s.ConnectionErrorCode, s.ConnectionErrorMessage
	}
	d.Snapshot = s
	return d
}

// untimed drops the resource's times: such a snapshot orders nothing.
func untimed(d Delivery) Delivery {
	s := *d.Snapshot
	s.ConnectionUpdatedAt, s.UpdatedAt = time.Time{}, time.Time{}
	d.Snapshot = &s
	return d
}

func added(n int) Delivery               { return event(EventAccountsAdded, n) }
func connected(n int) Delivery           { return event(EventAccountsConnected, n) }
func removed(n int) Delivery             { return event(EventAccountsRemoved, n) }
func failed(n int, code string) Delivery { return withError(event(EventAccountsFailed, n), code) }

// updated is an accounts.updated whose resource was updated when received.
func updated(n int, status, code string, scanned bool) Delivery {
	return withResource(event(EventAccountsUpdated, n), status, code, n, scanned)
}

// connectedOnce brings a new account to HEALTHY.
var connectedOnce = []Delivery{added(0), connected(1)}

// replay applies ds in order, checking the invariants of every step.
func replay(t *testing.T, rec Record, ds ...Delivery) Record {
	t.Helper()
	for _, d := range ds {
		res := Apply(rec, d)
		checkInvariants(t, rec, d, res)
		rec = res.Record
	}
	return rec
}

// want is what a step must produce.
type want struct {
	outcome  Outcome
	state    State
	kind     Kind // KindUnspecified: no transition
	failures int
	code     string
	action   Action
}

func checkResult(t *testing.T, res Result, w want) {
	t.Helper()
	r := res.Record
	got := want{res.Outcome, r.State, KindUnspecified, r.ConsecutiveFailures, r.ErrorCode, r.Remedy.Action}
	if res.Transition != nil {
		got.kind = res.Transition.Kind
	}
	if got != w {
		t.Errorf("got  %v %v transition=%v failures=%d code=%q action=%v\nwant %v %v transition=%v failures=%d code=%q action=%v",
			got.outcome, got.state, got.kind, got.failures, got.code, got.action,
			w.outcome, w.state, w.kind, w.failures, w.code, w.action)
	}
}

type step struct {
	d    Delivery
	want want
	// check, when set, asserts what the step is about beyond want.
	check func(t *testing.T, res Result)
}

func TestApply(t *testing.T) {
	tests := []struct {
		name  string
		start Record
		given []Delivery // applied first, checked only for invariants
		steps []step
	}{
		{
			name: "failed first attempt without resource",
			steps: []step{{
				d:    failed(10, "invalid_credentials"),
				want: want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 1, "invalid_credentials", ActionRetryLogin},
				check: func(t *testing.T, res Result) {
					if res.Transition.PreviousState != StateUnknown || res.Record.EverConnected {
						t.Errorf("previous %v, ever connected %v; want UNKNOWN, false", res.Transition.PreviousState, res.Record.EverConnected)
					}
					wantLink(t, res.Record.Remedy, testAccount, testUser)
				},
			}},
		},
		{
			name:  "failed first attempt with resource",
			given: []Delivery{added(0)},
			steps: []step{{
				d:    withResource(failed(10, "invalid_mfa"), ConnectionError, "invalid_mfa", 10, false),
				want: want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 1, "invalid_mfa", ActionRetryMFA},
				check: func(t *testing.T, res Result) {
					if res.Transition.PreviousState != StateConnecting || res.Record.EverConnected || res.Record.Snapshot == nil || !res.Record.SnapshotAt.Equal(at(10).Add(time.Second)) {
						t.Errorf("previous %v, ever connected %v, snapshot at %v; want CONNECTING, false, the resource's time", res.Transition.PreviousState, res.Record.EverConnected, res.Record.SnapshotAt)
					}
				},
			}},
		},
		{
			name:  "failed and its accompanying updated: one event, one failure",
			given: []Delivery{added(0)},
			steps: []step{
				{d: withResource(failed(10, "invalid_mfa"), ConnectionError, "invalid_mfa", 10, false), want: want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 1, "invalid_mfa", ActionRetryMFA}},
				{d: updated(10, ConnectionError, "invalid_mfa", false), want: want{OutcomeApplied, StateAuthFailed, KindUnspecified, 1, "invalid_mfa", ActionRetryMFA}},
			},
		},
		{
			name:  "accompanying updated before its failed: one event, one failure",
			given: []Delivery{added(0)},
			steps: []step{
				{d: updated(10, ConnectionError, "invalid_credentials", false), want: want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 0, "invalid_credentials", ActionRetryLogin}},
				{d: withResource(failed(11, "invalid_credentials"), ConnectionError, "invalid_credentials", 10, false), want: want{OutcomeApplied, StateAuthFailed, KindUnspecified, 1, "invalid_credentials", ActionRetryLogin}},
			},
		},
		{
			name:  "repeated failed re-authentication of an account that once connected",
			given: connectedOnce,
			steps: []step{
				{d: failed(10, "invalid_credentials"), want: want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 1, "invalid_credentials", ActionRetryLogin}},
				{d: updated(10, ConnectionError, "invalid_credentials", true), want: want{OutcomeApplied, StateAuthFailed, KindUnspecified, 1, "invalid_credentials", ActionRetryLogin}},
				{d: failed(20, "invalid_credentials"), want: want{OutcomeApplied, StateAuthFailed, KindUnspecified, 2, "invalid_credentials", ActionRetryLogin}},
				{d: updated(20, ConnectionError, "invalid_credentials", true), want: want{OutcomeApplied, StateAuthFailed, KindUnspecified, 2, "invalid_credentials", ActionRetryLogin}},
				{d: failed(30, "invalid_credentials"), want: want{OutcomeApplied, StateAuthFailed, KindUnspecified, 3, "invalid_credentials", ActionRetryLogin},
					check: func(t *testing.T, res Result) {
						if !res.Record.StateSince.Equal(at(10)) {
							t.Errorf("StateSince = %v, want the first failure's %v", res.Record.StateSince, at(10))
						}
					}},
			},
		},
		{
			name: "MFA timeout without resource",
			steps: []step{{
				d:     failed(10, "mfa_timeout"),
				want:  want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 1, "mfa_timeout", ActionRetryMFA},
				check: func(t *testing.T, res Result) { wantLink(t, res.Record.Remedy, testAccount, testUser) },
			}},
		},
		{
			name: "invalid_mfa then mfa_timeout: a new code is a new event",
			steps: []step{
				{d: failed(10, "invalid_mfa"), want: want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 1, "invalid_mfa", ActionRetryMFA}},
				{d: failed(20, "mfa_timeout"), want: want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 2, "mfa_timeout", ActionRetryMFA},
					check: func(t *testing.T, res Result) {
						if tr := res.Transition; tr.PreviousState != StateAuthFailed || tr.ErrorCode != "mfa_timeout" || !tr.OccurredAt.Equal(at(20)) {
							t.Errorf("transition %+v, want from AUTH_FAILED with mfa_timeout at minute 20", tr)
						}
					}},
			},
		},
		{
			name:  "session logged out: auth_required only in accounts.updated",
			given: connectedOnce,
			steps: []step{{
				d:    updated(10, ConnectionError, "auth_required", true),
				want: want{OutcomeApplied, StateDisconnected, KindDisconnected, 0, "auth_required", ActionReconnect},
				check: func(t *testing.T, res Result) {
					wantLink(t, res.Record.Remedy, testAccount, testUser)
					wantMention(t, res.Record.Remedy.Message, "Reconnect", "no credentials")
					if res.Transition.Remedy != res.Record.Remedy || res.Record.IncidentState != StateDisconnected {
						t.Errorf("transition remedy %+v, incident %v; want the record's remedy and a DISCONNECTED incident", res.Transition.Remedy, res.Record.IncidentState)
					}
				},
			}},
		},
		{
			name:  "password reset forced: expired_credentials only in accounts.updated",
			given: connectedOnce,
			steps: []step{{
				d:    updated(10, ConnectionError, "expired_credentials", true),
				want: want{OutcomeApplied, StateDisconnected, KindDisconnected, 0, "expired_credentials", ActionUpdateCredentials},
				check: func(t *testing.T, res Result) {
					wantLink(t, res.Record.Remedy, testAccount, testUser)
					wantMention(t, res.Record.Remedy.Message, "Reset the password", `"Login help"`, "new credentials in Link")
				},
			}},
		},
		{
			name:  "auth_required then expired_credentials: a new code is a new event",
			given: connectedOnce,
			steps: []step{
				{d: updated(10, ConnectionError, "auth_required", true), want: want{OutcomeApplied, StateDisconnected, KindDisconnected, 0, "auth_required", ActionReconnect}},
				{d: updated(20, ConnectionError, "auth_required", true), want: want{OutcomeApplied, StateDisconnected, KindUnspecified, 0, "auth_required", ActionReconnect}},
				{d: updated(30, ConnectionError, "expired_credentials", true), want: want{OutcomeApplied, StateDisconnected, KindDisconnected, 0, "expired_credentials", ActionUpdateCredentials}},
			},
		},
		{
			name: "updated error on an unseen account that was scanned",
			steps: []step{{
				d:    updated(10, ConnectionError, "auth_required", true),
				want: want{OutcomeApplied, StateDisconnected, KindDisconnected, 0, "auth_required", ActionReconnect},
				check: func(t *testing.T, res Result) {
					if res.Transition.PreviousState != StateUnknown || !res.Record.EverConnected || !res.Record.StateSince.Equal(at(10)) {
						t.Errorf("previous %v, ever connected %v, since %v; want UNKNOWN, true, minute 10", res.Transition.PreviousState, res.Record.EverConnected, res.Record.StateSince)
					}
				},
			}},
		},
		{
			name: "updated error on an unseen account never scanned: a login to retry, not to reconnect",
			steps: []step{{
				d:     updated(10, ConnectionError, "auth_required", false),
				want:  want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 0, "auth_required", ActionRetryLogin},
				check: func(t *testing.T, res Result) { wantMention(t, res.Record.Remedy.Message, "retry the login in Link") },
			}},
		},
		{
			name:  "provider error, then back",
			given: connectedOnce,
			steps: []step{
				{d: updated(10, ConnectionError, "platform_unavailable", true), want: want{OutcomeApplied, StateDegraded, KindDegraded, 0, "platform_unavailable", ActionWait},
					check: func(t *testing.T, res Result) { wantLink(t, res.Record.Remedy, "", "") }},
				{d: updated(20, ConnectionConnected, "", true), want: want{OutcomeApplied, StateHealthy, KindRecovered, 0, "", ActionNone},
					check: func(t *testing.T, res Result) {
						if tr := res.Transition; tr.PreviousState != StateDegraded || tr.ErrorCode != "" || res.Record.IncidentState != StateUnknown {
							t.Errorf("transition %+v, incident %v; want from DEGRADED, no error, closed", tr, res.Record.IncidentState)
						}
					}},
			},
		},
		{
			name:  "provider error changes code, then repeats",
			given: connectedOnce,
			steps: []step{
				{d: updated(10, ConnectionError, "platform_unavailable", true), want: want{OutcomeApplied, StateDegraded, KindDegraded, 0, "platform_unavailable", ActionWait}},
				{d: updated(20, ConnectionError, "system_error", true), want: want{OutcomeApplied, StateDegraded, KindDegraded, 0, "system_error", ActionWait}},
				{d: updated(30, ConnectionError, "system_error", true), want: want{OutcomeApplied, StateDegraded, KindUnspecified, 0, "system_error", ActionWait}},
			},
		},
		{
			name:  "recovery via CONNECTING",
			given: connectedOnce,
			steps: []step{
				{d: updated(10, ConnectionError, "auth_required", true), want: want{OutcomeApplied, StateDisconnected, KindDisconnected, 0, "auth_required", ActionReconnect}},
				{d: updated(20, ConnectionConnecting, "", true), want: want{OutcomeApplied, StateConnecting, KindUnspecified, 0, "", ActionWait},
					check: func(t *testing.T, res Result) {
						if res.Record.IncidentState != StateDisconnected {
							t.Errorf("incident %v, want DISCONNECTED until the account recovers", res.Record.IncidentState)
						}
					}},
				{d: connected(30), want: want{OutcomeApplied, StateHealthy, KindRecovered, 0, "", ActionNone},
					check: func(t *testing.T, res Result) {
						if tr := res.Transition; tr.PreviousState != StateDisconnected {
							t.Errorf("recovered from %v, want DISCONNECTED, not the intermediate CONNECTING", tr.PreviousState)
						}
					}},
			},
		},
		{
			name: "first connection is no recovery",
			steps: []step{
				{d: added(10), want: want{OutcomeApplied, StateConnecting, KindUnspecified, 0, "", ActionWait}},
				{d: updated(11, ConnectionConnecting, "", false), want: want{OutcomeApplied, StateConnecting, KindUnspecified, 0, "", ActionWait}},
				{d: connected(12), want: want{OutcomeApplied, StateHealthy, KindUnspecified, 0, "", ActionNone},
					check: func(t *testing.T, res Result) {
						if !res.Record.EverConnected || !res.Record.StateSince.Equal(at(12)) {
							t.Errorf("ever connected %v, since %v; want true, minute 12", res.Record.EverConnected, res.Record.StateSince)
						}
					}},
			},
		},
		{
			name: "failed attempts, then success, recovers and resets the count",
			steps: []step{
				{d: failed(10, "invalid_credentials"), want: want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 1, "invalid_credentials", ActionRetryLogin}},
				{d: failed(20, "invalid_credentials"), want: want{OutcomeApplied, StateAuthFailed, KindUnspecified, 2, "invalid_credentials", ActionRetryLogin}},
				{d: connected(30), want: want{OutcomeApplied, StateHealthy, KindRecovered, 0, "", ActionNone},
					check: func(t *testing.T, res Result) {
						if res.Record.ErrorMessage != "" || res.Record.Remedy.Message != "No action needed." {
							t.Errorf("error message %q, remedy %q; want none and %q", res.Record.ErrorMessage, res.Record.Remedy.Message, "No action needed.")
						}
					}},
			},
		},
		{
			name:  "updated connected resets the count",
			given: []Delivery{failed(0, "invalid_mfa")},
			steps: []step{{d: updated(10, ConnectionConnected, "", true), want: want{OutcomeApplied, StateHealthy, KindRecovered, 0, "", ActionNone}}},
		},
		{
			name:  "updated without resource on a known account",
			given: connectedOnce,
			steps: []step{
				{d: event(EventAccountsUpdated, 10), want: want{OutcomeUnconfirmed, StateHealthy, KindUnspecified, 0, "", ActionNone},
					check: func(t *testing.T, res Result) { wantUnconfirmed(t, res, true) }},
				{d: updated(20, ConnectionConnected, "", true), want: want{OutcomeApplied, StateHealthy, KindUnspecified, 0, "", ActionNone},
					check: func(t *testing.T, res Result) { wantUnconfirmed(t, res, false) }},
			},
		},
		{
			name: "updated without resource on a new account",
			steps: []step{{
				d:    event(EventAccountsUpdated, 10),
				want: want{OutcomeUnconfirmed, StateConnecting, KindUnspecified, 0, "", ActionWait},
				check: func(t *testing.T, res Result) {
					wantUnconfirmed(t, res, true)
					if r := res.Record; r.AccountID != testAccount || r.UserID != testUser || !r.StateSince.Equal(at(10)) {
						t.Errorf("record %+v, want the delivery's ids and StateSince", r)
					}
				},
			}},
		},
		{
			name:  "unconfirmed, then a lean accounts.connected confirms",
			given: []Delivery{failed(0, "invalid_mfa"), event(EventAccountsUpdated, 1)},
			steps: []step{{d: connected(10), want: want{OutcomeApplied, StateHealthy, KindRecovered, 0, "", ActionNone},
				check: func(t *testing.T, res Result) { wantUnconfirmed(t, res, false) }}},
		},
		{
			name:  "a lean accounts.failed leaves the account unconfirmed: only the object tells the connection's error",
			given: []Delivery{added(0), connected(1)},
			steps: []step{{d: failed(10, "invalid_mfa"), want: want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 1, "invalid_mfa", ActionRetryMFA},
				check: func(t *testing.T, res Result) { wantUnconfirmed(t, res, true) }}},
		},
		{
			name:  "a lean accounts.failed of the error already held leaves nothing to confirm",
			given: []Delivery{added(0), updated(1, ConnectionError, "invalid_mfa", false)},
			steps: []step{
				{d: failed(10, "invalid_mfa"), want: want{OutcomeApplied, StateAuthFailed, KindUnspecified, 1, "invalid_mfa", ActionRetryMFA},
					check: func(t *testing.T, res Result) { wantUnconfirmed(t, res, false) }},
				{d: failed(11, ""), want: want{OutcomeApplied, StateAuthFailed, KindUnspecified, 2, "invalid_mfa", ActionRetryMFA},
					check: func(t *testing.T, res Result) { wantUnconfirmed(t, res, false) }},
			},
		},
		{
			name:  "a snapshot confirms a lean failure",
			given: []Delivery{added(0), connected(1), failed(2, "invalid_mfa")},
			steps: []step{{d: updated(3, ConnectionError, "invalid_mfa", true), want: want{OutcomeApplied, StateAuthFailed, KindUnspecified, 1, "invalid_mfa", ActionRetryMFA},
				check: func(t *testing.T, res Result) {
					wantUnconfirmed(t, res, false)
					if !res.Record.ConfirmedAt.Equal(at(3)) {
						t.Errorf("ConfirmedAt %v, want %v", res.Record.ConfirmedAt, at(3))
					}
				}}},
		},
		{
			name:  "error code in data only, on a connected unconfirmed account",
			given: []Delivery{added(0), connected(1), event(EventAccountsUpdated, 2)},
			steps: []step{{
				d:     withError(event(EventAccountsUpdated, 10), "auth_required"),
				want:  want{OutcomeApplied, StateDisconnected, KindDisconnected, 0, "auth_required", ActionReconnect},
				check: func(t *testing.T, res Result) { wantUnconfirmed(t, res, false) },
			}},
		},
		{
			name: "error code in data only, on a new account",
			steps: []step{{
				d:    withError(event(EventAccountsUpdated, 10), "expired_credentials"),
				want: want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 0, "expired_credentials", ActionUpdateCredentials},
			}},
		},
		{
			name:  "stale snapshot ignored, then a newer one applied",
			given: []Delivery{added(0), withResource(connected(1), ConnectionConnected, "", 10, true)},
			steps: []step{
				{d: withResource(event(EventAccountsUpdated, 20), ConnectionError, "auth_required", 5, true), want: want{OutcomeStale, StateHealthy, KindUnspecified, 0, "", ActionNone},
					check: func(t *testing.T, res Result) {
						r := res.Record
						if r.LastEventType != EventAccountsUpdated || !r.LastEventAt.Equal(at(20)) || !r.ConfirmedAt.Equal(at(20)) || !r.SnapshotAt.Equal(at(10).Add(time.Second)) || !strings.Contains(string(r.Snapshot), `"minute":10`) {
							t.Errorf("record %+v; want only the last event updated", r)
						}
					}},
				{d: withResource(event(EventAccountsUpdated, 30), ConnectionError, "auth_required", 25, true), want: want{OutcomeApplied, StateDisconnected, KindDisconnected, 0, "auth_required", ActionReconnect}},
			},
		},
		{
			name:  "equal snapshot time is not stale",
			given: []Delivery{added(0), withResource(connected(1), ConnectionConnected, "", 10, true)},
			steps: []step{{d: withResource(event(EventAccountsUpdated, 20), ConnectionError, "auth_required", 10, true), want: want{OutcomeApplied, StateDisconnected, KindDisconnected, 0, "auth_required", ActionReconnect}}},
		},
		{
			name:  "snapshot without time is never stale and never moves SnapshotAt",
			given: []Delivery{added(0), withResource(connected(1), ConnectionConnected, "", 10, true)},
			steps: []step{{
				d:    untimed(withResource(event(EventAccountsUpdated, 20), ConnectionError, "auth_required", 2, true)),
				want: want{OutcomeApplied, StateDisconnected, KindDisconnected, 0, "auth_required", ActionReconnect},
				check: func(t *testing.T, res Result) {
					if r := res.Record; !r.SnapshotAt.Equal(at(10).Add(time.Second)) || !strings.Contains(string(r.Snapshot), `"minute":2`) {
						t.Errorf("snapshot at %v, %s; want the old time and the new resource", r.SnapshotAt, r.Snapshot)
					}
				},
			}},
		},
		{
			name:  "late accounts.failed with an older resource is stale",
			given: []Delivery{added(0), withResource(connected(1), ConnectionConnected, "", 20, true)},
			steps: []step{{d: withResource(failed(30, "invalid_credentials"), ConnectionError, "invalid_credentials", 15, true), want: want{OutcomeStale, StateHealthy, KindUnspecified, 0, "", ActionNone}}},
		},
		{
			name:  "removal with an older resource still removes and keeps the newer resource",
			given: []Delivery{added(0), withResource(connected(1), ConnectionConnected, "", 20, true)},
			steps: []step{{
				d:    withResource(removed(30), ConnectionConnected, "", 15, true),
				want: want{OutcomeApplied, StateRemoved, KindRemoved, 0, "", ActionConnectNewAccount},
				check: func(t *testing.T, res Result) {
					if r := res.Record; !r.SnapshotAt.Equal(at(20).Add(time.Second)) || !strings.Contains(string(r.Snapshot), `"minute":20`) {
						t.Errorf("snapshot at %v, %s; want the newer resource kept", r.SnapshotAt, r.Snapshot)
					}
				},
			}},
		},
		{
			name:  "unknown accounts.* event with resource",
			given: connectedOnce,
			steps: []step{
				{d: withResource(event("accounts.reauthenticated", 10), ConnectionError, "auth_required", 10, true), want: want{OutcomeApplied, StateDisconnected, KindDisconnected, 0, "auth_required", ActionReconnect}},
				{d: withResource(event("accounts.reauthenticated", 20), ConnectionConnected, "", 20, true), want: want{OutcomeApplied, StateHealthy, KindRecovered, 0, "", ActionNone}},
			},
		},
		{
			name:  "unknown accounts.* event without resource",
			given: connectedOnce,
			steps: []step{{d: event("accounts.reauthenticated", 10), want: want{OutcomeUnconfirmed, StateHealthy, KindUnspecified, 0, "", ActionNone},
				check: func(t *testing.T, res Result) { wantUnconfirmed(t, res, true) }}},
		},
		{
			name:  "unknown connection status keeps the state, unconfirmed",
			given: connectedOnce,
			steps: []step{
				{d: updated(10, "paused", "", true), want: want{OutcomeApplied, StateHealthy, KindUnspecified, 0, "", ActionNone},
					check: func(t *testing.T, res Result) {
						wantUnconfirmed(t, res, true)
						if !strings.Contains(string(res.Record.Snapshot), `"paused"`) {
							t.Errorf("snapshot %s, want the new resource", res.Record.Snapshot)
						}
					}},
				{d: updated(20, ConnectionConnected, "", true), want: want{OutcomeApplied, StateHealthy, KindUnspecified, 0, "", ActionNone},
					check: func(t *testing.T, res Result) { wantUnconfirmed(t, res, false) }},
			},
		},
		{
			name: "unknown connection status on a new account",
			steps: []step{{d: updated(10, "", "", false), want: want{OutcomeApplied, StateConnecting, KindUnspecified, 0, "", ActionWait},
				check: func(t *testing.T, res Result) { wantUnconfirmed(t, res, true) }}},
		},
		{
			name:  "non-account events change nothing",
			given: connectedOnce,
			steps: []step{
				{d: Delivery{Event: "users.fully_synced", UserID: testUser, ReceivedAt: at(10)}, want: want{OutcomeNotAccountEvent, StateHealthy, KindUnspecified, 0, "", ActionNone}},
				{d: event("paystubs.added", 11), want: want{OutcomeNotAccountEvent, StateHealthy, KindUnspecified, 0, "", ActionNone}},
				{d: withResource(event("identities.added", 12), ConnectionError, "auth_required", 12, true), want: want{OutcomeNotAccountEvent, StateHealthy, KindUnspecified, 0, "", ActionNone}},
				{d: Delivery{Event: EventAccountsRemoved, UserID: testUser, ReceivedAt: at(13)}, want: want{OutcomeNotAccountEvent, StateHealthy, KindUnspecified, 0, "", ActionNone}},
				{d: event("Accounts.removed", 14), want: want{OutcomeNotAccountEvent, StateHealthy, KindUnspecified, 0, "", ActionNone}},
			},
		},
		{
			name: "non-account event without a record",
			steps: []step{{d: event("paystubs.added", 10), want: want{OutcomeNotAccountEvent, StateUnknown, KindUnspecified, 0, "", ActionNone},
				check: func(t *testing.T, res Result) {
					if !reflect.DeepEqual(res.Record, Record{}) {
						t.Errorf("record %+v, want none", res.Record)
					}
				}}},
		},
		{
			name:  "accounts.added on a known account keeps its state",
			given: connectedOnce,
			steps: []step{{d: added(10), want: want{OutcomeApplied, StateHealthy, KindUnspecified, 0, "", ActionNone}}},
		},
		{
			name:  "accounts.added with a connecting resource: re-authentication under way",
			given: []Delivery{added(0), connected(1), updated(2, ConnectionError, "auth_required", true)},
			steps: []step{{d: withResource(added(10), ConnectionConnecting, "", 10, true), want: want{OutcomeApplied, StateConnecting, KindUnspecified, 0, "", ActionWait}}},
		},
		{
			name:  "accounts.added with a connected resource on a new account",
			steps: []step{{d: withResource(added(10), ConnectionConnected, "", 10, true), want: want{OutcomeApplied, StateHealthy, KindUnspecified, 0, "", ActionNone}}},
		},
		{
			name:  "wrong credentials found on a scan of a connected account: a failed login",
			given: connectedOnce,
			steps: []step{{
				d:     updated(10, ConnectionError, "invalid_credentials", true),
				want:  want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 0, "invalid_credentials", ActionRetryLogin},
				check: func(t *testing.T, res Result) { wantLink(t, res.Record.Remedy, testAccount, testUser) },
			}},
		},
		{
			name: "login failed on the provider's side",
			steps: []step{{
				d:    failed(10, "system_error"),
				want: want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 1, "system_error", ActionWait},
				check: func(t *testing.T, res Result) {
					wantLink(t, res.Record.Remedy, "", "")
					wantMention(t, res.Record.Remedy.Message, "provider's side", "later")
				},
			}},
		},
		{
			name: "failed with an unknown code",
			steps: []step{{d: failed(10, "brand_new_code"), want: want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 1, "brand_new_code", ActionRetryLogin},
				check: func(t *testing.T, res Result) {
					wantMention(t, res.Record.Remedy.Message, `"brand_new_code"`, "retry the login in Link")
				}}},
		},
		{
			name:  "error status without a code",
			given: connectedOnce,
			steps: []step{{d: updated(10, ConnectionError, "", true), want: want{OutcomeApplied, StateDisconnected, KindDisconnected, 0, "", ActionReconnect}}},
		},
		{
			name: "a scan time proves a past connection",
			steps: []step{
				{d: updated(10, ConnectionConnecting, "", true), want: want{OutcomeApplied, StateConnecting, KindUnspecified, 0, "", ActionWait}},
				{d: withError(event(EventAccountsUpdated, 20), "auth_required"), want: want{OutcomeApplied, StateDisconnected, KindDisconnected, 0, "auth_required", ActionReconnect}},
			},
		},
		{
			name:  "the failure count saturates",
			start: Record{AccountID: testAccount, UserID: testUser, State: StateAuthFailed, ErrorCode: "invalid_mfa", ConsecutiveFailures: math.MaxInt, IncidentState: StateAuthFailed},
			steps: []step{{d: failed(10, "invalid_mfa"), want: want{OutcomeApplied, StateAuthFailed, KindUnspecified, math.MaxInt, "invalid_mfa", ActionRetryMFA}}},
		},
		{
			name:  "a corrupt negative failure count restarts at one",
			start: Record{AccountID: testAccount, UserID: testUser, State: StateHealthy, ConsecutiveFailures: -3, EverConnected: true},
			steps: []step{{d: failed(10, "invalid_mfa"), want: want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 1, "invalid_mfa", ActionRetryMFA}}},
		},
		{
			name:  "the user id is filled once",
			start: Record{AccountID: testAccount, State: StateHealthy, EverConnected: true},
			steps: []step{
				{d: updated(10, ConnectionError, "auth_required", true), want: want{OutcomeApplied, StateDisconnected, KindDisconnected, 0, "auth_required", ActionReconnect},
					check: func(t *testing.T, res Result) { wantLink(t, res.Record.Remedy, testAccount, testUser) }},
				{d: func() Delivery { d := connected(20); d.UserID = otherUser; return d }(), want: want{OutcomeApplied, StateHealthy, KindRecovered, 0, "", ActionNone},
					check: func(t *testing.T, res Result) {
						if res.Record.UserID != testUser {
							t.Errorf("UserID = %q, want the first one, %q", res.Record.UserID, testUser)
						}
					}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := replay(t, tt.start, tt.given...)
			for i, s := range tt.steps {
				res := Apply(rec, s.d)
				t.Run(fmt.Sprintf("%d_%s", i, s.d.Event), func(t *testing.T) {
					checkInvariants(t, rec, s.d, res)
					checkResult(t, res, s.want)
					if s.check != nil {
						s.check(t, res)
					}
				})
				rec = res.Record
			}
		})
	}
}

// TestApplyCodes runs every documented code through the events that carry
// it, in both orders of an attempt's two deliveries, against the
// hand-written category table.
func TestApplyCodes(t *testing.T) {
	for _, code := range documentedCodes {
		w, ok := wantCodes[code]
		if !ok {
			t.Fatalf("no expectation for %q", code)
		}
		// A login that never completed is retried (or waited for, when the
		// provider is at fault) rather than reconnected.
		failedAction := w.action
		switch {
		case w.category == CategoryProvider:
			failedAction = ActionWait
		case w.action == ActionReconnect:
			failedAction = ActionRetryLogin
		}
		// On a connected account a login-attempt code is a failed login, a
		// provider code a degradation, any other a disconnection.
		connState, connKind := StateDisconnected, KindDisconnected
		switch w.category {
		case CategoryLogin:
			connState, connKind = StateAuthFailed, KindAuthFailed
		case CategoryProvider:
			connState, connKind = StateDegraded, KindDegraded
		}
		t.Run(code, func(t *testing.T) {
			t.Run("failed/new account", func(t *testing.T) {
				d := failed(10, code)
				res := Apply(Record{}, d)
				checkInvariants(t, Record{}, d, res)
				checkResult(t, res, want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 1, code, failedAction})
			})
			t.Run("updated/never connected", func(t *testing.T) {
				rec := replay(t, Record{}, added(0))
				d := updated(10, ConnectionError, code, false)
				res := Apply(rec, d)
				checkInvariants(t, rec, d, res)
				checkResult(t, res, want{OutcomeApplied, StateAuthFailed, KindAuthFailed, 0, code, failedAction})
			})
			for _, reversed := range []bool{false, true} {
				pair := []Delivery{failed(10, code), updated(10, ConnectionError, code, true)}
				name := "failed then updated/connected account"
				if reversed {
					pair[0], pair[1] = pair[1], pair[0]
					name = "updated then failed/connected account"
				}
				t.Run(name, func(t *testing.T) {
					rec := replay(t, Record{}, connectedOnce...)
					res := Apply(rec, pair[0])
					checkInvariants(t, rec, pair[0], res)
					checkResult(t, res, want{OutcomeApplied, connState, connKind, res.Record.ConsecutiveFailures, code, w.action})
					rec = res.Record
					res = Apply(rec, pair[1])
					checkInvariants(t, rec, pair[1], res)
					checkResult(t, res, want{OutcomeApplied, connState, KindUnspecified, 1, code, w.action})
				})
			}
		})
	}
}

// stateRecords holds one record in every state a removal can come from.
func stateRecords() map[State]Record {
	recs := map[State]Record{StateUnknown: {}}
	for _, s := range []State{StateConnecting, StateHealthy, StateAuthFailed, StateDisconnected, StateDegraded} {
		r := Record{AccountID: testAccount, UserID: testUser, State: s, StateSince: at(0), EverConnected: s != StateConnecting, ConsecutiveFailures: 2, Unconfirmed: true}
		if s.NeedsAttention() {
			r.ErrorCode, r.ErrorMessage, r.IncidentState = "auth_required", "message of auth_required", s
		}
		if s == StateHealthy {
			r.ConsecutiveFailures = 0
		}
		r.Remedy = remedyFor(r)
		recs[s] = r
	}
	return recs
}

func TestApplyRemovalFromEveryState(t *testing.T) {
	for from, cur := range stateRecords() {
		t.Run(from.String(), func(t *testing.T) {
			d := removed(10)
			res := Apply(cur, d)
			checkInvariants(t, cur, d, res)
			checkResult(t, res, want{OutcomeApplied, StateRemoved, KindRemoved, cur.ConsecutiveFailures, "", ActionConnectNewAccount})
			r := res.Record
			wantLink(t, r.Remedy, "", testUser)
			if res.Transition.PreviousState != from || !r.StateSince.Equal(at(10)) || r.ErrorMessage != "" || r.IncidentState != StateUnknown || r.Unconfirmed {
				t.Errorf("transition from %v, record %+v; want from %v, since minute 10, no error, no open incident, confirmed", res.Transition.PreviousState, r, from)
			}
		})
	}
}

func TestApplyAfterRemoval(t *testing.T) {
	gone := replay(t, Record{}, added(0), withResource(connected(1), ConnectionConnected, "", 1, true), removed(2))
	later := []struct {
		name string
		d    Delivery
	}{
		{"added", added(10)},
		{"added with resource", withResource(added(10), ConnectionConnecting, "", 10, false)},
		{"connected", connected(10)},
		{"connected with newer resource", withResource(connected(10), ConnectionConnected, "", 10, true)},
		{"failed", failed(10, "invalid_credentials")},
		{"failed with newer resource", withResource(failed(10, "invalid_mfa"), ConnectionError, "invalid_mfa", 10, true)},
		{"updated connected, newer", updated(10, ConnectionConnected, "", true)},
		{"updated error, newer", updated(10, ConnectionError, "auth_required", true)},
		{"updated provider error, newer", updated(10, ConnectionError, "system_error", true)},
		{"updated connecting, newer", updated(10, ConnectionConnecting, "", true)},
		{"updated unknown status, newer", updated(10, "paused", "", true)},
		{"updated without resource", event(EventAccountsUpdated, 10)},
		{"updated with error in data", withError(event(EventAccountsUpdated, 10), "auth_required")},
		{"removed again", removed(10)},
		{"removed with resource", withResource(removed(10), ConnectionConnected, "", 10, true)},
		{"unknown accounts event with resource", withResource(event("accounts.reauthenticated", 10), ConnectionConnected, "", 10, true)},
	}
	for _, tt := range later {
		t.Run(tt.name, func(t *testing.T) {
			res := Apply(gone, tt.d)
			checkInvariants(t, gone, tt.d, res)
			if res.Outcome != OutcomeAfterRemoval || res.Transition != nil || !reflect.DeepEqual(res.Record, gone) {
				t.Errorf("got %v, transition %+v, record %+v; want AFTER_REMOVAL, none, unchanged", res.Outcome, res.Transition, res.Record)
			}
		})
	}
}

// TestApplyStory replays the fixtures' two accounts (../fixtures/deliveries
// in the shared folder), with their resources' times, and checks the states
// and the events subscribers hear, in order.
func TestApplyStory(t *testing.T) {
	const second = "0190a1e3-2b7e-7d03-a1c4-3e8f5a6b7c22"
	received := t0
	// fixture builds a delivery received a minute after the previous one.
	fixture := func(acct, ev, status, code, updatedAt, connUpdatedAt, scannedAt string) Delivery {
		received = received.Add(time.Minute)
		d := Delivery{Event: ev, AccountID: acct, UserID: testUser, ReceivedAt: received}
		if status != "" {
			d.Snapshot = &Snapshot{
				ConnectionStatus:    status,
				ConnectionErrorCode: code,
				ConnectionUpdatedAt: mustTime(t, connUpdatedAt),
				UpdatedAt:           mustTime(t, updatedAt),
				ScannedAt:           mustTime(t, scannedAt),
				Raw:                 []byte(`{"id":"` + acct + `"}`),
			}
		}
		d.ErrorCode = code
		return d
	}
	type beat struct {
		d     Delivery
		state State
		kind  Kind
	}
	tests := []struct {
		name  string
		beats []beat
	}{
		{
			name: "connects, disconnects twice, reconnects, degrades, is removed",
			beats: []beat{
				{fixture(testAccount, EventAccountsAdded, "", "", "", "", ""), StateConnecting, KindUnspecified},
				{fixture(testAccount, EventAccountsConnected, ConnectionConnected, "", "2026-10-05T14:02:12.004511Z", "2026-10-05T14:02:11.381204Z", "2026-10-05T14:01:40.552013Z"), StateHealthy, KindUnspecified},
				{fixture(testAccount, EventAccountsUpdated, ConnectionConnected, "", "2026-10-05T14:02:12.004511Z", "2026-10-05T14:02:11.381204Z", "2026-10-05T14:01:40.552013Z"), StateHealthy, KindUnspecified},
				{fixture(testAccount, EventAccountsUpdated, ConnectionError, "auth_required", "2026-11-02T03:12:45.774410Z", "2026-11-02T03:12:45.118762Z", "2026-11-01T21:05:09.330027Z"), StateDisconnected, KindDisconnected},
				// A redelivery that is not byte-identical: no second event.
				{fixture(testAccount, EventAccountsUpdated, ConnectionError, "auth_required", "2026-11-02T03:12:45.774410Z", "2026-11-02T03:12:45.118762Z", "2026-11-01T21:05:09.330027Z"), StateDisconnected, KindUnspecified},
				{fixture(testAccount, EventAccountsUpdated, ConnectionError, "expired_credentials", "2026-11-09T11:40:02.662085Z", "2026-11-09T11:40:02.004417Z", "2026-11-08T22:14:57.812560Z"), StateDisconnected, KindDisconnected},
				{fixture(testAccount, EventAccountsUpdated, ConnectionConnected, "", "2026-11-10T16:21:04.118337Z", "2026-11-10T16:20:33.540981Z", "2026-11-10T16:21:01.007215Z"), StateHealthy, KindRecovered},
				// The auth_required snapshot arriving late changes nothing.
				{fixture(testAccount, EventAccountsUpdated, ConnectionError, "auth_required", "2026-11-02T03:12:45.774410Z", "2026-11-02T03:12:45.118762Z", "2026-11-01T21:05:09.330027Z"), StateHealthy, KindUnspecified},
				{fixture(testAccount, EventAccountsUpdated, ConnectionError, "platform_unavailable", "2026-11-12T05:00:17.950123Z", "2026-11-12T05:00:17.392240Z", "2026-11-11T23:48:30.661902Z"), StateDegraded, KindDegraded},
				{fixture(testAccount, EventAccountsUpdated, "", "", "", "", ""), StateDegraded, KindUnspecified},
				{fixture(testAccount, EventAccountsRemoved, "", "", "", "", ""), StateRemoved, KindRemoved},
				{fixture(testAccount, EventAccountsUpdated, ConnectionConnected, "", "2026-11-20T00:00:00Z", "2026-11-20T00:00:00Z", "2026-11-20T00:00:00Z"), StateRemoved, KindUnspecified},
			},
		},
		{
			name: "fails MFA on its first attempt, then times out",
			beats: []beat{
				{fixture(second, EventAccountsAdded, "", "", "", "", ""), StateConnecting, KindUnspecified},
				{fixture(second, EventAccountsFailed, ConnectionError, "invalid_mfa", "2026-10-06T08:30:51.901122Z", "2026-10-06T08:30:51.220319Z", ""), StateAuthFailed, KindAuthFailed},
				{fixture(second, EventAccountsUpdated, ConnectionError, "invalid_mfa", "2026-10-06T08:30:51.901122Z", "2026-10-06T08:30:51.220319Z", ""), StateAuthFailed, KindUnspecified},
				{fixture(second, EventAccountsFailed, "", "mfa_timeout", "", "", ""), StateAuthFailed, KindAuthFailed},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec Record
			var gotKinds, wantKinds []Kind
			for i, b := range tt.beats {
				res := Apply(rec, b.d)
				checkInvariants(t, rec, b.d, res)
				if res.Record.State != b.state {
					t.Errorf("beat %d (%s %s): state %v, want %v", i, b.d.Event, b.d.ErrorCode, res.Record.State, b.state)
				}
				if res.Transition != nil {
					gotKinds = append(gotKinds, res.Transition.Kind)
				}
				if b.kind != KindUnspecified {
					wantKinds = append(wantKinds, b.kind)
				}
				rec = res.Record
			}
			if !reflect.DeepEqual(gotKinds, wantKinds) {
				t.Errorf("events %v, want %v", gotKinds, wantKinds)
			}
		})
	}
}

// mustTime parses an RFC 3339 time; empty is the zero time (JSON null).
func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	if s == "" {
		return time.Time{}
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantLink checks the Link parameters of a remedy.
func wantLink(t *testing.T, r Remedy, accountID, userID string) {
	t.Helper()
	if r.LinkAccountID != accountID || r.LinkUserID != userID {
		t.Errorf("%v remedy opens Link with account %q, user %q; want %q, %q", r.Action, r.LinkAccountID, r.LinkUserID, accountID, userID)
	}
}

// wantMention checks that a sentence says what the user needs to hear.
func wantMention(t *testing.T, msg string, phrases ...string) {
	t.Helper()
	for _, p := range phrases {
		if !strings.Contains(msg, p) {
			t.Errorf("message %q does not mention %q", msg, p)
		}
	}
}

func wantUnconfirmed(t *testing.T, res Result, want bool) {
	t.Helper()
	if res.Record.Unconfirmed != want {
		t.Errorf("Unconfirmed = %v, want %v", res.Record.Unconfirmed, want)
	}
}
