// Package health derives a payroll account's health from the provider's webhook
// deliveries. It is pure: no I/O, no clock, no imports from the rest of the
// service. Callers feed it the account's current Record and one decoded
// Delivery and get back the next Record and, when the change matters to a
// subscriber, a Transition.
package health

import "time"

// State is an account's health. The zero value means "no record yet".
type State int

const (
	StateUnknown State = iota
	StateConnecting
	StateHealthy
	StateAuthFailed
	StateDisconnected
	StateDegraded
	StateRemoved
)

var stateNames = [...]string{"UNKNOWN", "CONNECTING", "HEALTHY", "AUTH_FAILED", "DISCONNECTED", "DEGRADED", "REMOVED"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "INVALID"
	}
	return stateNames[s]
}

// NeedsAttention reports whether s is one of the states whose entry is a
// disconnection event: something is wrong with the account.
func (s State) NeedsAttention() bool {
	switch s {
	case StateAuthFailed, StateDisconnected, StateDegraded, StateRemoved:
		return true
	}
	return false
}

// Action is what someone must do to bring an account back to health.
type Action int

const (
	ActionNone Action = iota
	ActionWait
	ActionReconnect
	ActionUpdateCredentials
	ActionRetryLogin
	ActionRetryMFA
	ActionContactPayrollProvider
	ActionConnectNewAccount
)

var actionNames = [...]string{"NONE", "WAIT", "RECONNECT", "UPDATE_CREDENTIALS", "RETRY_LOGIN", "RETRY_MFA", "CONTACT_PAYROLL_PROVIDER", "CONNECT_NEW_ACCOUNT"}

func (a Action) String() string {
	if a < 0 || int(a) >= len(actionNames) {
		return "INVALID"
	}
	return actionNames[a]
}

// Remedy tells the caller what to do, in words and as the parameters to open
// the provider's Link with.
type Remedy struct {
	Action  Action
	Message string
	// LinkAccountID, when set, is the accountId to open Link with so the user
	// lands on that account (Reconnect, new credentials, retry).
	LinkAccountID string
	// LinkUserID is the user to mint a Link user token for; empty when the
	// remedy needs no Link session.
	LinkUserID string
}

// Well-known event names of the accounts.* family.
const (
	EventAccountsAdded     = "accounts.added"
	EventAccountsConnected = "accounts.connected"
	EventAccountsFailed    = "accounts.failed"
	EventAccountsUpdated   = "accounts.updated"
	EventAccountsRemoved   = "accounts.removed"
)

// Connection statuses of the account object.
const (
	ConnectionConnecting = "connecting"
	ConnectionConnected  = "connected"
	ConnectionError      = "error"
)

// Delivery is what the health model needs from one decoded webhook delivery.
type Delivery struct {
	Event     string // e.g. "accounts.failed"; any string, unknown events included
	AccountID string // data.account; empty for non-account events
	UserID    string // data.user
	// ErrorCode and ErrorMessage come from data.error_code/error_message when
	// present (v1-era accounts.failed), else from the snapshot's connection.
	ErrorCode    string
	ErrorMessage string
	Snapshot     *Snapshot // data.resource when the subscription includes it
	ReceivedAt   time.Time // when our service accepted the delivery
	// ItemReport is what an items.updated delivery says of a payroll
	// platform; nil for every other event.
	ItemReport *ItemReport
	// ItemOutage is what an items.outage_began or items.outage_ended
	// entry (ours, see ItemOutage) says; nil for every other event.
	ItemOutage *ItemOutage
	// Staleness is what a freshness.stale entry (ours, see Staleness)
	// says; nil for every other event.
	Staleness *Staleness
}

// Snapshot is the account object carried in data.resource.
type Snapshot struct {
	ConnectionStatus       string    // connecting | connected | error | anything new
	ConnectionErrorCode    string    // empty when null
	ConnectionErrorMessage string    // empty when null
	ConnectionUpdatedAt    time.Time // zero when absent
	UpdatedAt              time.Time // resource.updated_at; zero when absent
	ScannedAt              time.Time // zero when null: never scanned
	Item                   string    // the payroll platform (item) the account is on; empty when absent
	RefreshStatus          string    // ongoing_refresh.status: enabled, disabled, idle, new values; empty when absent
	// Datasets is availability, one entry per dataset it names with a
	// status, in the object's order.
	Datasets []DatasetStatus
	Raw      []byte // the resource JSON as delivered, or its servable form (see webhook.Decode)
}

// Time orders snapshots of one account: the newest of updated_at and
// connection.updated_at. Zero when the snapshot carries neither.
func (s *Snapshot) Time() time.Time {
	if s.ConnectionUpdatedAt.After(s.UpdatedAt) {
		return s.ConnectionUpdatedAt
	}
	return s.UpdatedAt
}

// Record is one account's derived health.
type Record struct {
	AccountID string
	UserID    string
	// Item is the payroll platform the account is on, from the newest
	// account object that named one; empty until one did.
	Item string
	// ItemOutage is set while the account's item is in an outage, as the
	// account's log last said (an items.outage_* entry for it): its
	// remedy is then to wait for the platform.
	ItemOutage   bool
	State        State
	ErrorCode    string
	ErrorMessage string
	Remedy       Remedy
	StateSince   time.Time // when the current state began
	// LastEventType and LastEventAt name the newest accounts.* delivery
	// applied or recorded for the account.
	LastEventType       string
	LastEventAt         time.Time
	ConsecutiveFailures int  // accounts.failed in a row since the last success
	EverConnected       bool // the account was connected at least once
	// Unconfirmed is set when an accounts.updated or accounts.failed arrived
	// without a resource: something changed that only the account object
	// tells in full. Fetching the account from the provider confirms it.
	Unconfirmed bool
	// ConfirmedAt is when the account object was last seen: the arrival of
	// the newest delivery (or fetch) that carried it, applied or not.
	ConfirmedAt time.Time
	// IncidentState is the last state that needed attention while an
	// incident is open (from a disconnection event to the recovery that
	// closes it), StateUnknown when none is: a recovery fires even via
	// CONNECTING, and names the state it recovered from.
	IncidentState State
	SnapshotAt    time.Time // Snapshot.Time() of the applied snapshot
	Snapshot      []byte    // the last applied resource JSON, nil if none
	// SnapshotReceivedAt is when the delivery of the last applied resource
	// was received: an arrival time, like LastEventAt.
	SnapshotReceivedAt time.Time
	// Freshness says whether a HEALTHY account's data still arrives, since
	// FreshnessSince (zero when FreshnessUnknown); see deriveFreshness.
	Freshness      Freshness
	FreshnessSince time.Time
	// FailedDatasets names, sorted, the datasets whose last verdict was
	// sync_failed; RefreshDisabled, whether ongoing refresh was last seen
	// disabled. Both are kept whatever the state.
	FailedDatasets  []string
	RefreshDisabled bool
	// ScannedAt is the newest scanned_at of the applied snapshots; zero
	// when none said one.
	ScannedAt time.Time
	// StaleSince is set while a HEALTHY account is judged stale (by a
	// Staleness entry) and no scan came since.
	StaleSince time.Time
	// FreshAsOf is when the data of a HEALTHY account not judged stale was
	// last known fresh: its last scan, or its return to HEALTHY when later.
	// Zero otherwise. The staleness sweeper reads it.
	FreshAsOf time.Time
}

// Outcome says what a delivery did to the account.
type Outcome int

const (
	// OutcomeApplied: the delivery was applied to the record.
	OutcomeApplied Outcome = iota + 1
	// OutcomeStale: its snapshot is older than the one already applied.
	OutcomeStale
	// OutcomeAfterRemoval: the account was removed; recorded, not applied.
	OutcomeAfterRemoval
	// OutcomeUnconfirmed: accounts.updated without a resource; state kept.
	OutcomeUnconfirmed
	// OutcomeNotAccountEvent: not of the accounts.* family (or no account id);
	// recorded only.
	OutcomeNotAccountEvent
	// OutcomeDuplicate: a byte-identical redelivery; decided by the store,
	// never returned by Apply.
	OutcomeDuplicate
)

var outcomeNames = [...]string{"UNSPECIFIED", "APPLIED", "STALE", "AFTER_REMOVAL", "UNCONFIRMED", "NOT_ACCOUNT_EVENT", "DUPLICATE"}

func (o Outcome) String() string {
	if o < 0 || int(o) >= len(outcomeNames) {
		return "INVALID"
	}
	return outcomeNames[o]
}

// Kind classifies a transition for subscribers.
type Kind int

const (
	KindUnspecified Kind = iota
	KindDisconnected
	KindAuthFailed
	KindDegraded
	KindRemoved
	KindRecovered
	// KindCorrected: a rebuild under newer rules derived another state or
	// error code than the one subscribers were told; PreviousState is the
	// one they were told. Apply never returns it.
	KindCorrected
	// KindRemedyRestored: the outage of the account's item ended and the
	// account still needs attention: its usual remedy (e.g. reconnect)
	// holds again.
	KindRemedyRestored
	// KindItemOutageBegan and KindItemOutageEnded: an item's outage
	// (reported or suspected) began or ended. Item-wide: no account.
	KindItemOutageBegan
	KindItemOutageEnded
	// KindFreshnessLost: a HEALTHY account's data stopped arriving, or
	// stopped for another reason (Transition.Freshness says which).
	KindFreshnessLost
	// KindFreshnessRestored: a HEALTHY account's data is fresh again.
	KindFreshnessRestored
)

var kindNames = [...]string{"UNSPECIFIED", "DISCONNECTED", "AUTH_FAILED", "DEGRADED", "REMOVED", "RECOVERED", "CORRECTED",
	"REMEDY_RESTORED", "ITEM_OUTAGE_BEGAN", "ITEM_OUTAGE_ENDED", "FRESHNESS_LOST", "FRESHNESS_RESTORED"}

func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return "INVALID"
	}
	return kindNames[k]
}

// Transition is a change subscribers must hear about: a disconnection event
// (entering AUTH_FAILED, DISCONNECTED, DEGRADED or REMOVED from a state that
// needed no attention, or a new error code replacing another) or a recovery
// (entering HEALTHY with an open incident).
type Transition struct {
	Kind Kind
	// PreviousState is the state left; for a recovery, the last state that
	// needed attention (not an intermediate CONNECTING).
	PreviousState State
	State         State
	ErrorCode     string
	ErrorMessage  string
	Remedy        Remedy
	OccurredAt    time.Time
	// Freshness and FailedDatasets are the account's after the change;
	// PreviousFreshness, before it (freshness events).
	Freshness         Freshness
	PreviousFreshness Freshness
	FailedDatasets    []string
}
