package health

import (
	"math"
	"strings"
	"time"
)

// accountsPrefix marks the event family that carries account health.
const accountsPrefix = "accounts."

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
// Beyond the event rules of DOMAIN.md §2 and §5 it decides that:
//   - accounts.connected, accounts.failed and accounts.removed, and an error
//     code without a resource, clear Unconfirmed like a snapshot does: they
//     tell the state, so the record no longer lags behind.
//   - accounts.added is read like accounts.updated when it carries a
//     resource, also for an account seen first: the resource is the account
//     as it is now, which may be more than "connecting".
//   - A resource with an unknown connection status is applied (OutcomeApplied)
//     but leaves the state alone and marks the record Unconfirmed: fetching
//     the account again would not tell more.
//   - The error snapshot accompanying an accounts.failed (same code, record
//     AUTH_FAILED) keeps AUTH_FAILED whatever the code's category, so one
//     failed attempt is one event.
//   - Removal closes OpenIncident: a removed account has nothing to recover.
func Apply(cur Record, d Delivery) Result {
	if !strings.HasPrefix(d.Event, accountsPrefix) || d.AccountID == "" {
		return Result{Record: cur, Outcome: OutcomeNotAccountEvent}
	}
	if cur.State == StateRemoved {
		return Result{Record: cur, Outcome: OutcomeAfterRemoval}
	}

	next := cur
	next.LastEventType, next.LastEventAt = d.Event, d.ReceivedAt
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
		applySnapshot(&next, d.Snapshot)
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
		next.State = StateAuthFailed
		next.ErrorCode, next.ErrorMessage = d.ErrorCode, d.ErrorMessage
		// Clamped so that a corrupt stored count neither stays negative nor wraps.
		next.ConsecutiveFailures = min(max(next.ConsecutiveFailures, 0), math.MaxInt-1) + 1
		next.Unconfirmed = false
	default:
		outcome = observe(&next, d)
	}

	if next.State != cur.State {
		next.StateSince = d.ReceivedAt
	}
	next.Remedy = remedyFor(next)
	kind := transitionKind(cur, next)
	switch {
	case next.State == StateHealthy, next.State == StateRemoved:
		next.OpenIncident = false
	case kind != KindUnspecified:
		next.OpenIncident = true
	}
	res := Result{Record: next, Outcome: outcome}
	if kind != KindUnspecified {
		res.Transition = &Transition{
			Kind:          kind,
			PreviousState: cur.State,
			State:         next.State,
			ErrorCode:     next.ErrorCode,
			ErrorMessage:  next.ErrorMessage,
			Remedy:        next.Remedy,
			OccurredAt:    d.ReceivedAt,
		}
	}
	return res
}

// olderThan reports whether snapshot time t is known to precede ref. A zero
// time orders nothing, and equal times are not older: a rescan may repeat
// the time of the snapshot it confirms.
func olderThan(t, ref time.Time) bool {
	return !t.IsZero() && !ref.IsZero() && t.Before(ref)
}

// applySnapshot keeps the newest resource and learns from it what the
// provider knows: it only scans accounts that connected, so a scan time
// proves a past connection even when we missed that delivery.
func applySnapshot(next *Record, s *Snapshot) {
	t := s.Time()
	if olderThan(t, next.SnapshotAt) {
		// Only accounts.removed gets here (others are stale): keep the
		// newer resource we already hold.
		return
	}
	next.Snapshot = s.Raw
	if t.After(next.SnapshotAt) {
		next.SnapshotAt = t
	}
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
		applyError(next, d.ErrorCode, d.ErrorMessage)
	default:
		next.Unconfirmed = true
	}
	return OutcomeApplied
}

// applyError places an account whose connection is in error. It never
// counts a failure: only accounts.failed reports an attempt.
func applyError(next *Record, code, msg string) {
	category := Classify(code).Category
	switch {
	case next.State == StateAuthFailed && (code == next.ErrorCode || category == CategoryLogin):
		// The snapshot that accompanies an accounts.failed: the failed
		// attempt is already recorded.
	case category == CategoryProvider:
		next.State = StateDegraded
	case next.EverConnected:
		next.State = StateDisconnected
	default:
		next.State = StateAuthFailed
	}
	next.ErrorCode, next.ErrorMessage = code, msg
}

// transitionKind names the event, if any, that going from cur to next is for
// subscribers.
func transitionKind(cur, next Record) Kind {
	if next.State.NeedsAttention() && (next.State != cur.State || next.ErrorCode != cur.ErrorCode) {
		switch next.State {
		case StateAuthFailed:
			return KindAuthFailed
		case StateDisconnected:
			return KindDisconnected
		case StateDegraded:
			return KindDegraded
		default:
			return KindRemoved
		}
	}
	if next.State == StateHealthy && cur.State != StateHealthy && cur.OpenIncident {
		return KindRecovered
	}
	return KindUnspecified
}

// remedyFor says what brings the account in r back to health.
func remedyFor(r Record) Remedy {
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
	switch {
	case s == StateAuthFailed && info.Category == CategoryProvider:
		return ActionWait, "The login failed on the provider's side, not the user's; wait, then retry the login in Link later."
	case s == StateDisconnected && (code == "invalid_credentials" || code == "invalid_auth"):
		// Found on a scan of an account that had connected: the password
		// was changed at the payroll platform.
		return ActionUpdateCredentials, "The payroll platform no longer accepts the saved credentials; enter the current ones in Link."
	}
	return info.Action, info.Message
}
