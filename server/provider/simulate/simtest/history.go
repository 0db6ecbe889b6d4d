// Package simtest is a harness for property tests of the health rules: it
// builds random but realistic account histories with the simulator's
// builders, arranges their deliveries as an unreliable network would
// (swapped, late, repeated), replays them through a model of the store's
// commit rules, and says what a history must end in according to an oracle
// that knows each step from the simulator's side. The pure tests of
// server/health and the end-to-end tests of cmd/accounthealth share it, so
// both check the same histories against the same expectations.
//
// It is test support: nothing in the service imports it.
package simtest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// Op is one change of an account, as the simulator's builders make it.
type Op int

const (
	OpAdd        Op = iota // Add: credentials submitted
	OpConnect              // Connect: a login or re-login succeeded
	OpFail                 // Fail(code): a login or re-login attempt failed
	OpDisconnect           // Disconnect(code): the connection went into error without a login
	OpRescan               // Rescan: a periodic scan of a connected account
	OpRecover              // Recover: the platform or provider is back
	OpReauth               // a re-authentication starts: the object's connection is connecting again
	OpRemove               // Remove: revoked or deleted
)

var opNames = [...]string{"Add", "Connect", "Fail", "Disconnect", "Rescan", "Recover", "Reauth", "Remove"}

func (o Op) String() string { return opNames[o] }

// Mode says what the deliveries of a history carry.
type Mode int

const (
	// Full: every delivery carries the account object (include_resource).
	Full Mode = iota
	// Lean: no account object; accounts.failed still carries its error
	// code in data, as the simulator (and v1-era docs) send it.
	Lean
	// Bare: no account object, and accounts.failed without error_code or
	// error_message in data, as v2 deliveries may come.
	Bare
	// Dual: two subscriptions, one to "*" (which cannot include the
	// object) and one to accounts.updated with include_resource: every
	// event comes lean (accounts.failed bare), and every accounts.updated
	// comes once more with the object, right after.
	Dual
)

// Modes lists every mode.
var Modes = []Mode{Full, Lean, Bare, Dual}

var modeNames = [...]string{"full", "lean", "bare", "dual"}

func (m Mode) String() string { return modeNames[m] }

// Timed reports whether every delivery of the mode carries the account
// object, and so timestamps.
func (m Mode) Timed() bool { return m == Full }

// Objects reports whether the mode's accounts.updated deliveries carry the
// account object, so that the service sees every change of its connection.
func (m Mode) Objects() bool { return m == Full || m == Dual }

// Step is one change of the account.
type Step struct {
	Op   Op
	Code string // for OpFail and OpDisconnect
	// AfterRemoval marks a change the simulator made to an account already
	// removed: the provider should send nothing more, the service must not
	// care if it does.
	AfterRemoval bool
}

func (s Step) String() string {
	name := s.Op.String()
	if s.Code != "" {
		name += "(" + s.Code + ")"
	}
	if s.AfterRemoval {
		name += " after removal"
	}
	return name
}

// Delivery is one delivery of a history, in the provider's order.
type Delivery struct {
	Event string
	Body  []byte // the exact bytes to send
	Step  int    // the index in History.Steps of the change that caused it
	// At is when the provider made the change: the account object's time
	// (resource updated_at / connection.updated_at), the same in every mode
	// although only Full deliveries carry it.
	At time.Time
	// Code is the error code the delivery carries in data or in its
	// object (empty for Bare and for deliveries without one); for reports.
	Code string
	// Decoded is Body decoded (webhook.Decode), its ReceivedAt zero; Hash
	// the body's SHA-256. Computed once: replays only set the receipt time.
	Decoded health.Delivery
	Hash    [32]byte
}

// newDelivery describes body, a delivery of step.
func newDelivery(event string, body []byte, step int) Delivery {
	env, err := webhook.Decode(body, time.Time{})
	if err != nil {
		panic(fmt.Sprintf("simtest: the simulator's delivery does not decode: %v", err))
	}
	return Delivery{Event: event, Body: body, Step: step, Code: env.Delivery.ErrorCode, Decoded: env.Delivery, Hash: sha256.Sum256(body)}
}

// History is one account's life: its steps and the deliveries each mode
// gets for them.
type History struct {
	Seed          int64
	Account, User string
	Steps         []Step
	deliveries    [4][]Delivery // by Mode
	lastCode      string        // the connection's error code, while generating
}

// Deliveries are the history's deliveries for mode m, in the order the
// provider sent them.
func (h *History) Deliveries(m Mode) []Delivery { return h.deliveries[m] }

// Prefix is the history of its first n steps, for shrinking a failure.
func (h *History) Prefix(n int) *History {
	p := &History{Seed: h.Seed, Account: h.Account, User: h.User, Steps: h.Steps[:n:n]}
	for m := range h.deliveries {
		i := slices.IndexFunc(h.deliveries[m], func(d Delivery) bool { return d.Step >= n })
		if i < 0 {
			i = len(h.deliveries[m])
		}
		p.deliveries[m] = h.deliveries[m][:i:i]
	}
	return p
}

// Without is the history without step i and its deliveries, for shrinking
// a failure: no longer one the provider would send, but still deliveries
// the service must handle.
func (h *History) Without(i int) *History {
	w := &History{Seed: h.Seed, Account: h.Account, User: h.User, Steps: slices.Delete(slices.Clone(h.Steps), i, i+1)}
	for m := range h.deliveries {
		for _, d := range h.deliveries[m] {
			switch {
			case d.Step == i:
				continue
			case d.Step > i:
				d.Step--
			}
			w.deliveries[m] = append(w.deliveries[m], d)
		}
	}
	return w
}

// Plausible reports whether the provider could have sent steps: each one
// can follow the ones before it, as Generate's walk lets them. Shrinking
// keeps histories plausible so that the oracle still applies.
func Plausible(steps []Step) bool {
	st, ever := stNew, false
	for _, s := range steps {
		ok := false
		switch st {
		case stNew:
			ok = s.Op == OpAdd
		case stConnecting:
			ok = s.Op == OpConnect || s.Op == OpFail
		case stConnected:
			ok = s.Op == OpRescan || s.Op == OpDisconnect || s.Op == OpFail || s.Op == OpRemove
		case stOutage:
			switch s.Op {
			case OpRecover:
				ok = ever
			case OpDisconnect:
				ok = ever && slices.Contains(OutageCodes, s.Code)
			case OpConnect, OpFail, OpReauth, OpRemove:
				ok = true
			}
		case stUserError:
			ok = s.Op == OpConnect || s.Op == OpFail || s.Op == OpReauth || s.Op == OpRemove
		case stRemoved:
			ok = s.AfterRemoval
		}
		if !ok || (s.AfterRemoval && st != stRemoved) {
			return false
		}
		st, ever = next(st, ever, s)
	}
	return true
}

// next is the walk's status after step s.
func next(st status, ever bool, s Step) (status, bool) {
	switch {
	case s.AfterRemoval, s.Op == OpRemove:
		return stRemoved, ever
	case s.Op == OpAdd, s.Op == OpReauth:
		return stConnecting, ever
	case s.Op == OpConnect, s.Op == OpRecover:
		return stConnected, true
	case s.Op == OpFail, s.Op == OpDisconnect:
		if slices.Contains(OutageCodes, s.Code) {
			return stOutage, ever
		}
		return stUserError, ever
	}
	return st, ever
}

// WithAccount is the same history for another account id: every
// delivery's bytes with h.Account replaced by id, so that one history can
// be delivered to one service more than once.
func (h *History) WithAccount(id string) *History {
	w := &History{Seed: h.Seed, Account: id, User: h.User, Steps: h.Steps}
	for m := range h.deliveries {
		for _, d := range h.deliveries[m] {
			nd := newDelivery(d.Event, bytes.ReplaceAll(d.Body, []byte(h.Account), []byte(id)), d.Step)
			nd.At = d.At
			w.deliveries[m] = append(w.deliveries[m], nd)
		}
	}
	return w
}
