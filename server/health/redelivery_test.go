package health_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/provider/simulate"
	"github.com/accounthealth/accounthealth/server/provider/simulate/simtest"
	"github.com/accounthealth/accounthealth/server/store"
)

// sent is one delivery as it reaches the service, after seconds since the
// first.
type sent struct {
	d       simulate.Delivery
	seconds int
}

// account is one simulated account with or without the account object in
// its deliveries.
func account(lean bool) *simulate.Account {
	g := simulate.NewGenerator(simulate.Options{Name: "redelivery", Lean: lean, Seed: 7, Start: simtest.Start})
	return g.NewAccount()
}

// dual is one account as two subscriptions see it, one to "*" (no object),
// one to accounts.updated with include_resource: step plays a change on
// both twins and returns the codeless accounts.failed (or the lean event)
// and the accounts.updated with the object (zero when the change sends
// none).
type dual struct{ lean, full *simulate.Account }

func newDual() dual { return dual{account(true), account(false)} }

func (d dual) step(change func(*simulate.Account) []simulate.Delivery) (event, updated simulate.Delivery) {
	l, f := change(d.lean), change(d.full)
	event = l[0]
	if i := slices.IndexFunc(f, func(d simulate.Delivery) bool { return d.Event == simulate.EventUpdated }); i >= 0 {
		updated = f[i]
	}
	if event.Event == simulate.EventFailed {
		event.Body = simtest.Codeless(event.Body)
	}
	return event, updated
}

func connect(a *simulate.Account) []simulate.Delivery { return a.Connect() }

func failWith(code string) func(*simulate.Account) []simulate.Delivery {
	return func(a *simulate.Account) []simulate.Delivery { return a.Fail(code) }
}

func disconnectWith(code string) func(*simulate.Account) []simulate.Delivery {
	return func(a *simulate.Account) []simulate.Delivery { return a.Disconnect(code) }
}

// of picks the delivery of an event among a change's deliveries.
func of(ds []simulate.Delivery, event string) simulate.Delivery {
	i := slices.IndexFunc(ds, func(d simulate.Delivery) bool { return d.Event == event })
	if i < 0 {
		panic("no " + event)
	}
	return ds[i]
}

// commitAll commits ds through a model of the store's commit rules and
// returns each outcome, the final record and the events.
func commitAll(t *testing.T, ds []sent) ([]health.Outcome, health.Record, []simtest.Event) {
	t.Helper()
	s := simtest.NewStore(store.DefaultRedeliveryWindow)
	var outcomes []health.Outcome
	var events []simtest.Event
	for _, d := range ds {
		res, err := s.Commit(d.d.Body, replayStart.Add(time.Duration(d.seconds)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		outcomes = append(outcomes, res.Outcome)
		if res.Transition != nil {
			events = append(events, simtest.EventOf(*res.Transition))
		}
	}
	return outcomes, s.Record, events
}

// TestRedeliveryRule checks both sides of the redelivery rule
// (health.IsRedelivery as the store applies it) with the simulator's
// deliveries: a retry of a lean accounts.failed is counted once; a
// delivery whose application changes nothing is applied again, so that
// identical bytes never hide a new fact.
func TestRedeliveryRule(t *testing.T) {
	type want struct {
		Last     health.Outcome // of the last delivery
		State    health.State
		Code     string
		Action   health.Action
		Failures int
		Events   []health.Kind
	}
	tests := []struct {
		name string
		ds   func() []sent
		want want
	}{
		{
			name: "a reconnection by an identical lean accounts.connected within the window is applied",
			ds: func() []sent {
				a := account(true)
				add, conn, fail, reconn := a.Add(), a.Connect(), a.Fail("invalid_mfa"), a.Connect()
				return []sent{{add[0], 0}, {of(conn, simulate.EventConnected), 5}, {of(conn, simulate.EventUpdated), 30},
					{of(fail, simulate.EventFailed), 60}, {of(fail, simulate.EventUpdated), 61}, {of(reconn, simulate.EventConnected), 120}}
			},
			want: want{health.OutcomeApplied, health.StateHealthy, "", health.ActionNone, 0, []health.Kind{health.KindAuthFailed, health.KindRecovered}},
		},
		{
			name: "a lean accounts.failed retried at once counts one failure",
			ds: func() []sent {
				a := account(true)
				add, fail := a.Add(), a.Fail("invalid_mfa")
				f := of(fail, simulate.EventFailed)
				return []sent{{add[0], 0}, {f, 5}, {f, 6}}
			},
			want: want{health.OutcomeDuplicate, health.StateAuthFailed, "invalid_mfa", health.ActionRetryMFA, 1, []health.Kind{health.KindAuthFailed}},
		},
		{
			name: "a lean accounts.failed retried 30 s later, after its accounts.updated, counts one failure",
			ds: func() []sent {
				a := account(true)
				add, fail := a.Add(), a.Fail("invalid_mfa")
				f := of(fail, simulate.EventFailed)
				return []sent{{add[0], 0}, {f, 5}, {of(fail, simulate.EventUpdated), 6}, {f, 36}}
			},
			want: want{health.OutcomeDuplicate, health.StateAuthFailed, "invalid_mfa", health.ActionRetryMFA, 1, []health.Kind{health.KindAuthFailed}},
		},
		{
			name: "the same failure bytes after a reconnection are a new attempt",
			ds: func() []sent {
				a := account(true)
				add, fail, conn, again := a.Add(), a.Fail("invalid_mfa"), a.Connect(), a.Fail("invalid_mfa")
				return []sent{{add[0], 0}, {of(fail, simulate.EventFailed), 5}, {of(conn, simulate.EventConnected), 130},
					{of(again, simulate.EventFailed), 300}}
			},
			want: want{health.OutcomeApplied, health.StateAuthFailed, "invalid_mfa", health.ActionRetryMFA, 1,
				[]health.Kind{health.KindAuthFailed, health.KindRecovered, health.KindAuthFailed}},
		},
		{
			name: "the same failure bytes past the window are a new attempt",
			ds: func() []sent {
				a := account(true)
				add, fail, again := a.Add(), a.Fail("invalid_mfa"), a.Fail("invalid_mfa")
				return []sent{{add[0], 0}, {of(fail, simulate.EventFailed), 5}, {of(again, simulate.EventFailed), 5 + 601}}
			},
			want: want{health.OutcomeApplied, health.StateAuthFailed, "invalid_mfa", health.ActionRetryMFA, 2, []health.Kind{health.KindAuthFailed}},
		},
		{
			name: "a lean accounts.connected repeated changes nothing",
			ds: func() []sent {
				a := account(true)
				add, conn := a.Add(), a.Connect()
				c := of(conn, simulate.EventConnected)
				return []sent{{add[0], 0}, {c, 5}, {c, 6}}
			},
			want: want{health.OutcomeApplied, health.StateHealthy, "", health.ActionNone, 0, nil},
		},
		{
			name: "a delivery with the account object repeated a day later is a duplicate",
			ds: func() []sent {
				a := account(false)
				add, fail, conn := a.Add(), a.Fail("invalid_mfa"), a.Connect()
				f := of(fail, simulate.EventFailed)
				return []sent{{add[0], 0}, {f, 5}, {of(conn, simulate.EventConnected), 130}, {f, 86400}}
			},
			want: want{health.OutcomeDuplicate, health.StateHealthy, "", health.ActionNone, 0, []health.Kind{health.KindAuthFailed, health.KindRecovered}},
		},
		{
			// The third attempt's bytes equal the first's, within the
			// window, and the state (AUTH_FAILED) has not changed since:
			// health.IsRedelivery calls it a retry although the code it
			// carries replaces the one the second attempt left.
			name: "a failure with the code of the failure before last is a new attempt",
			ds: func() []sent {
				a := account(true)
				add, mfa, cred, mfaAgain := a.Add(), a.Fail("invalid_mfa"), a.Fail("invalid_credentials"), a.Fail("invalid_mfa")
				return []sent{{add[0], 0}, {of(mfa, simulate.EventFailed), 5}, {of(cred, simulate.EventFailed), 135},
					{of(mfaAgain, simulate.EventFailed), 265}}
			},
			want: want{health.OutcomeApplied, health.StateAuthFailed, "invalid_mfa", health.ActionRetryMFA, 3,
				[]health.Kind{health.KindAuthFailed, health.KindAuthFailed, health.KindAuthFailed}},
		},
		{
			// Two subscriptions: the failure's accounts.failed names no
			// code, so on a disconnected account it keeps the
			// disconnection; its accounts.updated, with the object, then
			// moves the account to AUTH_FAILED. A copy of the codeless
			// accounts.failed arriving now has the bytes of the next
			// attempt's, which also comes after this object (the next
			// case): the two cannot be told apart, and the rule counts it,
			// so as never to lose a new attempt. A known limit, documented
			// in health.IsRedelivery.
			name: "a codeless accounts.failed again after its attempt's object counts, as the next attempt's would",
			ds: func() []sent {
				d := newDual()
				add, _ := d.step(func(a *simulate.Account) []simulate.Delivery { return a.Add() })
				conn, connUpd := d.step(connect)
				_, disc := d.step(disconnectWith("auth_required"))
				fail, failUpd := d.step(failWith("invalid_mfa"))
				return []sent{{add, 0}, {conn, 5}, {connUpd, 30}, {disc, 60}, {fail, 120}, {failUpd, 121}, {fail, 151}}
			},
			want: want{health.OutcomeApplied, health.StateAuthFailed, "invalid_mfa", health.ActionRetryMFA, 2,
				[]health.Kind{health.KindDisconnected, health.KindAuthFailed}},
		},
		{
			name: "the next attempt's codeless accounts.failed after the object of the one before counts",
			ds: func() []sent {
				d := newDual()
				add, _ := d.step(func(a *simulate.Account) []simulate.Delivery { return a.Add() })
				conn, connUpd := d.step(connect)
				_, disc := d.step(disconnectWith("auth_required"))
				fail, failUpd := d.step(failWith("invalid_mfa"))
				again, againUpd := d.step(failWith("invalid_mfa"))
				return []sent{{add, 0}, {conn, 5}, {connUpd, 30}, {disc, 60}, {fail, 120}, {failUpd, 121}, {again, 151}, {againUpd, 152}}
			},
			want: want{health.OutcomeApplied, health.StateAuthFailed, "invalid_mfa", health.ActionRetryMFA, 2,
				[]health.Kind{health.KindDisconnected, health.KindAuthFailed}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outcomes, rec, events := commitAll(t, tt.ds())
			var kinds []health.Kind
			for _, e := range events {
				kinds = append(kinds, e.Kind)
			}
			got := want{outcomes[len(outcomes)-1], rec.State, rec.ErrorCode, rec.Remedy.Action, rec.ConsecutiveFailures, kinds}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got  %+v\nwant %+v\n(outcomes %v, events %+v)", got, tt.want, outcomes, events)
			}
		})
	}
}

// TestDeliveriesWithoutTimestamp: deliveries that carry no account object
// carry no time either, and are applied in the order they arrive (the rule
// the README states); those with the object order themselves by its times.
func TestDeliveriesWithoutTimestamp(t *testing.T) {
	for _, lean := range []bool{true, false} {
		a := account(lean)
		add, conn, fail := a.Add(), a.Connect(), a.Fail("invalid_mfa")
		c, f := of(conn, simulate.EventConnected), of(fail, simulate.EventFailed)
		for _, tt := range []struct {
			name string
			ds   []sent
			lean health.State // the state without the object: the last to arrive
			full health.State // with it: the newest object's
		}{
			{"connected, then the failure", []sent{{add[0], 0}, {c, 1}, {f, 2}}, health.StateAuthFailed, health.StateAuthFailed},
			{"the failure, then the connection it followed", []sent{{add[0], 0}, {f, 1}, {c, 2}}, health.StateHealthy, health.StateAuthFailed},
		} {
			t.Run(fmt.Sprintf("%s/lean=%v", tt.name, lean), func(t *testing.T) {
				_, rec, _ := commitAll(t, tt.ds)
				want := tt.full
				if lean {
					want = tt.lean
				}
				if rec.State != want {
					t.Errorf("state %v, want %v", rec.State, want)
				}
			})
		}
	}
}

// TestDualAttemptOrder: with two subscriptions, each failed attempt comes
// as a codeless accounts.failed and an accounts.updated with the object.
// Whichever of the two arrives first, the record must end the same; here
// two failed re-logins of a disconnected account count two failures in
// one order and one in the other, because a codeless accounts.failed
// is taken for a retry when the state has not changed since the last one,
// and which delivery changes the state depends on the order.
func TestDualAttemptOrder(t *testing.T) {
	for _, updatedFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("accounts.updated first=%v", updatedFirst), func(t *testing.T) {
			d := newDual()
			add, _ := d.step(func(a *simulate.Account) []simulate.Delivery { return a.Add() })
			conn, connUpd := d.step(connect)
			_, disc := d.step(disconnectWith("auth_required"))
			f1, u1 := d.step(failWith("invalid_mfa"))
			f2, u2 := d.step(failWith("invalid_mfa"))
			pair := func(f, u simulate.Delivery, at int) []sent {
				if updatedFirst {
					return []sent{{u, at}, {f, at + 1}}
				}
				return []sent{{f, at}, {u, at + 1}}
			}
			ds := slices.Concat([]sent{{add, 0}, {conn, 5}, {connUpd, 30}, {disc, 60}}, pair(f1, u1, 120), pair(f2, u2, 250))
			_, rec, events := commitAll(t, ds)
			if rec.State != health.StateAuthFailed || rec.ErrorCode != "invalid_mfa" || rec.ConsecutiveFailures != 2 || len(events) != 2 {
				t.Errorf("%v %q, %d failures, events %+v; want AUTH_FAILED \"invalid_mfa\", 2 failures, a disconnection and one failure event",
					rec.State, rec.ErrorCode, rec.ConsecutiveFailures, events)
			}
		})
	}
}
