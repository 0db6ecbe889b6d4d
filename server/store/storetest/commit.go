package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// Commits: what Ingest stores, the change log, redeliveries, atomicity
// (concurrent ingests: lifecycle.go).

func testGetHealthRoundTrip(t *testing.T, s store.Store) {
	// Two accounts of the same history but the last entry: the second's
	// item is in an outage, whose remedy (to wait) needs no Link, so
	// between them every field is set.
	acct, user := accountID(1), userID(1)
	history := func(acct string) []store.Delivery {
		return Deliveries(
			connected(acct, user, t0),
			updatedError(acct, user, "auth_required", t0.Add(time.Hour)),
			failed(acct, user, "invalid_credentials", t0.Add(2*time.Hour)),
			updatedLean(acct, user, t0.Add(3*time.Hour)),
		)
	}
	waiting := accountID(2)
	ds := append(history(acct), append(history(waiting), outageEntry(defaultItem, true, waiting, user, t0.Add(4*time.Hour)))...)
	// And two connected accounts, whose freshness fields are set: one
	// with refresh disabled and a failed dataset, one judged stale.
	unfresh, stale := accountID(3), accountID(4)
	disabled := refreshDisabled(unfresh, user, t0.Add(5*time.Hour))
	disabled.Resource.Failed = []string{"paystubs"}
	ds = append(ds, Deliveries(connected(unfresh, user, t0), disabled, connected(stale, user, t0))...)
	ds = append(ds, stalenessEntry(stale, user, t0.Add(-time.Second), t0.Add(80*time.Hour)))
	m := model{}
	m.apply(ds...)
	accounts := []string{acct, waiting, unfresh, stale}
	zero := zeroFields(m[acct])
	for _, a := range accounts[1:] {
		zero = slices.DeleteFunc(zero, func(f string) bool { return !slices.Contains(zeroFields(m[a]), f) })
	}
	if len(zero) > 0 {
		t.Fatalf("the test's deliveries leave Record fields %v zero: their round trip would go untested", zero)
	}
	// One commit each, so every delivery is applied to the record as the
	// store read it back: a field lost on the way shows in the end result.
	for _, d := range ds {
		ingestDeliveries(t, s, []store.Delivery{d})
	}
	for _, a := range accounts {
		wantNoDiff(t, "GetHealth of "+a, m[a], mustGetHealth(t, s, a))
	}
}

// stalenessEntry is the staleness sweeper's entry judging the account's
// data, fresh as of freshAsOf, stale at at.
func stalenessEntry(account, user string, freshAsOf, at time.Time) store.Delivery {
	st := &health.Staleness{FreshAsOf: freshAsOf.UTC(), Since: freshAsOf.Add(72 * time.Hour).UTC()}
	body := mustJSON(map[string]any{"fresh_as_of": timestamp(st.FreshAsOf), "since": timestamp(st.Since)})
	return store.Delivery{Source: store.SourceAPI, Actor: "freshness", Body: body, Verified: true, Decoded: health.Delivery{
		Event: health.EventAccountStale, AccountID: account, UserID: user, ReceivedAt: at, Staleness: st,
	}}
}

func testGetHealthNotFound(t *testing.T, s store.Store) {
	_, err := s.GetHealth(t.Context(), accountID(1))
	wantErr(t, "GetHealth on an empty store", err, store.ErrNotFound)
	ingest(t, s, failed(accountID(2), userID(2), "invalid_mfa", t0))
	_, err = s.GetHealth(t.Context(), accountID(1))
	wantErr(t, "GetHealth of an unknown account", err, store.ErrNotFound)
}

func testFailedThenConnectedChanges(t *testing.T, s store.Store) {
	acct, user := accountID(1), userID(1)
	ds := Deliveries(
		failedWithResource(acct, user, "invalid_mfa", t0),
		connected(acct, user, t0.Add(time.Minute)),
	)
	want := model{}.apply(ds...)
	var res []store.Result
	for _, d := range ds {
		res = append(res, ingestDeliveries(t, s, []store.Delivery{d})...)
	}

	changes := allChanges(t, s)
	if len(changes) != 2 {
		t.Fatalf("change log holds %d changes, want 2: %+v", len(changes), changes)
	}
	kinds := []health.Kind{health.KindAuthFailed, health.KindRecovered}
	for i, c := range changes {
		r := res[i]
		if r.Outcome != health.OutcomeApplied || r.Change == nil {
			t.Fatalf("delivery %d: outcome %v, change %v; want APPLIED with a change", i, r.Outcome, r.Change)
		}
		if c.Kind != kinds[i] {
			t.Errorf("change %d: kind %v, want %v", i, c.Kind, kinds[i])
		}
		if c.Seq <= 0 || (i > 0 && c.Seq <= changes[i-1].Seq) {
			t.Errorf("change %d: Seq %d does not increase", i, c.Seq)
		}
		if c.EntrySeq != r.EntrySeq || c.AccountID != acct || c.UserID != user || c.Event != ds[i].Decoded.Event {
			t.Errorf("change %d: entry %d, account %q, user %q, event %q; want %d, %q, %q, %q",
				i, c.EntrySeq, c.AccountID, c.UserID, c.Event, r.EntrySeq, acct, user, ds[i].Decoded.Event)
		}
		wantNoDiff(t, "logged change vs Ingest's", *r.Change, c)
		wantNoDiff(t, "logged transition vs health.Apply's", *want[i].Transition, c.Transition)
	}
	if seq := lastChangeSeq(t, s); seq != changes[1].Seq {
		t.Errorf("LastChangeSeq = %d, want %d", seq, changes[1].Seq)
	}
}

func testReadChangesPaging(t *testing.T, s store.Store) {
	if seq := lastChangeSeq(t, s); seq != 0 {
		t.Errorf("LastChangeSeq of an empty store = %d, want 0", seq)
	}
	var events []Event
	for i := range 7 {
		events = append(events, failed(accountID(i), userID(i), "invalid_mfa", t0.Add(time.Duration(i)*time.Second)))
	}
	res := ingest(t, s, events...)
	all := allChanges(t, s)
	if len(all) != len(events) {
		t.Fatalf("change log holds %d changes, want %d", len(all), len(events))
	}
	for i, c := range all {
		if res[i].Change == nil || res[i].Change.Seq != c.Seq {
			t.Errorf("change %d: Seq %d, Ingest reported %+v", i, c.Seq, res[i].Change)
		}
	}

	var paged []store.Change
	pages := 0
	for after := int64(0); ; pages++ {
		page, err := s.ReadChanges(t.Context(), after, 3)
		if err != nil {
			t.Fatalf("ReadChanges(%d, 3): %v", after, err)
		}
		if len(page) > 3 {
			t.Fatalf("ReadChanges(%d, 3) returned %d changes", after, len(page))
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1].Seq
	}
	if pages != 3 {
		t.Errorf("read %d pages of 3, want 3", pages)
	}
	wantNoDiff(t, "changes read in pages of 3", all, paged)

	mid, err := s.ReadChanges(t.Context(), all[3].Seq, 0)
	if err != nil {
		t.Fatalf("ReadChanges(after 4th, default limit): %v", err)
	}
	wantNoDiff(t, "changes after the 4th", all[4:], mid)

	last := lastChangeSeq(t, s)
	if last != all[len(all)-1].Seq {
		t.Errorf("LastChangeSeq = %d, want %d", last, all[len(all)-1].Seq)
	}
	if rest, err := s.ReadChanges(t.Context(), last, 10); err != nil || len(rest) != 0 {
		t.Errorf("ReadChanges(LastChangeSeq) = %v, %v; want nothing", rest, err)
	}
}

func testDuplicateWithSnapshot(t *testing.T, s store.Store) {
	acct, user := accountID(1), userID(1)
	ev := failedWithResource(acct, user, "invalid_mfa", t0)
	first := ingest(t, s, ev)[0]
	before := mustGetHealth(t, s, acct)
	changes := allChanges(t, s)

	// Its resource's timestamps make the bytes unique to the event: however
	// late a copy comes, it is the same delivery. It shows the account
	// object again, though: the record is confirmed then.
	for i := 1; i <= 2; i++ {
		ev.ReceivedAt = t0.Add(time.Duration(i) * 48 * time.Hour)
		r := ingest(t, s, ev)[0]
		if r.Outcome != health.OutcomeDuplicate || r.EntrySeq != first.EntrySeq || r.Change != nil {
			t.Errorf("redelivery %d: %+v, want DUPLICATE of entry %d without change", i, r, first.EntrySeq)
		}
	}
	before.ConfirmedAt = ev.ReceivedAt
	wantNoDiff(t, "record after redeliveries", before, mustGetHealth(t, s, acct))
	wantNoDiff(t, "change log after redeliveries", changes, allChanges(t, s))
	entries := allEntries(t, s, acct, 0)
	if len(entries) != 1 || entries[0].Seq != first.EntrySeq || entries[0].Redeliveries != 2 {
		t.Errorf("timeline %+v, want only entry %d with 2 redeliveries", entries, first.EntrySeq)
	}
}

func testDuplicateWithoutSnapshotWindow(t *testing.T, s store.Store) {
	acct, user := accountID(1), userID(1)
	// Two real failed MFA attempts with the same code send the same bytes;
	// only the time between them tells a retry from a new attempt.
	ev := failed(acct, user, "mfa_timeout", t0)
	first := ingest(t, s, ev)[0]

	ev.ReceivedAt = t0.Add(30 * time.Second)
	if r := ingest(t, s, ev)[0]; r.Outcome != health.OutcomeDuplicate || r.EntrySeq != first.EntrySeq {
		t.Errorf("retry after 30s: %+v, want DUPLICATE of entry %d", r, first.EntrySeq)
	}

	ev.ReceivedAt = t0.Add(store.DefaultRedeliveryWindow + time.Minute)
	again := ingest(t, s, ev)[0]
	if again.Outcome != health.OutcomeApplied || again.EntrySeq <= first.EntrySeq {
		t.Errorf("repeat outside the window: %+v, want APPLIED as a new entry", again)
	}
	if rec := mustGetHealth(t, s, acct); rec.ConsecutiveFailures != 2 {
		t.Errorf("ConsecutiveFailures = %d, want 2", rec.ConsecutiveFailures)
	}

	// The window runs from the newest entry with those bytes.
	ev.ReceivedAt = ev.ReceivedAt.Add(30 * time.Second)
	if r := ingest(t, s, ev)[0]; r.Outcome != health.OutcomeDuplicate || r.EntrySeq != again.EntrySeq {
		t.Errorf("retry of the repeat: %+v, want DUPLICATE of entry %d", r, again.EntrySeq)
	}
	entries := allEntries(t, s, acct, 0)
	if len(entries) != 2 || entries[0].Redeliveries != 1 || entries[1].Redeliveries != 1 {
		t.Errorf("timeline %+v, want 2 entries with 1 redelivery each", entries)
	}
}

// testIdenticalBytesNewFact: identical lean bytes that are a new fact are
// applied, never taken for a redelivery (health.IsRedelivery).
func testIdenticalBytesNewFact(t *testing.T, s store.Store) {
	acct, user := accountID(1), userID(1)
	lean := Event{Event: health.EventAccountsConnected, AccountID: acct, UserID: user, ReceivedAt: t0}
	ingest(t, s, added(acct, user, t0), lean)
	// Disconnected, then reconnected a minute later: the lean
	// accounts.connected has the same bytes as the first one.
	ingest(t, s, updatedError(acct, user, "auth_required", t0.Add(time.Minute)))
	lean.ReceivedAt = t0.Add(2 * time.Minute)
	r := ingest(t, s, lean)[0]
	if r.Outcome != health.OutcomeApplied || r.Change == nil || r.Change.Kind != health.KindRecovered || r.Change.PreviousState != health.StateDisconnected {
		t.Errorf("reconnection: %+v, want APPLIED with a recovery from DISCONNECTED", r)
	}
	if rec := mustGetHealth(t, s, acct); rec.State != health.StateHealthy {
		t.Errorf("state %v after the reconnection, want HEALTHY", rec.State)
	}

	// A lean failed retried after the account moved on is a new attempt.
	fail := failed(acct, user, "invalid_mfa", t0.Add(3*time.Minute))
	first := ingest(t, s, fail)[0]
	fail.ReceivedAt = t0.Add(4 * time.Minute)
	ingest(t, s, Event{Event: health.EventAccountsConnected, AccountID: acct, UserID: user, ReceivedAt: fail.ReceivedAt})
	fail.ReceivedAt = t0.Add(5 * time.Minute)
	again := ingest(t, s, fail)[0]
	if again.Outcome != health.OutcomeApplied || again.EntrySeq == first.EntrySeq || again.Change == nil || again.Change.Kind != health.KindAuthFailed {
		t.Errorf("failure after a reconnection: %+v, want APPLIED with an AUTH_FAILED event", again)
	}
	if rec := mustGetHealth(t, s, acct); rec.State != health.StateAuthFailed || rec.ConsecutiveFailures != 1 {
		t.Errorf("record %v with %d failures, want AUTH_FAILED with 1", rec.State, rec.ConsecutiveFailures)
	}
}

func testBatch(t *testing.T, s store.Store) {
	const accounts = 10
	codes := []string{"auth_required", "platform_unavailable", "expired_credentials"}
	var events []Event
	origIdx, dupIdx := -1, -1
	for round := range 5 {
		for a := range accounts {
			acct, user := accountID(a), userID(a%3)
			at := t0.Add(time.Duration(round)*time.Hour + time.Duration(a)*time.Second)
			switch round {
			case 0:
				events = append(events, added(acct, user, at))
			case 1:
				events = append(events, failedWithResource(acct, user, "invalid_mfa", at))
			case 2:
				events = append(events, connected(acct, user, at))
			case 3:
				events = append(events, updatedError(acct, user, codes[a%len(codes)], at))
			case 4:
				events = append(events, updatedLean(acct, user, at))
			}
		}
		if round == 1 {
			// A redelivery of a delivery committed earlier in the same batch.
			origIdx = len(events) - accounts
			dup := events[origIdx]
			dup.ReceivedAt = dup.ReceivedAt.Add(30 * time.Second)
			dupIdx = len(events)
			events = append(events, dup)
		}
	}
	events = append(events, usersFullySynced(userID(0), t0.Add(5*time.Hour)), paystubsAdded(accountID(3), userID(0), t0.Add(5*time.Hour)))
	ds := Deliveries(events...)
	res := ingestDeliveries(t, s, ds)

	m := model{}
	var wantChanges []store.Change
	prev := int64(0)
	for i, d := range ds {
		r := res[i]
		if i == dupIdx {
			if r.Outcome != health.OutcomeDuplicate || r.EntrySeq != res[origIdx].EntrySeq || r.Change != nil {
				t.Errorf("in-batch redelivery: %+v, want DUPLICATE of entry %d", r, res[origIdx].EntrySeq)
			}
			continue
		}
		w := m.apply(d)[0]
		if r.Outcome != w.Outcome {
			t.Errorf("delivery %d (%s): outcome %v, want %v", i, d.Decoded.Event, r.Outcome, w.Outcome)
		}
		if r.EntrySeq <= prev {
			t.Errorf("delivery %d: EntrySeq %d after %d", i, r.EntrySeq, prev)
		}
		prev = r.EntrySeq
		if (w.Transition == nil) != (r.Change == nil) {
			t.Errorf("delivery %d: change %+v, want transition %+v", i, r.Change, w.Transition)
			continue
		}
		if r.Change != nil {
			wantNoDiff(t, "transition", *w.Transition, r.Change.Transition)
			if r.Change.EntrySeq != r.EntrySeq {
				t.Errorf("delivery %d: change of entry %d, want %d", i, r.Change.EntrySeq, r.EntrySeq)
			}
			wantChanges = append(wantChanges, *r.Change)
		}
	}
	if len(wantChanges) == 0 {
		t.Fatal("the batch made no change: the test no longer tests the change log")
	}
	wantNoDiff(t, "change log", wantChanges, allChanges(t, s))
	for id, rec := range m {
		wantNoDiff(t, "record "+id, rec, mustGetHealth(t, s, id))
	}
}

func testCancelledContext(t *testing.T, s store.Store) {
	acct, user := accountID(1), userID(1)
	ds := Deliveries(
		failedWithResource(acct, user, "invalid_mfa", t0),
		connected(acct, user, t0.Add(time.Minute)),
		paystubsAdded(acct, user, t0.Add(2*time.Minute)),
	)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Ingest(ctx, ds); err == nil {
		t.Fatal("Ingest with a cancelled context succeeded")
	} else {
		wantErr(t, "Ingest with a cancelled context", err, context.Canceled)
		notUnavailable(t, "Ingest with a cancelled context", err)
	}
	// The caller giving up is no verdict on the store: a read stays ctx's
	// error too, never store.ErrUnavailable, which callers would retry.
	_, err := s.GetHealth(ctx, acct)
	wantErr(t, "GetHealth with a cancelled context", err, context.Canceled)
	notUnavailable(t, "GetHealth with a cancelled context", err)

	_, err = s.GetHealth(t.Context(), acct)
	wantErr(t, "GetHealth after the cancelled Ingest", err, store.ErrNotFound)
	_, err = s.ListEntries(t.Context(), store.EntryQuery{AccountID: acct})
	wantErr(t, "ListEntries after the cancelled Ingest", err, store.ErrNotFound)
	if seq := lastChangeSeq(t, s); seq != 0 {
		t.Errorf("LastChangeSeq after the cancelled Ingest = %d, want 0", seq)
	}
	// Nothing was stored, so nothing is a redelivery now.
	for i, r := range ingestDeliveries(t, s, ds) {
		if r.Outcome == health.OutcomeDuplicate {
			t.Errorf("delivery %d counted as redelivery of entry %d left by the cancelled Ingest", i, r.EntrySeq)
		}
	}
}

func lastChangeSeq(t *testing.T, s store.Store) int64 {
	t.Helper()
	seq, err := s.LastChangeSeq(t.Context())
	if err != nil {
		t.Fatalf("LastChangeSeq: %v", err)
	}
	return seq
}

// testChangePagesBoundedInBytes: pages of ReadChanges end before
// store.PageBytes of changes, here of the longest error messages a record
// keeps; read in pages, every change comes once.
func testChangePagesBoundedInBytes(t *testing.T, s store.Store) {
	var events []Event
	for i := range store.MaxPageSize {
		e := failed(accountID(i), userID(i), "invalid_mfa", t0.Add(time.Duration(i)*time.Second))
		e.ErrorMessage = strings.Repeat("m", store.PageBytes/100) // cut to what a record keeps
		events = append(events, e)
	}
	res := ingest(t, s, events...)
	var sizes [][]int
	var paged []store.Change
	for after := int64(0); ; {
		page, err := s.ReadChanges(t.Context(), after, store.MaxPageSize)
		if err != nil {
			t.Fatalf("ReadChanges(%d): %v", after, err)
		}
		if len(page) == 0 {
			break
		}
		sizes = append(sizes, itemSizes(page, store.ChangeBytes))
		paged = append(paged, page...)
		after = page[len(page)-1].Seq
	}
	checkPageCuts(t, "ReadChanges", store.MaxPageSize, sizes)
	if len(paged) != len(res) {
		t.Fatalf("read %d changes in pages, want %d", len(paged), len(res))
	}
	for i, c := range paged {
		if res[i].Change == nil || res[i].Change.Seq != c.Seq {
			t.Errorf("change %d: Seq %d, Ingest reported %+v", i, c.Seq, res[i].Change)
		}
	}
	if len(sizes) < 2 {
		t.Errorf("ReadChanges: %d changes of %d bytes in one page, want pages of at most %d bytes", len(paged), store.ChangeBytes(paged[0]), store.PageBytes)
	}
}
