package simtest

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// Gap is the time between two arrivals in a replay: the service stamps
// receipt itself, so arrivals are what orders receipt times.
const Gap = 2 * time.Second

// Store models what server/store's commit does with a delivery (see
// store.Apply): a delivery that carries the account object, or an
// accounts.failed, whose bytes equal those of an entry already in the log
// is looked up, and when health.IsRedelivery says so, counted and not
// applied; anything else is applied with health.Apply and logged. Only one
// account's deliveries go through it.
type Store struct {
	Window time.Duration // the redelivery window (store.DefaultRedeliveryWindow)
	Record health.Record
	// newest receipt time of a logged entry, by body hash: duplicates are
	// counted on their original, not logged.
	logged map[[32]byte]time.Time
}

// NewStore returns an empty store with redelivery window w.
func NewStore(w time.Duration) *Store {
	return &Store{Window: w, logged: map[[32]byte]time.Time{}}
}

// Commit decodes and commits one delivery received at at.
func (s *Store) Commit(body []byte, at time.Time) (health.Result, error) {
	env, err := webhook.Decode(body, at)
	if err != nil {
		return health.Result{}, err
	}
	return s.commit(env.Delivery, sha256.Sum256(body)), nil
}

// commit commits d, whose body hashes to h.
func (s *Store) commit(d health.Delivery, h [32]byte) health.Result {
	if d.Snapshot != nil || d.Event == health.EventAccountsFailed {
		if orig, found := s.logged[h]; found && health.IsRedelivery(s.Record, d, orig, s.Window) {
			return health.Result{Record: s.Record, Outcome: health.OutcomeDuplicate}
		}
	}
	res := health.Apply(s.Record, d)
	s.logged[h] = d.ReceivedAt
	if res.Record.State != health.StateUnknown {
		s.Record = res.Record
	}
	return res
}

// Replayed is one arrival and what it did.
type Replayed struct {
	Arrival
	Delivery   Delivery
	ReceivedAt time.Time
	Outcome    health.Outcome
	Transition *health.Transition
	Record     health.Record // after it
}

// Replay is an arrangement of a history's deliveries, committed.
type Replay struct {
	History     *History
	Mode        Mode
	Arrangement Arrangement
	Start       time.Time
	Arrivals    []Replayed
}

// Run commits the arrivals of a through a new store, receipt times Gap
// apart from start.
func Run(h *History, m Mode, a Arrangement, start time.Time, window time.Duration) *Replay {
	ds := h.Deliveries(m)
	s := NewStore(window)
	rp := &Replay{History: h, Mode: m, Arrangement: a, Start: start, Arrivals: make([]Replayed, 0, len(a.Arrivals))}
	for pos, arr := range a.Arrivals {
		d := ds[arr.Index]
		at := start.Add(time.Duration(pos) * Gap)
		dec := d.Decoded
		dec.ReceivedAt = at
		res := s.commit(dec, d.Hash)
		rp.Arrivals = append(rp.Arrivals, Replayed{Arrival: arr, Delivery: d, ReceivedAt: at,
			Outcome: res.Outcome, Transition: res.Transition, Record: s.Record})
	}
	return rp
}

// Final is the record after the last arrival.
func (rp *Replay) Final() health.Record {
	if len(rp.Arrivals) == 0 {
		return health.Record{}
	}
	return rp.Arrivals[len(rp.Arrivals)-1].Record
}

// Transitions are the transitions committed, in order: what the change log,
// and so StreamDisconnections, carries for the account.
func (rp *Replay) Transitions() []health.Transition {
	var out []health.Transition
	for _, a := range rp.Arrivals {
		if a.Transition != nil {
			out = append(out, *a.Transition)
		}
	}
	return out
}

// ArrivalAt is the arrival received at t, if any.
func (rp *Replay) ArrivalAt(t time.Time) (Replayed, bool) {
	d := t.Sub(rp.Start)
	if t.IsZero() || d < 0 || d%Gap != 0 || int(d/Gap) >= len(rp.Arrivals) {
		return Replayed{}, false
	}
	return rp.Arrivals[d/Gap], true
}

// String lists the arrivals for a failure report: enough to replay them by
// hand.
func (rp *Replay) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, %s deliveries, %s; account %s; steps:", rp.History.Seed, rp.Mode, rp.Arrangement.Name, rp.History.Account)
	for i, s := range rp.History.Steps {
		fmt.Fprintf(&b, " %d:%s", i, s)
	}
	b.WriteString("\n")
	for pos, a := range rp.Arrivals {
		d := a.Delivery
		code := d.Code
		if code == "" {
			code = "-"
		}
		snap := "no object"
		if d.Decoded.Snapshot != nil {
			snap = "object at " + d.At.Format("15:04:05.000000")
		}
		copied := ""
		if a.Copy {
			copied = " (copy)"
		}
		fmt.Fprintf(&b, "  %2d. step %d %-18s %-24s %s%s -> %s %s", pos, d.Step, d.Event, code, snap, copied, a.Outcome, a.Record.State)
		if a.Record.ErrorCode != "" {
			fmt.Fprintf(&b, "(%s)", a.Record.ErrorCode)
		}
		fmt.Fprintf(&b, " failures=%d", a.Record.ConsecutiveFailures)
		if t := a.Transition; t != nil {
			fmt.Fprintf(&b, "  EVENT %s %s->%s %q", t.Kind, t.PreviousState, t.State, t.ErrorCode)
		}
		b.WriteString("\n")
	}
	return b.String()
}
