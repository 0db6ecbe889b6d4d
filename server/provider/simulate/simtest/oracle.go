package simtest

import (
	"slices"

	"github.com/accounthealth/accounthealth/server/health"
)

// Expectation is what the account's record must say after a step, and the
// events the step must cause, according to the oracle.
type Expectation struct {
	State    health.State
	Code     string
	Action   health.Action
	Failures int // accounts.failed in a row since the last success
	Ever     bool
	Events   []Event
}

// Event is the part of a transition the oracle predicts.
type Event struct {
	Kind     health.Kind
	From, To health.State
	Code     string
}

// EventOf is the predicted part of t.
func EventOf(t health.Transition) Event {
	return Event{Kind: t.Kind, From: t.PreviousState, To: t.State, Code: t.ErrorCode}
}

// Expect tells, step by step, what an in-order delivery of h's deliveries
// in mode m must end in. It knows each step from the simulator's side
// (which change the provider made, with which code) and reads only what
// the mode's deliveries let the service see: without the account object a
// disconnection, a recovery or a re-authentication's start is invisible,
// and Bare failures carry no code. It follows the health states of
// README.md and the rules, not server/health's code:
//   - A first login that fails, whatever the code, is AUTH_FAILED; so is a
//     failed re-login with a login code (wrong password or MFA answer, MFA
//     timeout). A re-login of an account that connected, failing on the
//     provider's side, is DEGRADED.
//   - A disconnection is DISCONNECTED for auth_required and
//     expired_credentials, DEGRADED for outages.
//   - Connect and Recover are HEALTHY; a re-authentication's start is
//     CONNECTING and keeps the incident open.
//   - An event fires on entering a state that needs attention from one
//     that does not, or on a new code replacing another within an
//     incident; a recovery names the last state that needed attention;
//     removal is terminal and nothing after it is an event.
//   - A failure without a code keeps what is known of an incident under
//     way.
//   - Without timestamps, identical bytes of an accounts.failed are the
//     provider's retry (not counted again) only when nothing about the
//     account changed since the first: same state, same code, and no
//     account object came since (in Dual one always has). Receipt times of
//     a replay all lie within the redelivery window.
func Expect(h *History, m Mode) []Expectation {
	o := oracle{mode: m, lastFailed: map[string]int{}}
	out := make([]Expectation, len(h.Steps))
	for i, s := range h.Steps {
		o.events = nil
		o.moment++
		o.step(i, s)
		out[i] = Expectation{State: o.state, Code: o.code, Action: remedy(o.state, o.code), Failures: o.failures, Ever: o.ever, Events: o.events}
	}
	return out
}

type oracle struct {
	mode     Mode
	state    health.State
	code     string
	incident health.State // the last state that needed attention, while one is open
	ever     bool
	failures int
	events   []Event
	// For lean failures: when (by moment, one per delivery that tells
	// something) the last applied accounts.failed by its bytes (its code;
	// Bare and Dual: all alike) was applied, and the last state change.
	lastFailed  map[string]int
	moment      int
	stateChange int
}

func (o *oracle) step(i int, s Step) {
	if o.state == health.StateRemoved {
		return
	}
	visible := o.mode.Objects()
	switch s.Op {
	case OpAdd:
		o.to(i, health.StateConnecting, "")
	case OpConnect:
		o.failures, o.ever = 0, true
		o.to(i, health.StateHealthy, "")
	case OpRecover:
		if visible {
			o.failures = 0
			o.to(i, health.StateHealthy, "")
		}
	case OpReauth:
		if visible {
			o.to(i, health.StateConnecting, "")
		}
	case OpDisconnect:
		if visible {
			state := health.StateDisconnected
			if slices.Contains(OutageCodes, s.Code) {
				state = health.StateDegraded
			}
			o.to(i, state, s.Code)
		}
	case OpFail:
		inFailed := s.Code // the code accounts.failed carries
		if o.mode == Bare || o.mode == Dual {
			inFailed = ""
		}
		counted := true
		o.moment++
		if o.mode == Lean || o.mode == Bare {
			// Identical bytes are the provider's retry when applying them
			// would change nothing but the count. (In Dual, the account
			// object of the previous attempt came since: always counted.)
			last, ok := o.lastFailed[inFailed]
			unchanged := inFailed == "" && o.state.NeedsAttention() || inFailed != "" && o.code == inFailed
			counted = !ok || o.stateChange > last || !unchanged
		}
		if counted {
			o.failures++
			o.fail(i, inFailed)
			o.lastFailed[inFailed] = o.moment
		}
		if o.mode == Dual {
			o.moment++
			o.fail(i, s.Code) // its accounts.updated with the object
		}
	case OpRemove:
		o.to(i, health.StateRemoved, "")
	}
}

// fail applies a failure's code, empty when the delivery names none.
func (o *oracle) fail(i int, code string) {
	switch {
	case code == "" && o.state.NeedsAttention():
		// Says nothing new about the incident under way.
	case code == "":
		o.to(i, health.StateAuthFailed, "")
	case !o.ever || slices.Contains(LoginCodes, code):
		o.to(i, health.StateAuthFailed, code)
	case slices.Contains(OutageCodes, code):
		o.to(i, health.StateDegraded, code)
	default:
		o.to(i, health.StateDisconnected, code)
	}
}

// to moves the account into state with code at step i.
func (o *oracle) to(i int, state health.State, code string) {
	from, fromCode := o.state, o.code
	if state != from {
		o.stateChange = o.moment
	}
	o.state, o.code = state, code
	switch {
	case state == health.StateRemoved:
		o.events = append(o.events, Event{health.KindRemoved, from, state, ""})
		o.incident = health.StateUnknown
	case state.NeedsAttention():
		if !from.NeedsAttention() || (code != "" && fromCode != "" && code != fromCode) {
			o.events = append(o.events, Event{kindOf(state), from, state, code})
		}
		o.incident = state
	case state == health.StateHealthy:
		if o.incident != health.StateUnknown {
			o.events = append(o.events, Event{health.KindRecovered, o.incident, state, ""})
		}
		o.incident = health.StateUnknown
	}
}

func kindOf(s health.State) health.Kind {
	switch s {
	case health.StateAuthFailed:
		return health.KindAuthFailed
	case health.StateDisconnected:
		return health.KindDisconnected
	case health.StateDegraded:
		return health.KindDegraded
	}
	return health.KindRemoved
}

// remedy is the action docs/provider.md#remedies and the issue give for a
// state and code: a failed login is retried (its MFA for MFA codes), never
// reconnected; a provider-side failure is waited out.
func remedy(s health.State, code string) health.Action {
	switch s {
	case health.StateHealthy:
		return health.ActionNone
	case health.StateConnecting, health.StateDegraded:
		return health.ActionWait
	case health.StateRemoved:
		return health.ActionConnectNewAccount
	case health.StateDisconnected:
		if code == "expired_credentials" {
			return health.ActionUpdateCredentials
		}
		return health.ActionReconnect
	case health.StateAuthFailed:
		switch {
		case slices.Contains(OutageCodes, code):
			return health.ActionWait
		case code == "invalid_mfa", code == "mfa_timeout":
			return health.ActionRetryMFA
		}
		return health.ActionRetryLogin
	}
	return health.ActionNone
}
