package health

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"
)

// accountsPrefix marks the event family that carries account health.
const accountsPrefix = "accounts."

// RulesVersion numbers the derivation rules of Apply and IsRedelivery. It
// goes up whenever they derive a different record or transition from some
// history, so that stores holding records derived under older rules know to
// rebuild them from their log. Version 3: a lean accounts.failed leaves the
// record unconfirmed, and records carry ConfirmedAt. Version 4: records and
// transitions keep at most MaxMessageBytes of an error message. Version 5:
// records name their payroll platform (Item), and an item's outage turns
// their remedy to waiting (ItemOutage). Version 6: records derive the
// freshness of HEALTHY accounts' data (Freshness).
const RulesVersion = 6

// Result is what one delivery does to an account.
type Result struct {
	Record     Record      // the next record (== cur when nothing changed)
	Outcome    Outcome     // never OutcomeDuplicate: only the store can tell
	Transition *Transition // nil unless a subscriber must hear about it
}

// Apply derives an account's next record from its current one (zero State:
// no record yet) and one delivery for it. It is pure and total: any input,
// however odd, yields a result, because the provider adds events, statuses
// and codes without notice and deliveries may be lost, repeated or late.
//
// The provider sends the two deliveries of one attempt (accounts.failed or
// accounts.connected, and the accounts.updated carrying the same account
// object) in no documented order, each with or without the object. So that
// their order never matters, Apply decides that:
//   - The state an error puts the account in depends on the error code and
//     on whether the account ever connected, never on which event carried
//     it (see errorState): both deliveries of one failed attempt agree.
//     accounts.failed alone counts the attempt.
//   - The error reported is the account object's when it names one (both
//     deliveries carry the same object), else data's.
//   - A delivery that does not say something keeps what is known: a failure
//     or error without a code keeps the code of the incident under way, and
//     a lean delivery repeating the known code keeps its message.
//   - A disconnection event fires when the account starts needing
//     attention, or when a new error code replaces another; not when a
//     second delivery of the same attempt relabels the state or fills in a
//     code that was missing (see transitionKind).
//
// Besides, it decides that:
//   - accounts.connected and accounts.removed, and an error code without a
//     resource, clear Unconfirmed like a snapshot does: they tell the state,
//     so the record no longer lags behind. A lean accounts.failed sets it:
//     the attempt failed, but only the account object tells whether the
//     connection is still in error and with which code.
//   - Any delivery with a resource confirms the account (ConfirmedAt), even
//     one too late to apply: the provider's object was seen at that time.
//   - accounts.added is read like accounts.updated when it carries a
//     resource, also for an account seen first: the resource is the account
//     as it is now, which may be more than "connecting".
//   - A resource with an unknown connection status is applied (OutcomeApplied)
//     but leaves the state alone and marks the record Unconfirmed: fetching
//     the account again would not tell more.
//   - Deliveries without a timestamp (no resource) are applied in the order
//     they arrive; resources order themselves by their own times.
//   - Removal closes the incident: a removed account has nothing to recover.
func Apply(cur Record, d Delivery) Result {
	switch {
	case d.ItemOutage != nil:
		return applyItemOutage(cur, d)
	case d.Staleness != nil:
		return applyStaleness(cur, d)
	}
	if !strings.HasPrefix(d.Event, accountsPrefix) || d.AccountID == "" {
		return Result{Record: cur, Outcome: OutcomeNotAccountEvent}
	}
	if cur.State == StateRemoved {
		return Result{Record: cur, Outcome: OutcomeAfterRemoval}
	}

	next := cur
	next.LastEventType, next.LastEventAt = d.Event, d.ReceivedAt
	if d.Snapshot != nil && d.ReceivedAt.After(next.ConfirmedAt) {
		next.ConfirmedAt = d.ReceivedAt
	}
	if d.Event != EventAccountsRemoved && d.Snapshot != nil && olderThan(d.Snapshot.Time(), cur.SnapshotAt) {
		// A late delivery: the account has moved on since. Removal is never
		// late, it wins whatever its snapshot says.
		return Result{Record: next, Outcome: OutcomeStale}
	}

	next.AccountID = d.AccountID
	if next.UserID == "" {
		next.UserID = d.UserID
	}
	if d.Snapshot != nil {
		applySnapshot(&next, d.Snapshot, d.ReceivedAt)
	}
	outcome := OutcomeApplied
	switch d.Event {
	case EventAccountsRemoved:
		next.State = StateRemoved
		next.ErrorCode, next.ErrorMessage = "", ""
		next.Unconfirmed = false
	case EventAccountsConnected:
		markHealthy(&next)
	case EventAccountsFailed:
		markFailed(&next, d)
	default:
		outcome = observe(&next, d)
	}

	if next.State != cur.State {
		next.StateSince = d.ReceivedAt
	}
	next.Remedy = remedyFor(next)
	switch {
	case next.State == StateHealthy, next.State == StateRemoved:
		next.IncidentState = StateUnknown
	case next.State.NeedsAttention():
		next.IncidentState = next.State
	}
	deriveFreshness(cur, &next, d)
	res := Result{Record: next, Outcome: outcome, Transition: freshnessTransition(cur, next, d.ReceivedAt)}
	if kind := transitionKind(cur, next); kind != KindUnspecified {
		from := cur.State
		if kind == KindRecovered {
			from = cur.IncidentState
		}
		res.Transition = &Transition{
			Kind:          kind,
			PreviousState: from,
			State:         next.State,
			ErrorCode:     next.ErrorCode,
			ErrorMessage:  next.ErrorMessage,
			Remedy:        next.Remedy,
			OccurredAt:    d.ReceivedAt,
			Freshness:     next.Freshness,
			// For a state's event, the freshness it replaces is not news.
			PreviousFreshness: next.Freshness,
			FailedDatasets:    next.FailedDatasets,
		}
	}
	return res
}

// applyItemOutage applies an items.outage_* entry for one account: while
// its item is in an outage, the remedy of an account that needs attention
// is to wait for the platform, whatever its error, and nobody should ask
// the user to act; when the outage ends, its usual remedy is back, and an
// account whose usual remedy is for someone to act (not to wait: a
// provider-side error) makes a KindRemedyRestored event, so that whoever
// holds back from asking the user learns that now they must.
// The state, error and timestamps stay: the entry tells nothing of the
// account itself. An entry of the item's outage beginning for an account
// that is on another item by now is recorded only.
func applyItemOutage(cur Record, d Delivery) Result {
	o := d.ItemOutage
	switch {
	case d.AccountID == "" || cur.State == StateUnknown || (o.InOutage && o.Item != cur.Item):
		return Result{Record: cur, Outcome: OutcomeNotAccountEvent}
	case cur.State == StateRemoved:
		return Result{Record: cur, Outcome: OutcomeAfterRemoval}
	}
	next := cur
	next.ItemOutage = o.InOutage
	next.Remedy = remedyFor(next)
	res := Result{Record: next, Outcome: OutcomeApplied}
	if cur.ItemOutage && !next.ItemOutage && next.State.NeedsAttention() && next.Remedy.Action != ActionWait {
		res.Transition = &Transition{
			Kind: KindRemedyRestored, PreviousState: cur.State, State: next.State,
			ErrorCode: next.ErrorCode, ErrorMessage: next.ErrorMessage, Remedy: next.Remedy, OccurredAt: d.ReceivedAt,
			Freshness: next.Freshness, PreviousFreshness: next.Freshness, FailedDatasets: next.FailedDatasets,
		}
	}
	return res
}

// IsRedelivery decides whether d, whose bytes equal those of an earlier
// delivery received at originalAt, is that delivery sent again, to be
// counted and not applied; cur is the account's record now. The provider
// sends no event id, so identical bytes prove nothing by themselves:
//   - A delivery carrying the account object repeats the original however
//     late: the object's timestamps make every real change's bytes new.
//   - A lean accounts.failed counts an attempt, so applying a retry would
//     count one attempt twice. It is a retry when it comes within window of
//     the original (either way round), applying it would change nothing
//     but the count (and Unconfirmed), and no account object has been applied since the
//     original came (an object that came after it may be the next
//     attempt's, whose accounts.failed has the same bytes when it carries
//     no object). Two real identical failures in a row within the window
//     with nothing between them count as one; their state is the same.
//     And a retry that arrives after its own attempt's object counts
//     again: it cannot be told from the next attempt's failure.
//   - Any other lean delivery is applied again: applying it twice changes
//     nothing that applying it once did not, so suppressing it could only
//     hide a new fact (a reconnection's lean accounts.connected has the same
//     bytes every time).
func IsRedelivery(cur Record, d Delivery, originalAt time.Time, window time.Duration) bool {
	switch {
	case d.Snapshot != nil:
		return true
	case d.Event != EventAccountsFailed || window < 0:
		return false
	}
	// Compared as bounds rather than |a-b| so that far-apart or zero times
	// cannot overflow a Duration.
	within := !d.ReceivedAt.Before(originalAt.Add(-window)) && !d.ReceivedAt.After(originalAt.Add(window))
	if !within || cur.SnapshotReceivedAt.After(originalAt) {
		return false
	}
	// Unconfirmed aside: a failure does not tell the account object, so
	// the lean accounts.updated that accompanied the original may leave it
	// set, and the retry would clear it.
	next := Apply(cur, d).Record
	next.ConsecutiveFailures, next.LastEventType, next.LastEventAt, next.Unconfirmed = cur.ConsecutiveFailures, cur.LastEventType, cur.LastEventAt, cur.Unconfirmed
	return reflect.DeepEqual(next, cur)
}

// olderThan reports whether snapshot time t is known to precede ref. A zero
// time orders nothing, and equal times are not older: a rescan may repeat
// the time of the snapshot it confirms, and both deliveries of one attempt
// carry the same object.
func olderThan(t, ref time.Time) bool {
	return !t.IsZero() && !ref.IsZero() && t.Before(ref)
}

// applySnapshot keeps the newest resource and learns from it what the
// provider knows: it only scans accounts that connected, so a scan time
// proves a past connection even when we missed that delivery.
func applySnapshot(next *Record, s *Snapshot, receivedAt time.Time) {
	t := s.Time()
	if olderThan(t, next.SnapshotAt) {
		// Only accounts.removed gets here (others are stale): keep the
		// newer resource we already hold.
		return
	}
	next.Snapshot = s.Raw
	if s.Item != "" {
		next.Item = s.Item
	}
	if t.After(next.SnapshotAt) {
		next.SnapshotAt = t
	}
	next.SnapshotReceivedAt = receivedAt
	next.Unconfirmed = false
	if !s.ScannedAt.IsZero() {
		next.EverConnected = true
	}
}

// markHealthy records a successful connection.
func markHealthy(next *Record) {
	next.State = StateHealthy
	next.ErrorCode, next.ErrorMessage = "", ""
	next.ConsecutiveFailures = 0
	next.EverConnected = true
	next.Unconfirmed = false
}

// markFailed records a failed login attempt. One without a code, when no
// incident is under way, is a failed login all the same.
func markFailed(next *Record, d Delivery) {
	// A lean failure of an error already known (the attempt's
	// accounts.updated came first) leaves nothing to confirm, so the two
	// deliveries end the same in either order.
	known := next.ErrorCode != "" && (d.ErrorCode == "" || d.ErrorCode == next.ErrorCode)
	code, msg := reportedError(d)
	if code == "" && !next.State.NeedsAttention() {
		next.State = StateAuthFailed
		next.ErrorCode, next.ErrorMessage = "", msg
	} else {
		placeError(next, d, code, msg)
	}
	// Clamped so that a corrupt stored count neither stays negative nor wraps.
	next.ConsecutiveFailures = min(max(next.ConsecutiveFailures, 0), math.MaxInt-1) + 1
	next.Unconfirmed = d.Snapshot == nil && !known
}

// observe applies what accounts.updated (and accounts.added, and any
// accounts.* event we do not know) says about the connection: the
// resource's status, or else an error code delivered in data alone. A
// delivery that says neither only tells that something changed.
func observe(next *Record, d Delivery) Outcome {
	if next.State == StateUnknown {
		// A record starts out connecting: accounts.added, or a first
		// delivery that does not say more.
		next.State = StateConnecting
	}
	var status string
	switch {
	case d.Snapshot != nil:
		status = d.Snapshot.ConnectionStatus
	case d.ErrorCode != "":
		status = ConnectionError
		next.Unconfirmed = false
	case d.Event == EventAccountsAdded:
		return OutcomeApplied
	default:
		next.Unconfirmed = true
		return OutcomeUnconfirmed
	}
	switch status {
	case ConnectionConnected:
		markHealthy(next)
	case ConnectionConnecting:
		// A re-authentication is under way: the old error no longer holds,
		// but it is no success yet, so failures keep counting.
		next.State = StateConnecting
		next.ErrorCode, next.ErrorMessage = "", ""
	case ConnectionError:
		code, msg := reportedError(d)
		placeError(next, d, code, msg)
	default:
		next.Unconfirmed = true
	}
	return OutcomeApplied
}

// reportedError is the error a delivery reports: its account object's
// connection error when the object names one, since both deliveries of an
// attempt carry the same object and its time; else the error in data.
func reportedError(d Delivery) (code, msg string) {
	if s := d.Snapshot; s != nil && s.ConnectionErrorCode != "" {
		msg = s.ConnectionErrorMessage
		if msg == "" && d.ErrorCode == s.ConnectionErrorCode {
			msg = d.ErrorMessage
		}
		return s.ConnectionErrorCode, CapMessage(msg)
	}
	return d.ErrorCode, CapMessage(d.ErrorMessage)
}

// MaxMessageBytes caps what a record and its transitions keep of an error
// message, cut marker excluded. The provider's are a sentence; a longer one
// would be copied into every record, change and stream event of the
// account, while the delivery in the log keeps it whole.
const MaxMessageBytes = 4 << 10

// CapMessage cuts msg to MaxMessageBytes, on a rune boundary, and says so.
// Item reports are capped alike: the provider's details are a sentence.
func CapMessage(msg string) string {
	if len(msg) <= MaxMessageBytes {
		return msg
	}
	n := MaxMessageBytes
	for n > 0 && !utf8.RuneStart(msg[n]) {
		n--
	}
	return fmt.Sprintf("%s… [cut at %d of %d bytes; the delivery in the account's events holds it whole]", msg[:n], n, len(msg))
}

// placeError puts an account whose connection is in error where its code
// says. It never counts a failure: only accounts.failed reports an attempt.
func placeError(next *Record, d Delivery, code, msg string) {
	if code == "" && next.State.NeedsAttention() {
		// An error that names no code says nothing new about the incident
		// under way.
		return
	}
	keepMessage := code == next.ErrorCode && next.ErrorMessage != "" && (msg == "" || d.Snapshot == nil)
	if !keepMessage {
		next.ErrorMessage = msg
	}
	next.ErrorCode = code
	next.State = errorState(code, next.EverConnected)
}

// errorState is the state a connection error with code puts an account in.
// It depends on nothing else, so that the accounts.failed and the
// accounts.updated of one attempt agree in whichever order they come:
//   - an account that never connected has only failed to log in, whoever
//     is at fault (the remedy tells a provider-side failure apart);
//   - a login-attempt code (wrong credentials or MFA answer, a timeout) is
//     a failed login also for an account that had connected: the provider
//     reports it when the user, or its own rescan, logs in and fails;
//   - otherwise a connected account is degraded when the provider's or the
//     platform's side is at fault and disconnected when the user must act.
func errorState(code string, everConnected bool) State {
	category := Classify(code).Category
	switch {
	case !everConnected, category == CategoryLogin:
		return StateAuthFailed
	case category == CategoryProvider:
		return StateDegraded
	default:
		return StateDisconnected
	}
}

// transitionKind names the event, if any, that going from cur to next is for
// subscribers. Within an incident (both states need attention) only a new
// code replacing a known one is news: the same code under another state is
// the second delivery of one attempt, and a code where none was known fills
// in what a lean delivery left out.
func transitionKind(cur, next Record) Kind {
	switch {
	case next.State == StateRemoved:
		return KindRemoved
	case next.State.NeedsAttention():
		if cur.State.NeedsAttention() && (cur.ErrorCode == "" || next.ErrorCode == "" || cur.ErrorCode == next.ErrorCode) {
			return KindUnspecified
		}
		switch next.State {
		case StateAuthFailed:
			return KindAuthFailed
		case StateDisconnected:
			return KindDisconnected
		default:
			return KindDegraded
		}
	case next.State == StateHealthy && cur.State != StateHealthy && cur.IncidentState != StateUnknown:
		return KindRecovered
	}
	return KindUnspecified
}

// remedyFor says what brings the account in r back to health.
func remedyFor(r Record) Remedy {
	if r.ItemOutage && r.State.NeedsAttention() && r.State != StateRemoved {
		return Remedy{Action: ActionWait, Message: "The account's payroll platform (" + r.Item + ") has an outage; wait for it to end, and do not ask the user to reconnect meanwhile."}
	}
	action, msg := remedyText(r.State, r.ErrorCode)
	rem := Remedy{Action: action, Message: msg}
	// Only remedies that happen in Link need its parameters; a new
	// connection has no account to open Link on yet.
	switch action {
	case ActionReconnect, ActionUpdateCredentials, ActionRetryLogin, ActionRetryMFA:
		rem.LinkAccountID, rem.LinkUserID = r.AccountID, r.UserID
	case ActionConnectNewAccount:
		rem.LinkUserID = r.UserID
	}
	return rem
}

// remedyText picks the action and sentence for a state and its error code.
func remedyText(s State, code string) (Action, string) {
	switch s {
	case StateHealthy:
		return ActionNone, "No action needed."
	case StateConnecting:
		return ActionWait, "The provider is connecting the account; wait for the outcome."
	case StateRemoved:
		return ActionConnectNewAccount, "The account was removed; the user must connect it again in Link, which creates a new account."
	}
	info := Classify(code)
	if s == StateAuthFailed {
		// Reconnect is for an account that connected and was logged out;
		// a login that failed is retried.
		switch {
		case info.Category == CategoryProvider:
			return ActionWait, "The login failed on the provider's side, not the user's; wait, then retry the login in Link later."
		case info.Action == ActionReconnect:
			return ActionRetryLogin, retryLoginMessage(code)
		}
	}
	return info.Action, info.Message
}
