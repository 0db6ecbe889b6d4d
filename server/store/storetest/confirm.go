package storetest

import (
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// Confirmation: when the account object was last seen (ConfirmedAt), and
// whether a fetch is due (Result.Unconfirmed).

// testConfirmedAt: a delivery that shows the account object confirms the
// record, whether it is applied, stale or a redelivery, and nothing moves
// the confirmation back in time.
func testConfirmedAt(t *testing.T, s store.Store) {
	acct, user := accountID(1), userID(1)
	wantConfirmed := func(what string, want time.Time) {
		t.Helper()
		if got := mustGetHealth(t, s, acct).ConfirmedAt; !got.Equal(want) {
			t.Errorf("%s: ConfirmedAt %v, want %v", what, got, want)
		}
	}
	commit := func(ev Event, want health.Outcome) {
		t.Helper()
		if r := ingest(t, s, ev)[0]; r.Outcome != want {
			t.Fatalf("%s received at %v: %v, want %v", ev.Event, ev.ReceivedAt, r.Outcome, want)
		}
	}
	commit(added(acct, user, t0), health.OutcomeApplied)
	wantConfirmed("lean accounts.added", time.Time{})
	fresh := connected(acct, user, t0.Add(2*time.Hour))
	commit(fresh, health.OutcomeApplied)
	wantConfirmed("applied", fresh.ReceivedAt)
	// Its object is older than the one applied, but it was seen at +3h.
	late := updatedError(acct, user, "auth_required", t0.Add(time.Hour))
	late.ReceivedAt = t0.Add(3 * time.Hour)
	commit(late, health.OutcomeStale)
	wantConfirmed("stale", late.ReceivedAt)

	fresh.ReceivedAt = t0.Add(4 * time.Hour)
	commit(fresh, health.OutcomeDuplicate)
	wantConfirmed("redelivered", fresh.ReceivedAt)
	fresh.ReceivedAt = t0.Add(90 * time.Minute)
	commit(fresh, health.OutcomeDuplicate)
	wantConfirmed("redelivered with an earlier time", t0.Add(4*time.Hour))

	// A removed account is confirmed by nothing (health.Apply), nor by a
	// redelivery.
	commit(removed(acct, user, t0.Add(5*time.Hour)), health.OutcomeApplied)
	fresh.ReceivedAt = t0.Add(6 * time.Hour)
	commit(fresh, health.OutcomeDuplicate)
	wantConfirmed("redelivered after the removal", t0.Add(4*time.Hour))
}

// testResultUnconfirmed: every result says whether the record is left
// unconfirmed, as GetHealth reads it, but for other events than accounts'.
func testResultUnconfirmed(t *testing.T, s store.Store) {
	acct, user := accountID(1), userID(1)
	fail, ok := failed(acct, user, "invalid_mfa", t0.Add(time.Minute)), connected(acct, user, t0.Add(time.Hour))
	retry, okAgain := fail, ok
	retry.ReceivedAt, okAgain.ReceivedAt = fail.ReceivedAt.Add(30*time.Second), ok.ReceivedAt.Add(time.Hour)
	for _, tc := range []struct {
		ev          Event
		outcome     health.Outcome
		unconfirmed bool
	}{
		{updatedLean(acct, user, t0), health.OutcomeUnconfirmed, true},
		{paystubsAdded(acct, user, t0.Add(time.Second)), health.OutcomeNotAccountEvent, false},
		{fail, health.OutcomeApplied, true},
		{retry, health.OutcomeDuplicate, true},
		{ok, health.OutcomeApplied, false},
		{okAgain, health.OutcomeDuplicate, false},
	} {
		r := ingest(t, s, tc.ev)[0]
		if r.Outcome != tc.outcome || r.Unconfirmed != tc.unconfirmed {
			t.Errorf("%s received at %v: %v, unconfirmed %v; want %v, %v", tc.ev.Event, tc.ev.ReceivedAt, r.Outcome, r.Unconfirmed, tc.outcome, tc.unconfirmed)
		}
		if rec := mustGetHealth(t, s, acct); tc.outcome != health.OutcomeNotAccountEvent && rec.Unconfirmed != r.Unconfirmed {
			t.Errorf("%s received at %v: the record's Unconfirmed is %v, the result's %v", tc.ev.Event, tc.ev.ReceivedAt, rec.Unconfirmed, r.Unconfirmed)
		}
	}
}

// rulesWithoutConfirmedAt play a build of before rules version 3, which
// kept no ConfirmedAt.
var rulesWithoutConfirmedAt = store.Rules{Version: 2, Apply: func(cur health.Record, d health.Delivery) health.Result {
	res := health.Apply(cur, d)
	res.Record.ConfirmedAt = time.Time{}
	return res
}}

// testRebuildDerivesConfirmedAt: records of a build that kept no
// confirmation get it from the log; and a rebuild keeps what a redelivery
// confirmed, which the log does not tell.
func testRebuildDerivesConfirmedAt(t *testing.T, open Opener) {
	ds := rebuildHistory()
	old := open(store.Options{Rules: rulesWithoutConfirmedAt})
	ingestDeliveries(t, old, ds)
	if err := old.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s := open(store.Options{})
	p, err := s.Rebuild(t.Context(), store.RebuildOptions{Decode: decoderOf(ds)})
	if err != nil || p.Changed == 0 || p.Corrections != 0 {
		t.Fatalf("Rebuild = %+v, %v; want records changed, no correction", p, err)
	}
	confirmed := 0
	for id, want := range replayRules(store.CurrentRules(), ds) {
		if !want.ConfirmedAt.IsZero() {
			confirmed++
		}
		wantNoDiff(t, "record of "+id, want, mustGetHealth(t, s, id))
	}
	if confirmed == 0 {
		t.Error("the history confirms no account: the test proves nothing")
	}

	var redelivery store.Delivery
	for _, d := range ds {
		if d.Decoded.Snapshot != nil && d.Decoded.AccountID == accountID(3) {
			redelivery = d
		}
	}
	redelivery.Decoded.ReceivedAt = t0.Add(48 * time.Hour)
	if r := ingestDeliveries(t, s, []store.Delivery{redelivery})[0]; r.Outcome != health.OutcomeDuplicate {
		t.Fatalf("redelivery: %+v, want DUPLICATE", r)
	}
	want := mustGetHealth(t, s, accountID(3))
	if !want.ConfirmedAt.Equal(redelivery.Decoded.ReceivedAt) {
		t.Fatalf("ConfirmedAt %v after the redelivery, want %v", want.ConfirmedAt, redelivery.Decoded.ReceivedAt)
	}
	if p, err := s.Rebuild(t.Context(), store.RebuildOptions{Decode: decoderOf(ds), Force: true}); err != nil || p.Changed != 0 {
		t.Errorf("forced Rebuild = %+v, %v; want nothing changed", p, err)
	}
	wantNoDiff(t, "record after a forced rebuild", want, mustGetHealth(t, s, accountID(3)))
}
