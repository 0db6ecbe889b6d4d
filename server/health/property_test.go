package health_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/provider/simulate/simtest"
	"github.com/accounthealth/accounthealth/server/store"
)

var (
	propertyHistories = flag.Int("health.histories", 2000, "random account histories TestPropertyHistories checks")
	propertySeed      = flag.Int64("health.seed", 0, "seed of TestPropertyHistories' first history; 0: from the clock")
)

// propertySteps bounds a history's length: long enough for an incident, a
// retry and a recovery or two, short enough that a replay, every delivery
// doubled, stays within the redelivery window (simtest.Expect relies on it).
const propertySteps = 14

// replayStart is the receipt time of a replay's first arrival. It has no
// relation to the simulator's clock, as our receipt times have none to the
// provider's.
var replayStart = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// TestPropertyHistories generates random, realistic account histories with
// the simulator's builders (first login ok or failed, MFA timeouts,
// disconnections, expiries, outages, re-authentications, reconnections,
// removal and deliveries after it), in each mode (with the account object;
// lean; lean with failures that name no code; two subscriptions, lean "*"
// and accounts.updated with the object), and delivers each through a model
// of the store's commit rules (simtest.Store):
//   - in order, checked step by step against simtest.Expect, an oracle
//     that knows each step from the simulator's side; lean deliveries,
//     where they tell the state, must also end where the full ones do;
//   - with each attempt's two deliveries swapped, every delivery doubled
//     at once, doubled with the copy 30-45 s late (the provider's retry),
//     and, with the object, doubled up to three deliveries late: the
//     record and the events must be the in-order ones, each event once;
//   - with deliveries 30-45 s late (a retry's delay: past an attempt's
//     pair or a login's scan, not past the next attempt), and, with the
//     object, displaced past up to three deliveries: the record must be
//     the in-order one but for what the order legitimately decides (see
//     checkDisorder), and no attempt may cause two events.
//
// In every arrangement, nothing after the removal changes the record or
// causes an event. A failure prints the seed and the shortest prefix of the
// history that still fails, delivery by delivery.
func TestPropertyHistories(t *testing.T) {
	seed := *propertySeed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000_000
	}
	t.Logf("seed %d: rerun with go test ./server/health -run TestPropertyHistories -health.seed=%d", seed, seed)
	n := *propertyHistories
	if raceDetector && !flagSet("health.histories") {
		// The same checks, fewer histories: the race detector slows them
		// about fifteen times, and CI runs the whole suite under it.
		n = racyHistories
	}

	// Histories are independent: workers check them, this goroutine reports.
	type checked struct {
		h        *simtest.History
		problems []problem // the first of each class
	}
	results := make([]checked, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				h := simtest.Generate(seed+int64(i), propertySteps)
				c := checked{h: h}
				for _, m := range simtest.Modes {
					seen := map[string]bool{}
					for _, p := range checkHistory(h, m) {
						if !seen[p.class] {
							seen[p.class] = true
							c.problems = append(c.problems, p)
						}
					}
				}
				results[i] = c
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()

	var st stats
	classes := map[string]int{} // failing histories by class of problem
	var order []string
	for _, c := range results {
		st.count(c.h)
		for _, p := range c.problems {
			if classes[p.class]++; classes[p.class] == 1 {
				order = append(order, p.class)
				p = shrink(c.h, p)
				t.Errorf("history seed %d: %s\nshortest failing history: %s", c.h.Seed, p.msg, p.replay)
			}
		}
	}
	for _, class := range order {
		t.Errorf("%d of %d histories: %s", classes[class], n, class)
	}
	t.Logf("%d histories, %d steps, %d deliveries per mode; steps by op: %s", n, st.steps, st.deliveries, st.ops())
}

// racyHistories is how many histories TestPropertyHistories checks under
// the race detector, unless -health.histories says.
const racyHistories = 500

// flagSet reports whether the named flag was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// problem is one broken promise and the replay that shows it.
type problem struct {
	class  string // mode, arrangement and check
	msg    string
	replay *simtest.Replay
}

// shrink finds a short history that still breaks a promise of the class
// of first in mode m: the shortest such prefix of h, then without every
// step it can do without.
func shrink(h *simtest.History, first problem) problem {
	m := first.replay.Mode
	best := first
	fails := func(h *simtest.History) (problem, bool) {
		for _, p := range checkHistory(h, m) {
			if p.class == first.class {
				return p, true
			}
		}
		return problem{}, false
	}
	for n := 1; n < len(h.Steps); n++ {
		if p, ok := fails(h.Prefix(n)); ok {
			h, best = h.Prefix(n), p
			break
		}
	}
	for i := len(h.Steps) - 1; i >= 0 && len(h.Steps) > 1; i-- {
		if w := h.Without(i); simtest.Plausible(w.Steps) {
			if p, ok := fails(w); ok {
				h, best = w, p
			}
		}
	}
	return best
}

// arrangementRand is the randomness of one kind of arrangement of h, the
// same for h's prefixes.
func arrangementRand(h *simtest.History, m simtest.Mode, kind uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(h.Seed), uint64(m)<<8|kind))
}

// checkHistory checks every promise for h in mode m.
func checkHistory(h *simtest.History, m simtest.Mode) []problem {
	ds := h.Deliveries(m)
	if time.Duration(2*len(ds))*simtest.Gap > store.DefaultRedeliveryWindow {
		// simtest.Expect counts on it.
		panic(fmt.Sprintf("history seed %d: a doubled replay outlasts the redelivery window", h.Seed))
	}
	run := func(a simtest.Arrangement) *simtest.Replay {
		return simtest.Run(h, m, a, replayStart, store.DefaultRedeliveryWindow)
	}
	var ps []problem
	fail := func(rp *simtest.Replay, class, format string, args ...any) {
		class = fmt.Sprintf("%s deliveries, %s: %s", m, rp.Arrangement.Name, class)
		ps = append(ps, problem{class, class + ": " + fmt.Sprintf(format, args...), rp})
	}

	base := run(simtest.InOrder(ds))
	checkOracle(base, simtest.Expect(h, m), fail)
	if m == simtest.Lean || m == simtest.Bare {
		checkLeanAgrees(base, run(simtest.InOrder(h.Deliveries(simtest.Full))), fail)
	}
	exact := []simtest.Arrangement{
		simtest.PairSwapped(h, ds),
		simtest.Doubled(ds),
		simtest.DoubledLate(ds, arrangementRand(h, m, 1)),
	}
	if m.Timed() {
		exact = append(exact, simtest.DoubledWide(ds, arrangementRand(h, m, 3)))
	}
	checkRemovalTerminal(base, fail)
	for _, a := range exact {
		rp := run(a)
		checkRemovalTerminal(rp, fail)
		checkExact(base, rp, fail)
	}
	delayed := run(simtest.Delayed(ds, arrangementRand(h, m, 2)))
	checkRemovalTerminal(delayed, fail)
	checkDisorder(base, delayed, fail, false)
	if m.Timed() {
		displaced := run(simtest.Displaced(ds, arrangementRand(h, m, 4)))
		checkRemovalTerminal(displaced, fail)
		checkDisorder(base, displaced, fail, true)
	}
	return ps
}

// failFunc reports a broken promise of a class (which check) shown by rp.
type failFunc func(rp *simtest.Replay, class, format string, args ...any)

// checkOracle compares the in-order replay with the oracle after every
// step: state, code, remedy, failures in a row, ever connected, and the
// events of the step.
func checkOracle(rp *simtest.Replay, want []simtest.Expectation, fail failFunc) {
	var events []simtest.Event
	for i, a := range rp.Arrivals {
		if a.Transition != nil {
			events = append(events, simtest.EventOf(*a.Transition))
		}
		step := a.Delivery.Step
		if i+1 < len(rp.Arrivals) && rp.Arrivals[i+1].Delivery.Step == step {
			continue
		}
		r, w := a.Record, want[step]
		got := simtest.Expectation{State: r.State, Code: r.ErrorCode, Action: r.Remedy.Action, Failures: r.ConsecutiveFailures, Ever: r.EverConnected, Events: events}
		if !reflect.DeepEqual(got, w) {
			fail(rp, "oracle", "after step %d (%s):\n got %s\nwant %s", step, rp.History.Steps[step], describe(got), describe(w))
			return
		}
		events = nil
	}
}

func describe(e simtest.Expectation) string {
	s := fmt.Sprintf("%s %q remedy %s, %d failures, ever connected %v, events [", e.State, e.Code, e.Action, e.Failures, e.Ever)
	for i, ev := range e.Events {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %s->%s %q", ev.Kind, ev.From, ev.To, ev.Code)
	}
	return s + "]"
}

// checkLeanAgrees: after a step whose state lean deliveries tell (a login's
// outcome, a removal), the lean replay's state is the full one's. With a
// code in data it has the same code; without one (Bare) it knows only
// that the account needs attention, and an incident it knew of stays.
func checkLeanAgrees(lean, full *simtest.Replay, fail failFunc) {
	h := lean.History
	fullAfter := lastRecordOfSteps(full)
	leanAfter := lastRecordOfSteps(lean)
	decided := false // the state was last set by a step lean deliveries tell
	for i, s := range h.Steps {
		switch s.Op {
		case simtest.OpAdd, simtest.OpConnect, simtest.OpFail, simtest.OpRemove:
			decided = true
		case simtest.OpDisconnect, simtest.OpRecover, simtest.OpReauth:
			decided = false
		}
		if s.AfterRemoval {
			decided = true
		}
		l, f := leanAfter[i], fullAfter[i]
		switch {
		case !decided:
		case lean.Mode == simtest.Lean && (l.State != f.State || l.ErrorCode != f.ErrorCode):
			fail(lean, "lean agrees", "after step %d (%s): lean %s %q, full %s %q", i, s, l.State, l.ErrorCode, f.State, f.ErrorCode)
			return
		case l.State.NeedsAttention() != f.State.NeedsAttention():
			fail(lean, "lean agrees", "after step %d (%s): bare %s, full %s", i, s, l.State, f.State)
			return
		}
	}
}

// lastRecordOfSteps is the record after each step of an in-order replay.
func lastRecordOfSteps(rp *simtest.Replay) []health.Record {
	out := make([]health.Record, len(rp.History.Steps))
	for _, a := range rp.Arrivals {
		out[a.Delivery.Step] = a.Record
	}
	return out
}

// checkRemovalTerminal: once a removal is applied, no arrival changes the
// record or causes an event.
func checkRemovalTerminal(rp *simtest.Replay, fail failFunc) {
	for i, a := range rp.Arrivals {
		if a.Record.State != health.StateRemoved {
			continue
		}
		for j, b := range rp.Arrivals[i+1:] {
			if b.Transition != nil || !reflect.DeepEqual(b.Record, a.Record) ||
				(b.Outcome != health.OutcomeAfterRemoval && b.Outcome != health.OutcomeDuplicate) {
				fail(rp, "removal terminal", "arrival %d after the removal (arrival %d): %s, event %v, record %+v", i+1+j, i, b.Outcome, b.Transition, b.Record)
			}
		}
		return
	}
}

// normalized is a record or transition with its times replaced by what
// the arrangement does not decide, so that two replays compare.
type normalized struct {
	Record      health.Record
	StateSince  since
	Transitions []normalTransition
}

type normalTransition struct {
	health.Transition
	OccurredAt since
	// Codeless: caused by an accounts.failed that names no code (Bare,
	// Dual). It can only tell a failed login, without a code, unless an
	// incident is under way.
	Codeless bool
}

// since names the arrival a time is the receipt time of, independently of
// the arrangement: the step of the delivery, and
//   - with the account object, the arrival's rank among the step's
//     arrivals: both deliveries of an attempt carry the same object and so
//     the same state, and the state begins with whichever arrives first;
//   - without it, the delivery itself (its index in the provider's order):
//     only the event tells the state (accounts.updated says nothing), so
//     the state begins when that delivery arrives (deliveries without a
//     timestamp are applied in the order they arrive);
//   - with two subscriptions (Dual), the step only: a failure's state is
//     told by its codeless accounts.failed (a failed login) or by the
//     accounts.updated with the object, whichever arrives first, unless
//     an incident is under way, which the codeless one leaves alone.
type since struct {
	Step, Which int
	Copy        bool
}

func normalize(rp *simtest.Replay) normalized {
	sinceOf := func(t time.Time) since {
		a, ok := rp.ArrivalAt(t)
		if !ok {
			return since{Step: -1}
		}
		switch rp.Mode {
		case simtest.Lean, simtest.Bare:
			return since{Step: a.Delivery.Step, Which: a.Index, Copy: a.Copy}
		case simtest.Dual:
			return since{Step: a.Delivery.Step, Which: -1}
		}
		rank := 0
		for _, b := range rp.Arrivals {
			if b.ReceivedAt.Equal(t) {
				break
			}
			if b.Delivery.Step == a.Delivery.Step {
				rank++
			}
		}
		return since{Step: a.Delivery.Step, Which: rank, Copy: a.Copy}
	}
	r := rp.Final()
	n := normalized{StateSince: sinceOf(r.StateSince)}
	// Arrival times, which depend on the order by nature.
	r.LastEventType, r.LastEventAt, r.StateSince, r.SnapshotReceivedAt, r.ConfirmedAt = "", time.Time{}, time.Time{}, time.Time{}, time.Time{}
	// Freshness began with an arrival too, and its age counts from
	// StateSince when that is later than the scan.
	r.FreshnessSince, r.FreshAsOf = time.Time{}, time.Time{}
	if !rp.Mode.Timed() {
		// Whether the record is unconfirmed depends on whether an
		// accounts.updated without the object came last.
		r.Unconfirmed = false
	}
	n.Record = r
	for _, a := range rp.Arrivals {
		if a.Transition == nil {
			continue
		}
		nt := normalTransition{Transition: *a.Transition, OccurredAt: sinceOf(a.Transition.OccurredAt),
			Codeless: a.Delivery.Event == health.EventAccountsFailed && a.Delivery.Decoded.ErrorCode == ""}
		nt.Transition.OccurredAt = time.Time{}
		n.Transitions = append(n.Transitions, nt)
	}
	return n
}

// checkExact: pair swaps and repeats end in the in-order record (but for
// which delivery came last) and carry the in-order events, each once.
//
// With two subscriptions (Dual) a copy of a codeless accounts.failed that
// arrives after its attempt's account object may count the attempt again:
// its bytes are those of the next attempt's failure, which the object of
// the attempt before also precedes (see health.IsRedelivery), so the two
// cannot be told apart when it arrives. The failure count may then exceed
// the in-order one by the copies that came late; nothing else may differ.
func checkExact(base, rp *simtest.Replay, fail failFunc) {
	want, got := normalize(base), normalize(rp)
	lateCopies(rp, &got, want)
	if !reflect.DeepEqual(got.Record, want.Record) || got.StateSince != want.StateSince {
		fail(rp, "record", "record differs from the in-order one:%s\n   StateSince: got %+v, want %+v", recordDiff(got.Record, want.Record), got.StateSince, want.StateSince)
	}
	if !sameEvents(got.Transitions, want.Transitions) {
		fail(rp, "events", "events differ from the in-order ones:\n got %s\nwant %s", eventList(got.Transitions), eventList(want.Transitions))
	}
}

// sameEvents reports whether two replays' events are the same, each
// caused by the same step. An event caused by a codeless accounts.failed
// (in Dual, before the accounts.updated that names the code) says only
// what it can know: that a login failed; the same attempt's event, caused
// the other way round, names the code, and a code on a connected account
// may make it another kind (DEGRADED for a provider-side failure). Either
// is the one event of the attempt, and the record ends the same; such
// events are compared by step only.
func sameEvents(got, want []normalTransition) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Codeless || w.Codeless {
			g, w = normalTransition{OccurredAt: since{Step: g.OccurredAt.Step}}, normalTransition{OccurredAt: since{Step: w.OccurredAt.Step}}
		}
		g.Codeless, w.Codeless = false, false
		if !reflect.DeepEqual(g, w) {
			return false
		}
	}
	return true
}

func eventList(ts []normalTransition) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "\n   %s %s->%s %q (step %d, arrival %d) %s", t.Kind, t.PreviousState, t.State, t.ErrorCode, t.OccurredAt.Step, t.OccurredAt.Which, t.Remedy.Action)
	}
	return b.String()
}

// checkDisorder: deliveries arriving late, past others of the account.
// The record ends as in order, except:
//   - StateSince: a delivery that arrives after a newer object is stale, so
//     an intermediate state it told (a re-authentication's CONNECTING, say)
//     may never be seen, and the state then began with an earlier step;
//
// and no step (one attempt, one disconnection) causes two events; the last
// event is the in-order one's (kind, state and code: the state it left may
// be one never seen, as a first login's CONNECTING when accounts.added
// comes late).
//
// Displaced deliveries (wide) pass deliveries minutes or hours newer: a
// disconnection that arrives after the reconnection is stale and never an
// event, a change the simulator made after the removal may arrive before
// it. Only what the newest object says is promised then: the final state,
// code, message and remedy, whether the account ever connected; and still
// no step causes two events.
//
// With two subscriptions (Dual) the failure count is not compared: a
// codeless accounts.failed delayed past the next attempt's may meet its
// twin with no account object between them and be taken for its retry,
// the mirror of what checkExact allows (see health.IsRedelivery).
func checkDisorder(base, rp *simtest.Replay, fail failFunc, wide bool) {
	want, got := normalize(base), normalize(rp)
	if rp.Mode == simtest.Dual {
		got.Record.ConsecutiveFailures = want.Record.ConsecutiveFailures
	}
	if wide {
		type told struct {
			State  health.State
			Code   string
			Msg    string
			Remedy health.Remedy
			Ever   bool
		}
		// A change the simulator made after the removal (a scan, a login)
		// may arrive before it and be applied; then it is the newest object
		// seen before the removal, and may tell of a connection.
		zombies := slices.ContainsFunc(rp.History.Steps, func(s simtest.Step) bool { return s.AfterRemoval })
		tell := func(r health.Record) told {
			return told{r.State, r.ErrorCode, r.ErrorMessage, r.Remedy, r.EverConnected && !zombies}
		}
		if g, w := tell(got.Record), tell(want.Record); g != w {
			fail(rp, "told state", "the final record tells another state than the in-order one:\n got %+v\nwant %+v", g, w)
		}
	} else if !reflect.DeepEqual(got.Record, want.Record) {
		fail(rp, "record", "record differs from the in-order one:%s", recordDiff(got.Record, want.Record))
	}
	perStep := map[int]int{}
	for _, t := range got.Transitions {
		if perStep[t.OccurredAt.Step]++; perStep[t.OccurredAt.Step] > 1 {
			fail(rp, "one event per step", "step %d caused more than one event:%s", t.OccurredAt.Step, eventList(got.Transitions))
			break
		}
	}
	if n, m := len(got.Transitions), len(want.Transitions); !wide &&
		((n == 0) != (m == 0) || n > 0 && m > 0 && !sameEvents(lastEvent(got.Transitions), lastEvent(want.Transitions))) {
		fail(rp, "last event", "the last event differs from the in-order one:\n got %s\nwant %s", eventList(got.Transitions), eventList(want.Transitions))
	}
}

// lastEvent is the last of ts, with only what disorder leaves alone: not
// the state it left, which may be one never seen, nor when.
func lastEvent(ts []normalTransition) []normalTransition {
	t := ts[len(ts)-1]
	t.PreviousState, t.OccurredAt = health.StateUnknown, since{}
	return []normalTransition{t}
}

// recordDiff names the fields in which two records differ, with both
// values.
func recordDiff(got, want health.Record) string {
	var b strings.Builder
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() {
		if gf, wf := g.Field(i).Interface(), w.Field(i).Interface(); !reflect.DeepEqual(gf, wf) {
			if _, ok := gf.([]byte); ok {
				gf, wf = fmt.Sprintf("%d bytes", len(gf.([]byte))), fmt.Sprintf("%d bytes", len(wf.([]byte)))
			}
			fmt.Fprintf(&b, "\n   %s: got %+v, want %+v", g.Type().Field(i).Name, gf, wf)
		}
	}
	return b.String()
}

// stats describes the histories checked.
type stats struct {
	steps, deliveries int
	byOp              map[simtest.Op]int
}

func (s *stats) count(h *simtest.History) {
	if s.byOp == nil {
		s.byOp = map[simtest.Op]int{}
	}
	s.steps += len(h.Steps)
	s.deliveries += len(h.Deliveries(simtest.Full))
	for _, st := range h.Steps {
		s.byOp[st.Op]++
	}
}

func (s *stats) ops() string {
	var parts []string
	for op := simtest.OpAdd; op <= simtest.OpRemove; op++ {
		parts = append(parts, fmt.Sprintf("%s %d", op, s.byOp[op]))
	}
	return strings.Join(parts, ", ")
}

// lateCopies allows, in Dual, the failures that codeless accounts.failed
// arriving after an account object counted beyond the in-order count (see
// checkExact): got's count becomes want's when it exceeds it by no more
// than such arrivals.
func lateCopies(rp *simtest.Replay, got *normalized, want normalized) {
	if rp.Mode != simtest.Dual {
		return
	}
	extra, objectSeen := 0, false
	for _, a := range rp.Arrivals {
		switch {
		case a.Delivery.Decoded.Snapshot != nil:
			objectSeen = true
		case a.Delivery.Event == health.EventAccountsFailed && a.Outcome == health.OutcomeApplied && objectSeen:
			extra++
		}
	}
	if d := got.Record.ConsecutiveFailures - want.Record.ConsecutiveFailures; d > 0 && d <= extra {
		got.Record.ConsecutiveFailures = want.Record.ConsecutiveFailures
	}
}
