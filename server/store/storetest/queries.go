package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// Queries: ListHealth, Summary, ListEntries and their argument checks.

// populate commits accounts in every state, for two users, in one batch
// whose order is not the account order; it returns what the store holds.
func populate(t *testing.T, s store.Store) model {
	t.Helper()
	u1, u2 := userID(1), userID(2)
	at := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	events := []Event{
		connected(accountID(8), u2, at(0)),
		added(accountID(0), u1, at(1)),
		connected(accountID(1), u1, at(2)),
		connected(accountID(3), u2, at(3)),
		connected(accountID(4), u2, at(4)),
		connected(accountID(5), u2, at(5)),
		connected(accountID(7), u1, at(6)),
		failedWithResource(accountID(2), u1, "invalid_mfa", at(7)),
		updatedError(accountID(3), u2, "auth_required", at(8)),
		updatedError(accountID(4), u2, "platform_unavailable", at(9)),
		removed(accountID(5), u2, at(10)),
		failed(accountID(6), u2, "invalid_mfa", at(11)),
		updatedError(accountID(7), u1, "expired_credentials", at(12)),
	}
	ds := Deliveries(events...)
	ingestDeliveries(t, s, ds)
	m := model{}
	m.apply(ds...)
	seen := map[health.State]bool{}
	for _, r := range m {
		seen[r.State] = true
	}
	if len(seen) != int(health.StateRemoved) {
		t.Fatalf("the test's accounts cover states %v, want every state", seen)
	}
	return m
}

// matching lists the model's records that q selects, in account order.
func (m model) matching(q store.HealthQuery) []health.Record {
	var out []health.Record
	for _, id := range slices.Sorted(maps.Keys(m)) {
		r := m[id]
		if (q.UserID == "" || r.UserID == q.UserID) && (q.Item == "" || r.Item == q.Item) &&
			(len(q.States) == 0 || slices.Contains(q.States, r.State)) &&
			(len(q.ErrorCodes) == 0 || slices.Contains(q.ErrorCodes, r.ErrorCode)) &&
			(len(q.Freshness) == 0 || r.State == health.StateHealthy && slices.Contains(q.Freshness, r.Freshness)) {
			out = append(out, r)
		}
	}
	return out
}

func testListHealthFilters(t *testing.T, s store.Store) {
	m := populate(t, s)
	u1, u2 := userID(1), userID(2)
	queries := []store.HealthQuery{
		{},
		{UserID: u1},
		{UserID: u2},
		{UserID: userID(99)},
		{States: []health.State{health.StateAuthFailed}},
		{States: []health.State{health.StateDisconnected, health.StateDegraded}},
		{ErrorCodes: []string{"auth_required"}},
		{ErrorCodes: []string{"invalid_mfa", "expired_credentials"}},
		{UserID: u2, States: []health.State{health.StateHealthy, health.StateAuthFailed}},
		{UserID: u1, States: []health.State{health.StateDisconnected}, ErrorCodes: []string{"expired_credentials", "auth_required"}},
		{States: []health.State{health.StateRemoved}, ErrorCodes: []string{"invalid_mfa"}},
		{States: []health.State{health.StateDegraded, health.StateDisconnected, health.StateDegraded}},
		{States: []health.State{health.StateAuthFailed, health.StateDisconnected}, ErrorCodes: []string{"auth_required", "invalid_mfa"}},
		{ErrorCodes: []string{"auth_required", "invalid_mfa", "auth_required"}},
		{Item: defaultItem},
		{Item: "item_none"},
		{Item: defaultItem, States: []health.State{health.StateHealthy, health.StateAuthFailed}},
	}
	for _, q := range queries {
		// In pages of 2 too: pages of several states or codes merge
		// each one's (see the drivers' SQL).
		q.PageSize = 2
		got, _ := listAllHealth(t, s, q, nil)
		wantNoDiff(t, fmt.Sprintf("ListHealth(%+v) in pages of 2", q), m.matching(q), got)
		q.PageSize = store.MaxPageSize
		page, err := s.ListHealth(t.Context(), q)
		if err != nil {
			t.Errorf("ListHealth(%+v): %v", q, err)
			continue
		}
		if page.NextPageToken != "" {
			t.Errorf("ListHealth(%+v): a next page token on the only page", q)
		}
		wantNoDiff(t, "ListHealth records", m.matching(q), page.Records)
	}
}

func testListHealthPaging(t *testing.T, s store.Store) {
	const n = 23
	var events []Event
	for i := range n {
		k := i * 7 % n // commit order is not account order
		at := t0.Add(time.Duration(i) * time.Second)
		if k%2 == 0 {
			events = append(events, connected(accountID(k), userID(k%3), at))
		} else {
			events = append(events, failed(accountID(k), userID(k%3), "invalid_mfa", at))
		}
	}
	ds := Deliveries(events...)
	ingestDeliveries(t, s, ds[:10])
	ingestDeliveries(t, s, ds[10:])
	m := model{}
	m.apply(ds...)

	for _, tc := range []struct {
		q     store.HealthQuery
		pages int
	}{
		{store.HealthQuery{PageSize: 4}, 6},
		{store.HealthQuery{PageSize: n}, 1},
		{store.HealthQuery{PageSize: n - 1}, 2},
		{store.HealthQuery{PageSize: 2, UserID: userID(1), States: []health.State{health.StateAuthFailed, health.StateHealthy}}, 4},
		{store.HealthQuery{PageSize: 1, States: []health.State{health.StateAuthFailed}}, 11},
	} {
		got, pages := listAllHealth(t, s, tc.q, nil)
		wantNoDiff(t, "records read in pages", m.matching(tc.q), got)
		if pages != tc.pages {
			t.Errorf("ListHealth(%+v): %d pages, want %d", tc.q, pages, tc.pages)
		}
	}

	// Pages continue after the last account returned: a record committed
	// meanwhile shows up if and only if it sorts after that one.
	before, after := "0190a1e3-0000-0000-0000-000000000000", accountID(1000)
	got, _ := listAllHealth(t, s, store.HealthQuery{PageSize: 4}, func() {
		ingest(t, s, failed(before, userID(1), "invalid_mfa", t0), failed(after, userID(1), "invalid_mfa", t0))
	})
	m.apply(Deliveries(failed(after, userID(1), "invalid_mfa", t0))...)
	wantNoDiff(t, "records read in pages while committing", m.matching(store.HealthQuery{}), got)
}

// testListHealthBySince: ordered by state since (ties by account id),
// either way, all records or some states, pages join up in that order.
func testListHealthBySince(t *testing.T, s store.Store) {
	const n = 17
	var events []Event
	for i := range n {
		k := i * 5 % n
		at := t0.Add(time.Duration(i/3) * time.Second) // threes in a state since the same time
		if k%3 == 0 {
			events = append(events, failed(accountID(k), userID(k%2), "invalid_mfa", at))
		} else {
			events = append(events, connected(accountID(k), userID(k%2), at))
		}
	}
	ds := Deliveries(events...)
	ingestDeliveries(t, s, ds)
	m := model{}
	m.apply(ds...)
	bySince := func(q store.HealthQuery) []health.Record {
		want := m.matching(store.HealthQuery{UserID: q.UserID, States: q.States, ErrorCodes: q.ErrorCodes})
		slices.SortFunc(want, func(a, b health.Record) int {
			c := cmp.Or(a.StateSince.Compare(b.StateSince), strings.Compare(a.AccountID, b.AccountID))
			if q.Order == store.ByStateSinceDesc {
				return -c
			}
			return c
		})
		return want
	}
	for _, order := range []store.HealthOrder{store.ByStateSinceAsc, store.ByStateSinceDesc} {
		for _, q := range []store.HealthQuery{
			{PageSize: 1}, {PageSize: 4}, {PageSize: n},
			{PageSize: 2, States: []health.State{health.StateAuthFailed}},
			{PageSize: 2, States: []health.State{health.StateAuthFailed, health.StateHealthy}},
			{PageSize: 3, UserID: userID(1)},
			{PageSize: 2, ErrorCodes: []string{"invalid_mfa"}},
		} {
			q.Order = order
			got, _ := listAllHealth(t, s, q, nil)
			if want := bySince(q); !slices.EqualFunc(got, want, func(a, b health.Record) bool { return a.AccountID == b.AccountID }) {
				t.Errorf("ListHealth(%+v): accounts %v, want %v", q, accountIDs(got), accountIDs(want))
			}
		}
	}
	// A record that enters its state meanwhile sorts last, oldest first:
	// the pages that follow show it.
	late := accountID(1000)
	q := store.HealthQuery{PageSize: 4, Order: store.ByStateSinceAsc}
	got, _ := listAllHealth(t, s, q, func() { ingest(t, s, failed(late, userID(1), "invalid_mfa", t0.Add(time.Hour))) })
	if len(got) != n+1 || got[n].AccountID != late {
		t.Errorf("ListHealth(%+v) while committing: accounts %v, want %s last", q, accountIDs(got), late)
	}
	// A token is for the order it was issued for.
	page, err := s.ListHealth(t.Context(), q)
	if err != nil || page.NextPageToken == "" {
		t.Fatalf("ListHealth(%+v) = %v, %v", q, page, err)
	}
	q.Order, q.PageToken = store.ByStateSinceDesc, page.NextPageToken
	if _, err := s.ListHealth(t.Context(), q); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("a token of ascending order used descending: %v, want ErrInvalidArgument", err)
	}
}

func accountIDs(rs []health.Record) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.AccountID
	}
	return ids
}

// listAllHealth pages through q, calling between (if set) after the first
// page, and returns the records and the number of pages.
func listAllHealth(t *testing.T, s store.Store, q store.HealthQuery, between func()) ([]health.Record, int) {
	t.Helper()
	var (
		all   []health.Record
		sizes [][]int
	)
	what := fmt.Sprintf("ListHealth(%+v)", q)
	for pages := 1; ; pages++ {
		page, err := s.ListHealth(t.Context(), q)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		all = append(all, page.Records...)
		sizes = append(sizes, itemSizes(page.Records, store.RecordBytes))
		if page.NextPageToken == "" {
			checkPageCuts(t, what, cmp.Or(q.PageSize, store.DefaultPageSize), sizes)
			return all, pages
		}
		if pages == 1 && between != nil {
			between()
		}
		q.PageToken = page.NextPageToken
	}
}

// testPagesBoundedInBytes: pages of large records and entries end before
// store.PageBytes, with a next page token, and one larger alone is a page
// of its own; read in pages, every record and entry comes once.
func testPagesBoundedInBytes(t *testing.T, s store.Store) {
	// large gives e's account object an employer name of n bytes.
	large := func(e Event, n int) Event {
		e.Resource.Employers = []string{strings.Repeat("e", n)}
		return e
	}
	third := store.PageBytes / 3
	var events []Event
	for i := range 7 {
		e := large(failedWithResource(accountID(i), userID(1), "invalid_mfa", t0), third)
		if i == 5 {
			e = large(e, store.PageBytes) // a page of its own
		}
		events = append(events, e)
	}
	// Small records fill a page with many.
	for i := 7; i < 27; i++ {
		events = append(events, failed(accountID(i), userID(1), "invalid_mfa", t0))
	}
	// One account's timeline of large deliveries.
	timeline := accountID(0)
	for i := 1; i <= 6; i++ {
		events = append(events, large(updatedError(timeline, userID(1), "auth_required", t0.Add(time.Duration(i)*time.Minute)), third))
	}
	ds := Deliveries(events...)
	ingestDeliveries(t, s, ds)
	m := model{}
	m.apply(ds...)

	q := store.HealthQuery{PageSize: store.MaxPageSize}
	got, pages := listAllHealth(t, s, q, nil)
	wantNoDiff(t, "large records read in pages", m.matching(q), got)
	// Accounts 0-1, 2-3, 4, 5 (alone), 6 and the small ones.
	if pages != 5 {
		t.Errorf("ListHealth: %d pages, want 5", pages)
	}
	entries, pages := pagedEntries(t, s, timeline, store.MaxPageSize)
	// Seven large deliveries, two to a page.
	if len(entries) != 7 || pages != 4 {
		t.Errorf("ListEntries: %d entries in %d pages, want 7 in 4", len(entries), pages)
	}
	for i := 1; i < len(entries); i++ {
		if entries[i].Seq <= entries[i-1].Seq {
			t.Fatalf("ListEntries: entry %d has Seq %d after %d, want increasing", i, entries[i].Seq, entries[i-1].Seq)
		}
	}
}

func testInvalidArguments(t *testing.T, s store.Store) {
	ctx := t.Context()
	acct := accountID(1)
	ingest(t, s,
		failed(acct, userID(1), "invalid_mfa", t0),
		failed(accountID(2), userID(1), "invalid_mfa", t0),
		updatedLean(acct, userID(1), t0.Add(time.Minute)),
	)
	hp, err := s.ListHealth(ctx, store.HealthQuery{PageSize: 1})
	if err != nil || hp.NextPageToken == "" {
		t.Fatalf("ListHealth(page size 1) = %+v, %v; want a next page", hp, err)
	}
	ep, err := s.ListEntries(ctx, store.EntryQuery{AccountID: acct, PageSize: 1})
	if err != nil || ep.NextPageToken == "" {
		t.Fatalf("ListEntries(page size 1) = %+v, %v; want a next page", ep, err)
	}
	// The tokens work where they were issued.
	if _, err := s.ListHealth(ctx, store.HealthQuery{PageSize: 1, PageToken: hp.NextPageToken}); err != nil {
		t.Errorf("ListHealth with its own token: %v", err)
	}
	if _, err := s.ListEntries(ctx, store.EntryQuery{AccountID: acct, PageSize: 1, PageToken: ep.NextPageToken}); err != nil {
		t.Errorf("ListEntries with its own token: %v", err)
	}
	if _, err := s.ListHealth(ctx, store.HealthQuery{PageSize: store.MaxPageSize}); err != nil {
		t.Errorf("ListHealth(MaxPageSize): %v", err)
	}

	listHealth := func(q store.HealthQuery) func(context.Context) error {
		return func(ctx context.Context) error { _, err := s.ListHealth(ctx, q); return err }
	}
	listEntries := func(q store.EntryQuery) func(context.Context) error {
		return func(ctx context.Context) error { _, err := s.ListEntries(ctx, q); return err }
	}
	readChanges := func(limit int) func(context.Context) error {
		return func(ctx context.Context) error { _, err := s.ReadChanges(ctx, 0, limit); return err }
	}
	for _, tc := range []struct {
		name string
		call func(context.Context) error
	}{
		{"ListHealth negative page size", listHealth(store.HealthQuery{PageSize: -1})},
		{"ListHealth page size above max", listHealth(store.HealthQuery{PageSize: store.MaxPageSize + 1})},
		{"ListHealth garbage token", listHealth(store.HealthQuery{PageToken: "not a token!"})},
		{"ListHealth base64 junk token", listHealth(store.HealthQuery{PageToken: "AAAAAAAAAAAAAAAAAAAA"})},
		{"ListHealth truncated token", listHealth(store.HealthQuery{PageSize: 1, PageToken: hp.NextPageToken[:len(hp.NextPageToken)/2]})},
		{"ListHealth entries token", listHealth(store.HealthQuery{PageToken: ep.NextPageToken})},
		{"ListHealth token of other filters", listHealth(store.HealthQuery{PageSize: 1, UserID: userID(1), PageToken: hp.NextPageToken})},
		{"ListHealth unspecified state", listHealth(store.HealthQuery{States: []health.State{health.StateUnknown}})},
		{"ListHealth unknown state", listHealth(store.HealthQuery{States: []health.State{health.StateHealthy, 99}})},
		{"ListHealth unknown freshness", listHealth(store.HealthQuery{Freshness: []health.Freshness{health.FreshnessUnknown}})},
		{"ListHealth freshness above range", listHealth(store.HealthQuery{Freshness: []health.Freshness{health.FreshnessFresh, health.FreshnessSyncFailed + 1}})},
		{"ListHealth negative freshness", listHealth(store.HealthQuery{Freshness: []health.Freshness{-1}})},
		{"ListHealth token of no freshness filter", listHealth(store.HealthQuery{PageSize: 1, Freshness: []health.Freshness{health.FreshnessFresh}, PageToken: hp.NextPageToken})},
		{"ListEntries no account", listEntries(store.EntryQuery{})},
		{"ListEntries negative page size", listEntries(store.EntryQuery{AccountID: acct, PageSize: -1})},
		{"ListEntries page size above max", listEntries(store.EntryQuery{AccountID: acct, PageSize: store.MaxPageSize + 1})},
		{"ListEntries garbage token", listEntries(store.EntryQuery{AccountID: acct, PageToken: "%%%"})},
		{"ListEntries health token", listEntries(store.EntryQuery{AccountID: acct, PageToken: hp.NextPageToken})},
		{"ListEntries token of another account", listEntries(store.EntryQuery{AccountID: accountID(2), PageToken: ep.NextPageToken})},
		{"ReadChanges negative limit", readChanges(-1)},
		{"ReadChanges limit above max", readChanges(store.MaxPageSize + 1)},
	} {
		wantErr(t, tc.name, tc.call(ctx), store.ErrInvalidArgument)
	}
}

func testSummary(t *testing.T, s store.Store) {
	empty, err := s.Summary(t.Context())
	if err != nil {
		t.Fatalf("Summary: %v", err)
	}
	if empty.Total != 0 || len(empty.ByState) != 0 || len(empty.ByErrorCode) != 0 || len(empty.ByFreshness) != 0 {
		t.Errorf("Summary of an empty store = %+v", empty)
	}

	m := populate(t, s)
	wantSummary(t, s, "of every state", summaryOf(slices.Collect(maps.Values(m))), "the records committed give")
}

func testListEntriesTimeline(t *testing.T, s store.Store) {
	a, b, user := accountID(1), accountID(2), userID(1)
	retried := failedWithResource(a, user, "invalid_mfa", t0.Add(time.Minute))
	retry := retried
	retry.ReceivedAt = retried.ReceivedAt.Add(30 * time.Second)
	batches := [][]Event{
		{added(a, user, t0), failed(b, user, "invalid_credentials", t0), retried},
		{retry, connected(a, user, t0.Add(2*time.Minute)), paystubsAdded(a, user, t0.Add(3*time.Minute))},
		{failed(b, user, "invalid_mfa", t0.Add(3*time.Minute)), updatedLean(a, user, t0.Add(4*time.Minute))},
	}
	m := model{}
	var want []store.Entry
	for _, events := range batches {
		ds := Deliveries(events...)
		for i, r := range ingestDeliveries(t, s, ds) {
			d := ds[i]
			if r.Outcome == health.OutcomeDuplicate {
				continue
			}
			if w := m.apply(d)[0]; w.Outcome != r.Outcome {
				t.Fatalf("%s: outcome %v, want %v", d.Decoded.Event, r.Outcome, w.Outcome)
			}
			if d.Decoded.AccountID != a {
				continue
			}
			want = append(want, store.Entry{
				Seq: r.EntrySeq, Source: store.SourceWebhook, Event: d.Decoded.Event, Name: d.Name,
				AccountID: a, UserID: user, ReceivedAt: d.Decoded.ReceivedAt, Outcome: r.Outcome,
				Body: d.Body, Change: r.Change,
			})
		}
	}
	want[1].Redeliveries = 1 // the retried accounts.failed
	outcomes := []health.Outcome{health.OutcomeApplied, health.OutcomeApplied, health.OutcomeApplied,
		health.OutcomeNotAccountEvent, health.OutcomeUnconfirmed}
	if len(want) != len(outcomes) {
		t.Fatalf("account %s has %d entries, want %d", a, len(want), len(outcomes))
	}
	changes := 0
	for i, e := range want {
		if e.Outcome != outcomes[i] {
			t.Errorf("entry %d (%s): outcome %v, want %v", i, e.Event, e.Outcome, outcomes[i])
		}
		if e.Change != nil {
			changes++
		}
	}
	if changes != 2 {
		t.Errorf("the timeline holds %d changes, want 2 (failed, then recovered)", changes)
	}

	wantNoDiff(t, "timeline", want, allEntries(t, s, a, 0))
	wantNoDiff(t, "timeline in pages of 2", want, allEntries(t, s, a, 2))
	if n := len(allEntries(t, s, b, 1)); n != 2 {
		t.Errorf("account %s: %d entries, want 2", b, n)
	}
	_, err := s.ListEntries(t.Context(), store.EntryQuery{AccountID: accountID(99)})
	wantErr(t, "ListEntries of an unknown account", err, store.ErrNotFound)
}

func testNonAccountEventForUnknownAccount(t *testing.T, s store.Store) {
	acct := accountID(1)
	r := ingest(t, s, paystubsAdded(acct, userID(1), t0))[0]
	if r.Outcome != health.OutcomeNotAccountEvent || r.Change != nil {
		t.Errorf("paystubs.added: %+v, want NOT_ACCOUNT_EVENT without change", r)
	}
	_, err := s.GetHealth(t.Context(), acct)
	wantErr(t, "GetHealth of an account known only from paystubs.added", err, store.ErrNotFound)
	entries := allEntries(t, s, acct, 0)
	if len(entries) != 1 || entries[0].Seq != r.EntrySeq || entries[0].Event != "paystubs.added" {
		t.Errorf("timeline %+v, want the paystubs.added entry %d", entries, r.EntrySeq)
	}
	if seq := lastChangeSeq(t, s); seq != 0 {
		t.Errorf("LastChangeSeq = %d, want 0", seq)
	}
}

func testNonAccountEventWithoutAccount(t *testing.T, s store.Store) {
	ev := usersFullySynced(userID(1), t0)
	first := ingest(t, s, ev)[0]
	if first.Outcome != health.OutcomeNotAccountEvent || first.EntrySeq <= 0 || first.Change != nil {
		t.Errorf("users.fully_synced: %+v, want NOT_ACCOUNT_EVENT stored as an entry", first)
	}
	// Recording it again changes nothing, so a retry is recorded too rather
	// than guessed a redelivery.
	ev.ReceivedAt = t0.Add(30 * time.Second)
	if r := ingest(t, s, ev)[0]; r.Outcome != health.OutcomeNotAccountEvent || r.EntrySeq <= first.EntrySeq {
		t.Errorf("retry: %+v, want NOT_ACCOUNT_EVENT as a new entry", r)
	}
	if changes := allChanges(t, s); len(changes) != 0 {
		t.Errorf("change log holds %+v, want nothing", changes)
	}
	if sum, err := s.Summary(t.Context()); err != nil || sum.Total != 0 {
		t.Errorf("Summary = %+v, %v; want no record", sum, err)
	}
}
