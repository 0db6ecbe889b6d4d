package health

import (
	"cmp"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzApply feeds Apply arbitrary records and delivery sequences and checks
// the invariants every result must keep. script is read four bytes per
// delivery (see fuzzScript.delivery); event and code are free text the
// script may pick, so new event names and codes get exercised too.
func FuzzApply(f *testing.F) {
	f.Add([]byte{}, "accounts.reauthenticated", "brand_new_code", 0)
	// The fixture story: added, connected, auth_required, expired_credentials,
	// connected, platform_unavailable, updated without resource, removed, connected.
	f.Add([]byte{
		0x00, 0, 0x00, 0,
		0x41, 0, 0x05, 10,
		0x43, 7, 0x06, 20,
		0x43, 11, 0x06, 30,
		0x43, 0, 0x05, 40,
		0x43, 37, 0x06, 50,
		0x03, 0, 0x00, 0,
		0x04, 0, 0x00, 0,
		0x41, 0, 0x05, 60,
	}, "accounts.reauthenticated", "brand_new_code", 0)
	// A failed first attempt, its accompanying updated, a timeout, a late snapshot.
	f.Add([]byte{
		0xC2, 20, 0x02, 10,
		0x43, 20, 0x02, 10,
		0x82, 30, 0x00, 0,
		0x43, 0, 0x05, 5,
	}, "accounts.failed", "", 3)
	f.Add([]byte{0x45, 52, 0x07, 200, 0x89, 52, 0x1A, 0}, "accounts.", "auth_required", math.MaxInt)
	f.Fuzz(func(t *testing.T, script []byte, event, code string, failures int) {
		s := fuzzScript{b: script, event: event, code: code}
		rec := s.record(failures)
		// Longer histories find nothing new and only slow the search down.
		for range min(len(script)/4+1, 64) {
			d := s.delivery()
			res := Apply(rec, d)
			checkInvariants(t, rec, d, res)
			rec = res.Record
		}
	})
}

// fuzzScript turns fuzz bytes into records and deliveries; past its end it
// reads zeros.
type fuzzScript struct {
	b           []byte
	event, code string
	step        int
}

func (s *fuzzScript) next() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

// record builds the starting record from one byte, its state and flags, and
// the fuzzed failure count (negative or huge: a corrupt store). It keeps
// what every record Apply makes has: a HEALTHY one connected and has no
// error or failure, a REMOVED one has no error.
func (s *fuzzScript) record(failures int) Record {
	c := s.next()
	r := Record{State: State(c % 7)}
	if r.State == StateUnknown {
		return r
	}
	r.AccountID, r.StateSince = testAccount, at(0)
	if c&0x08 != 0 {
		r.UserID = testUser
	}
	if c&0x10 != 0 {
		r.ErrorCode = s.code
	}
	r.ConsecutiveFailures = failures
	r.EverConnected = c&0x20 != 0
	if c&0x40 != 0 {
		r.IncidentState = State(c%4 + 3) // AUTH_FAILED..REMOVED; REMOVED is corrupt, tolerated
	}
	if c&0x80 != 0 {
		r.SnapshotAt, r.Snapshot = at(100), []byte(`{}`)
	}
	switch r.State {
	case StateHealthy:
		r.ErrorCode, r.ConsecutiveFailures, r.EverConnected = "", 0, true
	case StateRemoved:
		r.ErrorCode = ""
	}
	if r.State == StateHealthy || r.State == StateRemoved {
		r.IncidentState = StateUnknown
	}
	r.Remedy = remedyFor(r)
	return r
}

var fuzzEvents = []string{
	EventAccountsAdded, EventAccountsConnected, EventAccountsFailed, EventAccountsUpdated, EventAccountsRemoved,
	"", "users.fully_synced", "paystubs.added", "accounts.reauthenticated",
}

var fuzzStatuses = []string{ConnectionConnecting, ConnectionConnected, ConnectionError, ""}

// delivery reads one delivery from four bytes:
//
//	b0: bits 0-3 event (fuzzEvents, or the free event), 4 no account id,
//	    5 no user id, 6 a resource, 7 an error code in data
//	b1: the code: a documented one, empty, or the free code
//	b2: bits 0-1 status (fuzzStatuses, or the free code as status), 2 scanned,
//	    3-4 which resource times are set, 5 another user id
//	b3: the resource's minute
func (s *fuzzScript) delivery() Delivery {
	b0, b1, b2, b3 := s.next(), s.next(), s.next(), s.next()
	s.step++
	d := Delivery{Event: s.event, AccountID: testAccount, UserID: testUser, ReceivedAt: at(s.step)}
	if i := int(b0 & 0x0F); i < len(fuzzEvents) {
		d.Event = fuzzEvents[i]
	}
	if b0&0x10 != 0 {
		d.AccountID = ""
	}
	switch {
	case b0&0x20 != 0:
		d.UserID = ""
	case b2&0x20 != 0:
		d.UserID = otherUser
	}
	code := s.code
	if i := int(b1) % (len(documentedCodes) + 2); i < len(documentedCodes) {
		code = documentedCodes[i]
	} else if i == len(documentedCodes) {
		code = ""
	}
	if b0&0x80 != 0 {
		d.ErrorCode, d.ErrorMessage = code, "message of "+code
	}
	if b0&0x40 != 0 {
		snap := &Snapshot{ConnectionStatus: s.code, ConnectionErrorCode: code, Raw: []byte{b0, b1, b2, b3}}
		if i := int(b2 & 0x03); i < len(fuzzStatuses) {
			snap.ConnectionStatus = fuzzStatuses[i]
		}
		if b2&0x04 != 0 {
			snap.ScannedAt = at(int(b3)).Add(-time.Hour)
		}
		if b2&0x08 != 0 {
			snap.ConnectionUpdatedAt = at(int(b3))
		}
		if b2&0x10 != 0 {
			snap.UpdatedAt = at(int(b3)).Add(time.Second)
		}
		if d.ErrorCode == "" {
			d.ErrorCode = code
		}
		d.Snapshot = snap
	}
	return d
}

// checkInvariants asserts what must hold for any cur and d. Table tests run
// it on every step too.
func checkInvariants(t testing.TB, cur Record, d Delivery, res Result) {
	t.Helper()
	if again := Apply(cur, d); !reflect.DeepEqual(again, res) {
		t.Fatalf("Apply is not deterministic: %+v, then %+v", res, again)
	}
	next := res.Record
	accountEvent := strings.HasPrefix(d.Event, "accounts.") && d.AccountID != ""
	stale := d.Event != EventAccountsRemoved && d.Snapshot != nil &&
		!d.Snapshot.Time().IsZero() && !cur.SnapshotAt.IsZero() && d.Snapshot.Time().Before(cur.SnapshotAt)
	switch {
	case !accountEvent:
		if res.Outcome != OutcomeNotAccountEvent || res.Transition != nil || !reflect.DeepEqual(next, cur) {
			t.Fatalf("%q for account %q: got %v, transition %+v, changed %v; want NOT_ACCOUNT_EVENT, unchanged", d.Event, d.AccountID, res.Outcome, res.Transition, !reflect.DeepEqual(next, cur))
		}
		return
	case cur.State == StateRemoved:
		if res.Outcome != OutcomeAfterRemoval || res.Transition != nil || !reflect.DeepEqual(next, cur) {
			t.Fatalf("%q after removal: got %v, transition %+v, record %+v; want AFTER_REMOVAL, unchanged", d.Event, res.Outcome, res.Transition, next)
		}
		return
	case stale:
		want := cur
		want.LastEventType, want.LastEventAt = d.Event, d.ReceivedAt
		if d.ReceivedAt.After(want.ConfirmedAt) {
			want.ConfirmedAt = d.ReceivedAt // it carries the account object
		}
		if res.Outcome != OutcomeStale || res.Transition != nil || !reflect.DeepEqual(next, want) {
			t.Fatalf("stale %q: got %v, transition %+v, record %+v; want STALE, only the last event updated", d.Event, res.Outcome, res.Transition, next)
		}
		return
	}
	checkAccepted(t, cur, d, res)
}

// checkAccepted asserts what holds for a delivery that was applied or
// recorded as unconfirmed.
func checkAccepted(t testing.TB, cur Record, d Delivery, res Result) {
	t.Helper()
	next := res.Record
	switch res.Outcome {
	case OutcomeApplied:
	case OutcomeUnconfirmed:
		lean := d.Snapshot == nil && d.ErrorCode == ""
		special := d.Event == EventAccountsAdded || d.Event == EventAccountsConnected || d.Event == EventAccountsFailed || d.Event == EventAccountsRemoved
		kept := next.State == cur.State || cur.State == StateUnknown && next.State == StateConnecting
		if !lean || special || !kept || !next.Unconfirmed || res.Transition != nil {
			t.Fatalf("%q unconfirmed: %+v from %+v", d.Event, next, cur)
		}
	default:
		t.Fatalf("%q: outcome %v, want APPLIED or UNCONFIRMED", d.Event, res.Outcome)
	}

	if next.State <= StateUnknown || next.State > StateRemoved {
		t.Errorf("state %v after %q", next.State, d.Event)
	}
	if next.LastEventType != d.Event || !next.LastEventAt.Equal(d.ReceivedAt) || next.AccountID != d.AccountID {
		t.Errorf("last event %q at %v, account %q; want the delivery's", next.LastEventType, next.LastEventAt, next.AccountID)
	}
	if wantUser := cmp.Or(cur.UserID, d.UserID); next.UserID != wantUser {
		t.Errorf("UserID %q, want %q", next.UserID, wantUser)
	}
	if (next.State != cur.State && !next.StateSince.Equal(d.ReceivedAt)) || (next.State == cur.State && !next.StateSince.Equal(cur.StateSince)) {
		t.Errorf("StateSince %v going %v -> %v at %v", next.StateSince, cur.State, next.State, d.ReceivedAt)
	}
	if cur.EverConnected && !next.EverConnected {
		t.Error("EverConnected went back to false")
	}
	if next.SnapshotAt.Before(cur.SnapshotAt) {
		t.Errorf("SnapshotAt moved back from %v to %v", cur.SnapshotAt, next.SnapshotAt)
	}

	// Counting failures: only accounts.failed adds one, only success resets.
	switch {
	case cur.ConsecutiveFailures >= 0 && next.ConsecutiveFailures < 0:
		t.Errorf("ConsecutiveFailures %d from %d", next.ConsecutiveFailures, cur.ConsecutiveFailures)
	case d.Event == EventAccountsFailed && cur.ConsecutiveFailures >= 0 && cur.ConsecutiveFailures < math.MaxInt && next.ConsecutiveFailures != cur.ConsecutiveFailures+1:
		t.Errorf("accounts.failed counted %d -> %d", cur.ConsecutiveFailures, next.ConsecutiveFailures)
	case d.Event != EventAccountsFailed && next.State != StateHealthy && next.ConsecutiveFailures != cur.ConsecutiveFailures:
		t.Errorf("%q changed the failure count %d -> %d", d.Event, cur.ConsecutiveFailures, next.ConsecutiveFailures)
	}

	// What each event guarantees.
	switch {
	case d.Event == EventAccountsRemoved && next.State != StateRemoved,
		d.Event != EventAccountsRemoved && next.State == StateRemoved,
		d.Event == EventAccountsConnected && next.State != StateHealthy,
		d.Event == EventAccountsFailed && !next.State.NeedsAttention():
		t.Errorf("%q (%q) led to %v with %q", d.Event, d.ErrorCode, next.State, next.ErrorCode)
	}
	// An error that names no code keeps the incident's; one that does
	// replaces it.
	if code, _ := reportedError(d); next.State.NeedsAttention() && next.State != StateRemoved && d.Event != EventAccountsConnected {
		reported := d.Event == EventAccountsFailed || d.Snapshot != nil && d.Snapshot.ConnectionStatus == ConnectionError || d.Snapshot == nil && d.ErrorCode != ""
		switch {
		case reported && code != "" && next.ErrorCode != code:
			t.Errorf("%q reported %q, record has %q", d.Event, code, next.ErrorCode)
		case reported && code == "" && cur.State.NeedsAttention() && (next.ErrorCode != cur.ErrorCode || next.State != cur.State):
			t.Errorf("%q without a code turned %v %q into %v %q", d.Event, cur.State, cur.ErrorCode, next.State, next.ErrorCode)
		}
	}
	if next.State == StateHealthy && (next.ErrorCode != "" || next.ErrorMessage != "" || next.ConsecutiveFailures != 0 || !next.EverConnected) {
		t.Errorf("HEALTHY record %+v carries an error, failures or never connected", next)
	}
	if next.State == StateRemoved && next.ErrorCode != "" {
		t.Errorf("REMOVED record keeps error %q", next.ErrorCode)
	}

	checkRemedy(t, next)
	checkTransition(t, cur, d, res)
}

// checkFreshness asserts freshness belongs to HEALTHY records only, and
// follows from its verdicts.
func checkFreshness(t testing.TB, r Record) {
	t.Helper()
	if r.State != StateHealthy {
		if r.Freshness != FreshnessUnknown || !r.FreshnessSince.IsZero() || !r.FreshAsOf.IsZero() || !r.StaleSince.IsZero() {
			t.Errorf("%v record has freshness %v since %v, fresh as of %v, stale since %v", r.State, r.Freshness, r.FreshnessSince, r.FreshAsOf, r.StaleSince)
		}
		return
	}
	switch {
	case r.Freshness == FreshnessUnknown, r.FreshnessSince.IsZero():
		t.Errorf("HEALTHY record has freshness %v since %v", r.Freshness, r.FreshnessSince)
	case r.StaleSince.IsZero() == r.FreshAsOf.IsZero():
		t.Errorf("HEALTHY record stale since %v and fresh as of %v: want exactly one", r.StaleSince, r.FreshAsOf)
	case r.RefreshDisabled != (r.Freshness == FreshnessRefreshDisabled) && r.Freshness != FreshnessSyncFailed && r.Freshness != FreshnessStale:
		t.Errorf("refresh disabled %v, freshness %v", r.RefreshDisabled, r.Freshness)
	}
}

// checkRemedy asserts the remedy fits the state and opens Link only when the
// action happens there.
func checkRemedy(t testing.TB, r Record) {
	t.Helper()
	rem := r.Remedy
	wantAction := map[State]Action{StateHealthy: ActionNone, StateConnecting: ActionWait, StateRemoved: ActionConnectNewAccount}
	if a, ok := wantAction[r.State]; ok && rem.Action != a {
		t.Errorf("%v remedy is %v, want %v", r.State, rem.Action, a)
	}
	var wantAccount, wantUser string
	switch rem.Action {
	case ActionReconnect, ActionUpdateCredentials, ActionRetryLogin, ActionRetryMFA:
		wantAccount, wantUser = r.AccountID, r.UserID
	case ActionConnectNewAccount:
		wantUser = r.UserID
	case ActionNone, ActionWait, ActionContactPayrollProvider:
	default:
		t.Errorf("remedy action %v", rem.Action)
	}
	if rem.LinkAccountID != wantAccount || rem.LinkUserID != wantUser || rem.Message == "" {
		t.Errorf("%v remedy %+v: want Link account %q, user %q and a message", rem.Action, rem, wantAccount, wantUser)
	}
}

// checkTransition asserts a transition comes exactly when the spec wants one,
// and that IncidentState follows.
func checkTransition(t testing.TB, cur Record, d Delivery, res Result) {
	t.Helper()
	next, tr := res.Record, res.Transition
	kinds := map[State]Kind{StateAuthFailed: KindAuthFailed, StateDisconnected: KindDisconnected, StateDegraded: KindDegraded, StateRemoved: KindRemoved}
	var want Kind
	from := cur.State
	newCode := cur.ErrorCode != "" && next.ErrorCode != "" && cur.ErrorCode != next.ErrorCode
	switch {
	case next.State == StateRemoved:
		want = KindRemoved
	case next.State.NeedsAttention() && (!cur.State.NeedsAttention() || newCode):
		want = kinds[next.State]
	case next.State == StateHealthy && cur.State != StateHealthy && cur.IncidentState != StateUnknown:
		want, from = KindRecovered, cur.IncidentState
	case cur.State == StateHealthy && next.State == StateHealthy && cur.Freshness != next.Freshness && cur.Freshness != FreshnessUnknown:
		// A first verdict (a record from rules that knew no freshness) is silent.
		want = KindFreshnessLost
		if next.Freshness == FreshnessFresh {
			want = KindFreshnessRestored
		}
	}
	checkFreshness(t, next)
	switch {
	case next.State == StateHealthy || next.State == StateRemoved:
		if next.IncidentState != StateUnknown {
			t.Errorf("%v record keeps an incident %v", next.State, next.IncidentState)
		}
	case next.State.NeedsAttention():
		if next.IncidentState != next.State {
			t.Errorf("%v record has incident %v", next.State, next.IncidentState)
		}
	case next.IncidentState != cur.IncidentState:
		t.Errorf("IncidentState changed %v -> %v in %v", cur.IncidentState, next.IncidentState, next.State)
	}
	if want == KindUnspecified {
		if tr != nil {
			t.Errorf("%v -> %v (%q -> %q): unexpected transition %+v", cur.State, next.State, cur.ErrorCode, next.ErrorCode, tr)
		}
		return
	}
	if tr == nil {
		t.Fatalf("%v -> %v (%q -> %q): no transition, want %v", cur.State, next.State, cur.ErrorCode, next.ErrorCode, want)
	}
	wantTr := Transition{
		Kind: want, PreviousState: from, State: next.State,
		ErrorCode: next.ErrorCode, ErrorMessage: next.ErrorMessage, Remedy: next.Remedy, OccurredAt: d.ReceivedAt,
		Freshness: next.Freshness, PreviousFreshness: next.Freshness, FailedDatasets: next.FailedDatasets,
	}
	if want == KindFreshnessLost || want == KindFreshnessRestored {
		wantTr.PreviousFreshness = cur.Freshness
	}
	if !reflect.DeepEqual(*tr, wantTr) {
		t.Errorf("transition %+v, want %+v", *tr, wantTr)
	}
}
