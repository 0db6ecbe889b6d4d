package storetest

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// Freshness: ListHealth's freshness filter, Summary's counts by
// freshness and StaleCandidates (the record's fields: GetHealthRoundTrip).

// commit ingests ds in one Ingest and applies them to m, which follows
// what s holds.
func (m model) commit(t *testing.T, s store.Store, ds ...store.Delivery) {
	t.Helper()
	ingestDeliveries(t, s, ds)
	m.apply(ds...)
}

// judgedStale is the staleness sweeper's entries judging the accounts'
// data stale at at, each fresh as of its record in m.
func judgedStale(m model, at time.Time, accounts ...string) []store.Delivery {
	var ds []store.Delivery
	for _, a := range accounts {
		ds = append(ds, stalenessEntry(a, m[a].UserID, m[a].FreshAsOf, at))
	}
	return ds
}

// populateFreshness commits HEALTHY accounts of every freshness, for two
// users and two items, and accounts in other states that were HEALTHY
// with datasets failed, refresh disabled or stale data (and keep the first
// two verdicts), which no freshness filter may select; it returns what
// the store holds.
func populateFreshness(t *testing.T, s store.Store) model {
	t.Helper()
	u1, u2 := userID(1), userID(2)
	at := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	m := model{}
	var first []Event
	for i := range 13 {
		e := connected(accountID(i), []string{u1, u2}[i%2], at(i))
		if i == 1 || i == 4 {
			e = onItem(e, itemA)
		}
		first = append(first, e)
	}
	m.commit(t, s, Deliveries(append(first, failed(accountID(13), u1, "invalid_mfa", at(13)), added(accountID(14), u2, at(14)))...)...)
	m.commit(t, s, Deliveries(
		refreshDisabled(accountID(2), u1, at(20)),
		syncFailed(accountID(3), u2, at(20), "paystubs"),
		onItem(syncFailed(accountID(4), u1, at(20), "gigs", "paystubs"), itemA),
		syncFailed(accountID(7), u2, at(20), "paystubs"),
		refreshDisabled(accountID(8), u1, at(20)),
		refreshDisabled(accountID(11), u2, at(20)),
	)...)
	m.commit(t, s, judgedStale(m, at(30), accountID(5), accountID(6), accountID(9), accountID(12))...)
	m.commit(t, s, Deliveries(
		updatedError(accountID(7), u2, "auth_required", at(40)),
		removed(accountID(8), u1, at(40)),
		updatedError(accountID(9), u2, "platform_unavailable", at(40)),
	)...)
	seen := map[health.Freshness]int{}
	for _, r := range m {
		seen[r.Freshness]++
	}
	if len(seen) != int(health.FreshnessSyncFailed)+1 || seen[health.FreshnessFresh] < 3 {
		t.Fatalf("the test's accounts have freshnesses %v, want every one and FRESH thrice", seen)
	}
	// Left HEALTHY keeping what their scans said (staleness is forgotten).
	if r := m[accountID(7)]; r.State != health.StateDisconnected || len(r.FailedDatasets) == 0 {
		t.Fatalf("account 7 is %v with failed datasets %v, want DISCONNECTED with some", r.State, r.FailedDatasets)
	}
	if r := m[accountID(8)]; r.State != health.StateRemoved || !r.RefreshDisabled {
		t.Fatalf("account 8 is %v, refresh disabled %v, want REMOVED with refresh disabled", r.State, r.RefreshDisabled)
	}
	return m
}

func testListHealthByFreshness(t *testing.T, s store.Store) {
	m := populateFreshness(t, s)
	var (
		fresh, stale    = health.FreshnessFresh, health.FreshnessStale
		disabled, unsyn = health.FreshnessRefreshDisabled, health.FreshnessSyncFailed
		healthy         = health.StateHealthy
	)
	f := func(fs ...health.Freshness) []health.Freshness { return fs }
	queries := []store.HealthQuery{
		{Freshness: f(fresh)},
		{Freshness: f(stale)},
		{Freshness: f(disabled)},
		{Freshness: f(unsyn)},
		{Freshness: f(stale, unsyn)},
		{Freshness: f(fresh, disabled, fresh)},
		{Freshness: f(unsyn, stale, disabled, fresh)},
		{States: []health.State{healthy}, Freshness: f(stale)},
		// Several states are merged from a query each (see the drivers'
		// SQL): each must keep the filter.
		{States: []health.State{healthy, health.StateDisconnected}, Freshness: f(unsyn)},
		{States: []health.State{health.StateDisconnected, health.StateRemoved, health.StateDegraded}, Freshness: f(unsyn, disabled, stale)},
		{ErrorCodes: []string{"auth_required", "platform_unavailable"}, Freshness: f(unsyn, stale)},
		{UserID: userID(1), Freshness: f(stale)},
		{UserID: userID(2), Freshness: f(fresh, unsyn)},
		{Item: itemA, Freshness: f(fresh, unsyn)},
		{Item: itemA, UserID: userID(1), Freshness: f(unsyn)},
		{Item: defaultItem, States: []health.State{healthy, health.StateAuthFailed}, Freshness: f(disabled, fresh)},
	}
	for _, q := range queries {
		want := m.matching(q)
		// In pages of one, so that each but the last page's token carries
		// the filter on.
		q.PageSize = 1
		got, pages := listAllHealth(t, s, q, nil)
		wantNoDiff(t, fmt.Sprintf("ListHealth(%+v) in pages of 1", q), want, got)
		if pages != max(1, len(want)) {
			t.Errorf("ListHealth(%+v): %d pages, want %d", q, pages, max(1, len(want)))
		}
		q.PageSize = store.MaxPageSize
		got, _ = listAllHealth(t, s, q, nil)
		wantNoDiff(t, fmt.Sprintf("ListHealth(%+v)", q), want, got)
		for _, r := range got {
			if r.State != healthy {
				t.Errorf("ListHealth(%+v) selects account %s, %v", q, r.AccountID, r.State)
			}
		}
	}
	wantFreshnessTokens(t, s, m)
}

// wantFreshnessTokens: a token carries its freshness filter, the same
// whatever the order or repeats of its values, and no other.
func wantFreshnessTokens(t *testing.T, s store.Store, m model) {
	t.Helper()
	q := store.HealthQuery{PageSize: 2, Freshness: []health.Freshness{health.FreshnessStale, health.FreshnessFresh}}
	first, err := s.ListHealth(t.Context(), q)
	if err != nil || first.NextPageToken == "" {
		t.Fatalf("ListHealth(%+v) = %+v, %v; want a next page", q, first, err)
	}
	same := q
	same.Freshness, same.PageToken = []health.Freshness{health.FreshnessFresh, health.FreshnessStale, health.FreshnessFresh}, first.NextPageToken
	if page, err := s.ListHealth(t.Context(), same); err != nil {
		t.Errorf("ListHealth(%+v), the same filter's token: %v", same, err)
	} else {
		wantNoDiff(t, "second page of FRESH and STALE", m.matching(q)[2:4], page.Records)
	}
	for _, other := range [][]health.Freshness{nil, {health.FreshnessStale}, {health.FreshnessStale, health.FreshnessFresh, health.FreshnessSyncFailed}} {
		o := same
		o.Freshness = other
		_, err := s.ListHealth(t.Context(), o)
		wantErr(t, fmt.Sprintf("a token of freshness %v used with %v", q.Freshness, other), err, store.ErrInvalidArgument)
	}
}

// rulesBeforeFreshness play a build of before rules version 6, which knew
// no freshness: its records and changes hold none, and the sweeper's
// entries are no account event to it.
var rulesBeforeFreshness = store.Rules{Version: 5, Apply: func(cur health.Record, d health.Delivery) health.Result {
	if d.Staleness != nil {
		return health.Result{Record: cur, Outcome: health.OutcomeNotAccountEvent}
	}
	res := health.Apply(cur, d)
	r := &res.Record
	r.Freshness, r.FreshnessSince, r.FailedDatasets, r.RefreshDisabled = health.FreshnessUnknown, time.Time{}, nil, false
	r.ScannedAt, r.StaleSince, r.FreshAsOf = time.Time{}, time.Time{}, time.Time{}
	if tr := res.Transition; tr != nil {
		tr.Freshness, tr.PreviousFreshness, tr.FailedDatasets = health.FreshnessUnknown, health.FreshnessUnknown, nil
	}
	return res
}}

// testSummaryByFreshness: Summary's counts by freshness follow each
// commit that moves an account between freshnesses, out of HEALTHY and
// back, or removes it, and each rebuild that rewrites the records; each
// time, they are what a full count of the records gives, and what the
// step means to leave.
func testSummaryByFreshness(t *testing.T, open Opener) {
	s := open(store.Options{})
	a, b, c, d, u := accountID(1), accountID(2), accountID(3), accountID(4), userID(1)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	type counts = map[health.Freshness]int
	const fresh, stale, disabled, unsynced = health.FreshnessFresh, health.FreshnessStale, health.FreshnessRefreshDisabled, health.FreshnessSyncFailed
	var (
		all  []store.Delivery
		last counts
	)
	for _, step := range []struct {
		what string
		ds   []store.Delivery
		want counts
	}{
		{"four accounts connected", Deliveries(connected(a, u, at(0)), connected(b, u, at(0)), connected(c, u, at(0)), connected(d, u, at(0))), counts{fresh: 4}},
		{"a's paystubs failed to sync, c's refresh disabled", Deliveries(syncFailed(a, u, at(1), "paystubs"), refreshDisabled(c, u, at(1))),
			counts{fresh: 2, unsynced: 1, disabled: 1}},
		{"a's paystubs synced", Deliveries(rescanned(a, u, at(2), "paystubs")), counts{fresh: 3, disabled: 1}},
		// Fresh as of connected's scan, a second before it.
		{"b judged stale", []store.Delivery{stalenessEntry(b, u, at(0).Add(-time.Second), at(3))}, counts{fresh: 2, stale: 1, disabled: 1}},
		{"c disconnected", Deliveries(disabledRefresh(updatedError(c, u, "auth_required", at(4)))), counts{fresh: 2, stale: 1}},
		{"d removed", Deliveries(removed(d, u, at(5))), counts{fresh: 1, stale: 1}},
		// Without an account object: its refresh is as last seen.
		{"c reconnected", Deliveries(Event{Event: health.EventAccountsConnected, AccountID: c, UserID: u, ReceivedAt: at(6)}),
			counts{fresh: 1, stale: 1, disabled: 1}},
		{"b rescanned", Deliveries(rescanned(b, u, at(7))), counts{fresh: 2, disabled: 1}},
	} {
		ingestDeliveries(t, s, step.ds)
		all = append(all, step.ds...)
		wantFreshnessCounts(t, s, "after "+step.what, step.want)
		last = step.want
	}
	// A rebuild to rules without freshness takes every record's away, and
	// one back to the current rules gives them back.
	for _, rules := range []store.Rules{rulesBeforeFreshness, {}} {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s = open(store.Options{Rules: rules})
		p, err := s.Rebuild(t.Context(), store.RebuildOptions{Decode: decoderOf(all), Force: true})
		if err != nil || p.Changed != 4 || p.Corrections != 0 {
			t.Fatalf("Rebuild under rules %d = %+v, %v; want every record changed, no correction", rules.Version, p, err)
		}
		want := counts{}
		if rules.Apply == nil {
			want = last
		}
		wantFreshnessCounts(t, s, fmt.Sprintf("after a rebuild under rules %d", rules.Version), want)
	}
}

// wantFreshnessCounts checks that s's Summary counts by freshness want,
// and the rest as a full count does.
func wantFreshnessCounts(t *testing.T, s store.Store, when string, want map[health.Freshness]int) {
	t.Helper()
	wantSummaryCounted(t, s, when)
	if got, err := s.Summary(t.Context()); err == nil && !maps.Equal(got.ByFreshness, want) {
		t.Errorf("Summary %s counts by freshness %v, want %v", when, got.ByFreshness, want)
	}
}

// testStaleCandidates: StaleCandidates lists the HEALTHY records not
// judged stale whose data was last fresh before the bound, whatever their
// other verdicts, oldest first, up to the limit; a rescan or a return to
// freshness moves a record in that order, out of it, or back in.
func testStaleCandidates(t *testing.T, s store.Store) {
	u := userID(1)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	m := model{}
	// Committed in another order than their scans': fresh as of each
	// scan, a second before its delivery.
	m.commit(t, s, Deliveries(
		connected(accountID(3), u, at(3)), connected(accountID(1), u, at(1)), connected(accountID(4), u, at(4)), connected(accountID(2), u, at(2)),
		connected(accountID(5), u, at(0)), connected(accountID(6), u, at(0)),
		connected(accountID(7), u, at(0)), connected(accountID(8), u, at(0)), connected(accountID(9), u, at(0)),
		failed(accountID(10), u, "invalid_mfa", at(0)), added(accountID(11), u, at(0)),
		connected(accountID(12), u, at(10)), connected(accountID(13), u, at(11)),
	)...)
	m.commit(t, s, Deliveries(
		refreshDisabled(accountID(5), u, at(5)), syncFailed(accountID(6), u, at(6), "paystubs"),
		updatedError(accountID(8), u, "auth_required", at(6)), removed(accountID(9), u, at(6)),
	)...)
	m.commit(t, s, judgedStale(m, at(7), accountID(7))...)
	before := m[accountID(12)].FreshAsOf // 12's data, fresh as of the bound, is no candidate
	wantStaleCandidates(t, s, m, before, 0, 1, 2, 3, 4, 5, 6)
	wantStaleCandidates(t, s, m, before, 2, 1, 2)
	wantStaleCandidates(t, s, m, before, store.MaxPageSize, 1, 2, 3, 4, 5, 6)
	wantStaleCandidates(t, s, m, m[accountID(1)].FreshAsOf, 0)

	// 1's rescan is past the bound, 3's within it, and 7's ends its
	// staleness.
	m.commit(t, s, Deliveries(rescanned(accountID(1), u, at(12)), rescanned(accountID(3), u, at(9)), rescanned(accountID(7), u, at(8)))...)
	wantStaleCandidates(t, s, m, before, 0, 2, 4, 5, 6, 7, 3)

	for _, limit := range []int{-1, store.MaxPageSize + 1} {
		_, err := s.StaleCandidates(t.Context(), before, limit)
		wantErr(t, fmt.Sprintf("StaleCandidates with limit %d", limit), err, store.ErrInvalidArgument)
	}
}

// wantStaleCandidates checks StaleCandidates(before, limit) against the
// accounts numbered want, in that order, as m holds them.
func wantStaleCandidates(t *testing.T, s store.Store, m model, before time.Time, limit int, want ...int) {
	t.Helper()
	var cands []store.StaleCandidate
	for _, n := range want {
		r := m[accountID(n)]
		if r.State != health.StateHealthy || r.FreshAsOf.IsZero() || !r.FreshAsOf.Before(before) {
			t.Fatalf("account %d is %v, fresh as of %v: no candidate before %v; the test is wrong", n, r.State, r.FreshAsOf, before)
		}
		cands = append(cands, store.StaleCandidate{AccountID: r.AccountID, UserID: r.UserID, FreshAsOf: r.FreshAsOf})
	}
	got, err := s.StaleCandidates(t.Context(), before, limit)
	if err != nil {
		t.Fatalf("StaleCandidates(%v, %d): %v", before, limit, err)
	}
	wantNoDiff(t, fmt.Sprintf("StaleCandidates(%v, %d)", before, limit), cands, got)
}
