package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/provider/simulate/simtest"
	"github.com/accounthealth/accounthealth/server/store"
)

var historiesSeed = flag.Int64("histories.seed", 0, "seed of TestRandomHistoriesEndToEnd's first history; 0: from the clock")

// endToEndHistories is how many random histories the binary gets, each
// three times (in order, with each attempt's deliveries swapped, and with
// every delivery sent again 30-45 s of the provider's time later), in
// every mode in turn.
const endToEndHistories = 20

// TestRandomHistoriesEndToEnd delivers random histories (simtest) to the
// built binary and compares, delivery by delivery, what it did with the
// pure model of server/health's rules and the store's commit: each
// delivery's outcome, the final record (GetAccountHealth), and the events
// StreamDisconnections carries for the account, each caused by the same
// delivery. Receipt times are the binary's own: they are compared by the
// delivery they belong to.
func TestRandomHistoriesEndToEnd(t *testing.T) {
	t.Parallel()
	seed := *historiesSeed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000_000
	}
	t.Logf("seed %d: rerun with -histories.seed=%d", seed, seed)
	e := newE2E(t)
	for i := range endToEndHistories {
		h := simtest.Generate(seed+int64(i), 10)
		m := simtest.Modes[i%len(simtest.Modes)]
		for j, arrange := range []func(*simtest.History, []simtest.Delivery) simtest.Arrangement{
			func(_ *simtest.History, ds []simtest.Delivery) simtest.Arrangement { return simtest.InOrder(ds) },
			simtest.PairSwapped,
			func(h *simtest.History, ds []simtest.Delivery) simtest.Arrangement {
				return simtest.DoubledLate(ds, rand.New(rand.NewPCG(uint64(h.Seed), 3)))
			},
		} {
			// Each run its own account: the history's bytes with another id.
			h := h.WithAccount(fmt.Sprintf("%s%d", h.Account[:len(h.Account)-1], j))
			a := arrange(h, h.Deliveries(m))
			t.Run(fmt.Sprintf("seed %d/%s/%s", h.Seed, m, a.Name), func(t *testing.T) {
				t.Parallel()
				model := simtest.Run(h, m, a, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), store.DefaultRedeliveryWindow)
				checkAgainstModel(t, e, model)
			})
		}
	}
}

// checkAgainstModel delivers the model's arrivals to the binary and
// compares.
func checkAgainstModel(t *testing.T, e *e2e, model *simtest.Replay) {
	account := model.History.Account
	posOf := map[int64]int{} // entry sequence -> arrival
	var problems []string
	for pos, a := range model.Arrivals {
		outcome, seq := e.deliver(t, a.Delivery.Body)
		if outcome != protoOutcome(a.Outcome) {
			problems = append(problems, fmt.Sprintf("arrival %d: %s, the model says %s", pos, outcome, a.Outcome))
		}
		if outcome != ahv1.DeliveryOutcome_DELIVERY_OUTCOME_DUPLICATE {
			posOf[seq] = pos
		}
	}
	e.sync(t)

	// Receipt times, by arrival.
	received := map[time.Time]int{}
	for _, entry := range e.timeline(t, account) {
		if pos, ok := posOf[entry.GetSequence()]; ok {
			received[entry.GetReceivedAt().AsTime()] = pos
		}
	}
	arrivalOf := func(t time.Time) int {
		if pos, ok := received[t]; ok {
			return pos
		}
		return -1
	}
	modelArrival := func(t time.Time) int {
		if a, ok := model.ArrivalAt(t); ok {
			return int(a.ReceivedAt.Sub(model.Start) / simtest.Gap)
		}
		return -1
	}

	want := model.Final()
	got := e.health(t, account)
	type view struct {
		State                   ahv1.HealthState
		Code, Message           string
		Action                  ahv1.RemedyAction
		RemedyMessage           string
		LinkAccount, LinkUser   string
		Failures                int32
		Ever, Unconfirmed       bool
		LastEvent               string
		StateSince, LastEventAt int // arrivals
		SnapshotAt              time.Time
	}
	gotView := view{got.GetState(), got.GetErrorCode(), got.GetErrorMessage(), got.GetRemedy().GetAction(), got.GetRemedy().GetMessage(),
		got.GetRemedy().GetLink().GetAccountId(), got.GetRemedy().GetLink().GetUserId(), got.GetConsecutiveFailures(),
		got.GetEverConnected(), got.GetUnconfirmed(), got.GetLastEventType(),
		arrivalOf(got.GetStateSince().AsTime()), arrivalOf(got.GetLastEventAt().AsTime()), got.GetLastSnapshotAt().AsTime()}
	wantView := view{protoState(want.State), want.ErrorCode, want.ErrorMessage, protoAction(want.Remedy.Action), want.Remedy.Message,
		want.Remedy.LinkAccountID, want.Remedy.LinkUserID, int32(want.ConsecutiveFailures),
		want.EverConnected, want.Unconfirmed, want.LastEventType,
		modelArrival(want.StateSince), modelArrival(want.LastEventAt), want.SnapshotAt}
	if got.GetLastSnapshotAt() == nil {
		gotView.SnapshotAt = time.Time{}
	}
	if gotView != wantView {
		problems = append(problems, fmt.Sprintf("record:\n got %+v\nwant %+v", gotView, wantView))
	}

	type event struct {
		Kind      ahv1.TransitionKind
		From, To  ahv1.HealthState
		Code, Msg string
		Action    ahv1.RemedyAction
		CausedBy  int // arrival
	}
	var gotEvents, wantEvents []event
	for _, ev := range e.seenEvents(account) {
		pos, ok := posOf[ev.GetDelivery().GetSequence()]
		if !ok {
			pos = -1
		}
		gotEvents = append(gotEvents, event{ev.GetKind(), ev.GetPreviousState(), ev.GetState(), ev.GetErrorCode(), ev.GetErrorMessage(), ev.GetRemedy().GetAction(), pos})
	}
	for pos, a := range model.Arrivals {
		if tr := a.Transition; tr != nil {
			wantEvents = append(wantEvents, event{protoKind(tr.Kind), protoState(tr.PreviousState), protoState(tr.State), tr.ErrorCode, tr.ErrorMessage, protoAction(tr.Remedy.Action), pos})
		}
	}
	if fmt.Sprint(gotEvents) != fmt.Sprint(wantEvents) {
		problems = append(problems, fmt.Sprintf("events:\n got %+v\nwant %+v", gotEvents, wantEvents))
	}
	if len(problems) > 0 {
		t.Errorf("the binary and the model differ:\n%s\n%s", strings.Join(problems, "\n"), model)
	}
}

// kindOf is the health package's kind for the API's.
func kindOf(k ahv1.TransitionKind) health.Kind {
	for hk := health.KindUnspecified; hk <= health.KindRecovered; hk++ {
		if protoKind(hk) == k {
			return hk
		}
	}
	return health.KindUnspecified
}
