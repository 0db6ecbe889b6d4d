package storetest

import (
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// Items: what a commit keeps per payroll platform (store.ItemSignals) and
// the item filter of ListHealth.

const (
	itemA = "item_000077001"
	itemB = "item_000077002"
	itemC = "item_000077003"
)

// onItem sets the item of e's resource.
func onItem(e Event, item string) Event {
	r := *e.Resource
	r.Item = item
	e.Resource = &r
	return e
}

// itemHistory puts four accounts on itemA, which fail in every way, one
// on itemB, and reports itemB and itemC (which no account names).
func itemHistory() []store.Delivery {
	u := userID(1)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	var events []Event
	for n := 1; n <= 4; n++ {
		events = append(events, onItem(connected(accountID(n), u, at(0)), itemA))
	}
	return Deliveries(append(events,
		onItem(connected(accountID(5), u, at(0)), itemB),
		onItem(updatedError(accountID(1), u, "platform_unavailable", at(60)), itemA),      // DEGRADED: counted
		onItem(failedWithResource(accountID(2), u, "invalid_credentials", at(61)), itemA), // AUTH_FAILED: counted
		onItem(updatedError(accountID(3), u, "auth_required", at(61)), itemA),             // DISCONNECTED: not
		onItem(updatedError(accountID(1), u, "system_error", at(90)), itemA),              // still DEGRADED: not again
		removed(accountID(4), u, at(95)),
		itemsUpdated(itemB, health.ReportedUnavailable, at(120)),
		itemsUpdated(itemC, health.ReportedIssues, at(121)),
		// Arrived before the one kept: ignored.
		itemsUpdated(itemB, health.ReportedHealthy, at(100)),
	)...)
}

// wantItemHistory is what itemHistory leaves, with the failures of the
// minutes that end after since.
func wantItemHistory(since time.Time) []health.ItemSignals {
	minute := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute).UTC().Truncate(time.Minute) }
	a := health.ItemSignals{Item: itemA, Counts: map[health.State]int{
		health.StateDegraded: 1, health.StateAuthFailed: 1, health.StateDisconnected: 1, health.StateRemoved: 1,
	}}
	for _, b := range []health.FailureBucket{{Start: minute(60), N: 1}, {Start: minute(61), N: 1}} {
		if b.Start.Add(time.Minute).After(since) {
			a.Failures = append(a.Failures, b)
		}
	}
	return []health.ItemSignals{
		a,
		{Item: itemB, Counts: map[health.State]int{health.StateHealthy: 1},
			Report: &health.ItemReport{Item: itemB, Status: health.ReportedUnavailable, ReceivedAt: t0.Add(120 * time.Minute).UTC()}},
		{Item: itemC, Counts: map[health.State]int{},
			Report: &health.ItemReport{Item: itemC, Status: health.ReportedIssues, ReceivedAt: t0.Add(121 * time.Minute).UTC()}},
	}
}

func itemSignals(t *testing.T, s store.Store, q store.ItemQuery) []health.ItemSignals {
	t.Helper()
	got, err := s.ItemSignals(t.Context(), q)
	if err != nil {
		t.Fatalf("ItemSignals(%+v): %v", q, err)
	}
	return got
}

func testItemSignals(t *testing.T, s store.Store) {
	if got := itemSignals(t, s, store.ItemQuery{}); len(got) != 0 {
		t.Fatalf("ItemSignals of an empty store = %+v", got)
	}
	// One delivery per commit: the counts follow every record write.
	for _, d := range itemHistory() {
		ingestDeliveries(t, s, []store.Delivery{d})
	}
	since := t0.Add(-time.Hour)
	want := wantItemHistory(since)
	wantNoDiff(t, "ItemSignals", want, itemSignals(t, s, store.ItemQuery{FailuresSince: since}))
	wantNoDiff(t, "ItemSignals of one item", want[1:2], itemSignals(t, s, store.ItemQuery{Item: itemB, FailuresSince: since}))
	later := t0.Add(61 * time.Minute)
	wantNoDiff(t, "ItemSignals with later failures", wantItemHistory(later), itemSignals(t, s, store.ItemQuery{FailuresSince: later}))
	// itemA's last failure bucket ended at minute 62; itemB's report is
	// not healthy, itemC's names an item no record does.
	wantNoDiff(t, "ItemSignals of the items active after minute 62", want[1:],
		itemSignals(t, s, store.ItemQuery{FailuresSince: since, ActiveSince: t0.Add(62 * time.Minute)}))
	wantNoDiff(t, "ItemSignals of the items active after minute 61", want,
		itemSignals(t, s, store.ItemQuery{FailuresSince: since, ActiveSince: t0.Add(61 * time.Minute)}))
	quiet := func(q store.QuietQuery) []health.ItemSignals {
		t.Helper()
		got, err := s.QuietItems(t.Context(), q)
		if err != nil {
			t.Fatalf("QuietItems(%+v): %v", q, err)
		}
		return got
	}
	// By accounts needing attention: itemA's 3, then itemB's 0; failures
	// are not read.
	a, b := want[0], want[1]
	a.Failures = nil
	wantNoDiff(t, "QuietItems", []health.ItemSignals{a, b}, quiet(store.QuietQuery{Limit: 10}))
	wantNoDiff(t, "QuietItems, a page of 1", []health.ItemSignals{a}, quiet(store.QuietQuery{Limit: 1}))
	wantNoDiff(t, "QuietItems after itemA", []health.ItemSignals{b}, quiet(store.QuietQuery{AfterFailing: 3, After: itemA, Limit: 10}))
	if got := itemSignals(t, s, store.ItemQuery{Item: "item_unknown"}); len(got) != 0 {
		t.Errorf("ItemSignals of an unknown item = %+v", got)
	}

	// An account long in error, as a backfill or a fetch finds it: its
	// object's time, not its arrival, dates the failure, outside the two
	// days read.
	old := onItem(updatedError(accountID(9), userID(1), "platform_unavailable", t0.Add(3*time.Hour)), itemB)
	old.Resource.UpdatedAt = t0.Add(-72 * time.Hour)
	ingest(t, s, old)
	if got := itemSignals(t, s, store.ItemQuery{Item: itemB, FailuresSince: t0.Add(-48 * time.Hour)}); len(got) != 1 || len(got[0].Failures) != 0 {
		t.Errorf("ItemSignals after an account found long in error: %+v, want no failure", got)
	}
	for item, n := range map[string]int{itemA: 4, itemB: 2, itemC: 0} {
		page, err := s.ListHealth(t.Context(), store.HealthQuery{Item: item})
		if err != nil || len(page.Records) != n {
			t.Errorf("ListHealth of item %s = %d records, %v; want %d", item, len(page.Records), err, n)
		}
		for _, r := range page.Records {
			if r.Item != item {
				t.Errorf("ListHealth of item %s: account %s is on %q", item, r.AccountID, r.Item)
			}
		}
	}
}

// rulesWithoutItems play a build of before rules version 5, whose records
// named no item.
var rulesWithoutItems = store.Rules{Version: 4, Apply: func(cur health.Record, d health.Delivery) health.Result {
	res := health.Apply(cur, d)
	res.Record.Item = ""
	return res
}}

// testRebuildDerivesItems: the records of a build that kept no item get
// it from the log, and the item counts follow.
func testRebuildDerivesItems(t *testing.T, open Opener) {
	ds := itemHistory()
	old := open(store.Options{Rules: rulesWithoutItems})
	ingestDeliveries(t, old, ds)
	if err := old.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s := open(store.Options{})
	if p, err := s.Rebuild(t.Context(), store.RebuildOptions{Decode: decoderOf(ds)}); err != nil || p.Changed == 0 {
		t.Fatalf("Rebuild = %+v, %v; want records changed", p, err)
	}
	got := itemSignals(t, s, store.ItemQuery{FailuresSince: t0.Add(-time.Hour)})
	want := wantItemHistory(t0.Add(-time.Hour))
	// Records that took the item only at the rebuild were already in
	// error: no move into one is counted for them.
	want[0].Failures = nil
	wantNoDiff(t, "ItemSignals after the rebuild", want, got)
}

// outageEntry is the items.outage_* entry the item watcher commits: for
// one account, or item-wide when account is empty.
func outageEntry(item string, in bool, account, user string, at time.Time) store.Delivery {
	o := &health.ItemOutage{Item: item, InOutage: in, Status: health.ItemStatusSuspectedOutage, Since: at.Add(-time.Minute).UTC()}
	body := mustJSON(map[string]any{"item": item, "in_outage": in, "account": account, "at": timestamp(at)})
	return store.Delivery{Source: store.SourceAPI, Actor: "items", Body: body, Decoded: health.Delivery{
		Event: o.Event(), AccountID: account, UserID: user, ReceivedAt: at, ItemOutage: o,
	}}
}

// testItemOutages: an item-wide outage entry makes one change per change
// of the outage, and ItemOutages tells the last; an account's entry turns
// its remedy to waiting and back, and its changes name its item.
func testItemOutages(t *testing.T, s store.Store) {
	ds := itemHistory()
	ingestDeliveries(t, s, ds)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	u := userID(1)
	steps := []struct {
		d        store.Delivery
		wantKind health.Kind // of the change; unspecified for none
	}{
		{outageEntry(itemA, true, "", "", at(130)), health.KindItemOutageBegan},
		{outageEntry(itemA, true, "", "", at(131)), health.KindUnspecified}, // another replica's
		{outageEntry(itemA, true, accountID(3), u, at(132)), health.KindUnspecified},
		{outageEntry(itemA, false, accountID(3), u, at(140)), health.KindRemedyRestored},
		{outageEntry(itemA, false, "", "", at(141)), health.KindItemOutageEnded},
	}
	for i, st := range steps {
		r := ingestDeliveries(t, s, []store.Delivery{st.d})[0]
		switch {
		case st.wantKind == health.KindUnspecified && r.Change != nil:
			t.Errorf("step %d: a change %+v, want none", i, r.Change)
		case st.wantKind != health.KindUnspecified && (r.Change == nil || r.Change.Kind != st.wantKind || r.Change.Item != itemA):
			t.Errorf("step %d: change %+v, want a %v of %s", i, r.Change, st.wantKind, itemA)
		}
		if i == 2 {
			rec := mustGetHealth(t, s, accountID(3))
			if !rec.ItemOutage || rec.Remedy.Action != health.ActionWait || rec.State != health.StateDisconnected {
				t.Errorf("account on the item in an outage: %+v, want DISCONNECTED, waiting", rec)
			}
		}
	}
	if rec := mustGetHealth(t, s, accountID(3)); rec.ItemOutage || rec.Remedy.Action != health.ActionReconnect {
		t.Errorf("account after the outage: remedy %v, outage %v; want RECONNECT", rec.Remedy.Action, rec.ItemOutage)
	}
	outages, err := s.ItemOutages(t.Context())
	if err != nil || len(outages) != 1 || outages[0].Item != itemA || outages[0].InOutage || !outages[0].ChangedAt.Equal(at(141)) {
		t.Errorf("ItemOutages = %+v, %v; want itemA's, ended at %v", outages, err, at(141))
	}
	for _, c := range allChanges(t, s) {
		if c.AccountID != "" && c.Item != itemA && c.Item != itemB {
			t.Errorf("change %d of account %s names item %q", c.Seq, c.AccountID, c.Item)
		}
	}
}
