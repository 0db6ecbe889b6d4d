package storetest

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// scanned is the provider's periodic scan of a connected account:
// accounts.updated with the account object, no change of health.
func scanned(account, user string, at time.Time) Event {
	return Event{Event: health.EventAccountsUpdated, AccountID: account, UserID: user, ReceivedAt: at,
		Resource: &Resource{Status: health.ConnectionConnected, UpdatedAt: at.Add(-time.Second), ScannedAt: at.Add(-time.Second)}}
}

// scannedHistory is rebuildHistory followed by days of scans of the
// accounts still there, so that most entries made no transition.
func scannedHistory(days int) []store.Delivery {
	ds := rebuildHistory()
	var evs []Event
	for d := 1; d <= days; d++ {
		for i := 1; i <= 5; i++ {
			evs = append(evs, scanned(accountID(i), userID(i), t0.Add(time.Duration(d)*24*time.Hour+time.Duration(i)*time.Minute)))
		}
	}
	return append(ds, Deliveries(evs...)...)
}

// storeOf is a store under the current rules holding ds, as serve leaves
// a new store.
func storeOf(t *testing.T, s store.Store, ds []store.Delivery) []store.Result {
	t.Helper()
	if _, err := s.Rebuild(t.Context(), store.RebuildOptions{Decode: decoderOf(ds)}); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	return ingestDeliveries(t, s, ds)
}

// storeView is what a test compares before and after a pass: every
// record, change and timeline of accounts 1..7.
type storeView struct {
	records  map[string]health.Record
	changes  []store.Change
	timeline map[string][]store.Entry
}

func viewOf(t *testing.T, s store.Store) storeView {
	t.Helper()
	v := storeView{records: map[string]health.Record{}, changes: allChanges(t, s), timeline: map[string][]store.Entry{}}
	for i := 1; i <= 7; i++ {
		v.records[accountID(i)] = mustGetHealth(t, s, accountID(i))
		v.timeline[accountID(i)] = allEntries(t, s, accountID(i), 0)
	}
	return v
}

// checkAndRebuildAgree: after pruning, the check is clean and a forced
// rebuild derives every record as it is.
func checkAndRebuildAgree(t *testing.T, s store.Store, decode func(store.Entry) (health.Delivery, error)) {
	t.Helper()
	if r, err := s.Check(t.Context(), store.CheckOptions{Decode: decode}); err != nil || !r.Clean() {
		t.Errorf("Check after pruning = %+v, %v; want clean", r, err)
	}
	before := viewOf(t, s)
	p, err := s.Rebuild(t.Context(), store.RebuildOptions{Decode: decode, Force: true})
	if err != nil || p.Changed != 0 || p.Outcomes != 0 || p.Undecodable != 0 {
		t.Errorf("forced Rebuild after pruning = %+v, %v; want every record and outcome derived as stored", p, err)
	}
	wantNoDiff(t, "records after the rebuild", before.records, viewOf(t, s).records)
}

// testPruneKeepsWhatItMust: pruning keeps every record (snapshots too),
// change and API action, and the bodies of what is younger than the
// retention; what it removed, a second pass does not find again; streams
// from cursor 0 still get every change.
func testPruneKeepsWhatItMust(t *testing.T, s store.Store) {
	const days = 6
	ds := scannedHistory(days)
	decode := decoderOf(ds)
	res := storeOf(t, s, ds)
	before := viewOf(t, s)

	// Keep three days of the six: the history and the first scans go.
	now := t0.Add(days * 24 * time.Hour)
	horizon := now.Add(-3*24*time.Hour - time.Hour)
	o := store.PruneOptions{Retention: now.Sub(horizon), Decode: decode, Now: func() time.Time { return now }, BatchSize: 2}
	r, err := s.Prune(t.Context(), o)
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if r.Accounts != 7 || r.Deleted == 0 || r.Stripped == 0 || r.Bytes == 0 || r.Objects != 0 || r.Undecodable != 0 {
		t.Errorf("Prune = %+v; want 7 accounts with entries deleted and bodies removed, no object", r)
	}
	after := viewOf(t, s)
	wantNoDiff(t, "records", before.records, after.records)
	wantNoDiff(t, "changes from cursor 0", before.changes, after.changes)

	deleted, stripped := 0, 0
	for id, timeline := range before.timeline {
		kept := map[int64]store.Entry{}
		for _, e := range after.timeline[id] {
			kept[e.Seq] = e
		}
		for _, e := range timeline {
			k, ok := kept[e.Seq]
			old := e.ReceivedAt.Before(horizon)
			switch {
			case !ok && (!old || e.Change != nil || e.Source != store.SourceWebhook):
				t.Errorf("account %s: entry %d (%s, %s, change %v) was deleted", id, e.Seq, e.Source, e.Event, e.Change != nil)
			case !ok:
				deleted++
			case !old && !slices.Equal(k.Body, e.Body):
				t.Errorf("account %s: entry %d, younger than the retention, lost its body", id, e.Seq)
			case old && k.Body != nil && e.Source != store.SourceRebuild:
				t.Errorf("account %s: entry %d, older than the retention, kept its body", id, e.Seq)
			case old:
				stripped++
				if k.Body = e.Body; !slices.EqualFunc([]store.Entry{k}, []store.Entry{e}, sameEntry) {
					t.Errorf("account %s: entry %d changed beyond its body: %+v, was %+v", id, e.Seq, k, e)
				}
			}
		}
	}
	if deleted != r.Deleted || stripped != r.Stripped {
		t.Errorf("%d entries deleted and %d stripped, the report says %+v", deleted, stripped, r)
	}
	if again, err := s.Prune(t.Context(), o); err != nil || again != (store.PruneReport{}) {
		t.Errorf("second Prune = %+v, %v; want nothing left to prune", again, err)
	}
	checkAndRebuildAgree(t, s, decode)

	// A redelivery of a kept delivery is still recognised; one of a
	// deleted delivery is not (its hash went with it), and its account
	// object, older than the one applied, makes it STALE.
	last := len(ds) - 1
	if got := ingestDeliveries(t, s, ds[last:]); got[0].Outcome != health.OutcomeDuplicate || got[0].EntrySeq != res[last].EntrySeq {
		t.Errorf("redelivery of a kept scan: %+v, want DUPLICATE of entry %d", got[0], res[last].EntrySeq)
	}
	// The second day's first scan: the first day's made a transition
	// (account 1 recovered), so it stays, without its body.
	second := len(ds) - (days-1)*5
	if got := ingestDeliveries(t, s, ds[second:second+1]); got[0].Outcome != health.OutcomeStale {
		t.Errorf("redelivery of a pruned scan: %+v, want STALE", got[0])
	}
	if r, err := s.Check(t.Context(), store.CheckOptions{Decode: decode}); err != nil || !r.Clean() {
		t.Errorf("Check after redeliveries = %+v, %v; want clean", r, err)
	}
}

func sameEntry(a, b store.Entry) bool { return diff(a, b) == "" }

// testPruneRemovedAccounts: a removed account loses its bodies and its
// account object once the removed retention has passed, and keeps its
// record's state and ids and its changes; the others keep everything.
func testPruneRemovedAccounts(t *testing.T, s store.Store) {
	ds := scannedHistory(1)
	decode := decoderOf(ds)
	storeOf(t, s, ds)
	before := viewOf(t, s)
	removedID := accountID(6) // connected (with its object), then removed
	if rec := before.records[removedID]; rec.State != health.StateRemoved || len(rec.Snapshot) == 0 {
		t.Fatalf("account 6 = %+v; the history no longer has the shape this test needs", rec)
	}

	o := store.PruneOptions{RemovedRetention: store.DefaultRemovedRetention, Decode: decode}
	o.Now = func() time.Time { return t0.Add(store.DefaultRemovedRetention - time.Hour) }
	if r, err := s.Prune(t.Context(), o); err != nil || r != (store.PruneReport{}) {
		t.Errorf("Prune before the delay = %+v, %v; want nothing pruned", r, err)
	}
	o.Now = func() time.Time { return t0.Add(store.DefaultRemovedRetention + time.Hour) }
	r, err := s.Prune(t.Context(), o)
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	// Accounts 6 and 7 were removed; 7 never had an object.
	if r.Accounts != 2 || r.Objects != 1 || r.Bytes == 0 {
		t.Errorf("Prune = %+v; want accounts 6 and 7 pruned, one object removed", r)
	}
	after := viewOf(t, s)
	for id, rec := range after.records {
		want := before.records[id]
		if id == removedID {
			want.Snapshot = nil
		}
		wantNoDiff(t, "record of "+id, want, rec)
		removed := rec.State == health.StateRemoved
		for _, e := range after.timeline[id] {
			if removed && e.Body != nil && e.Source != store.SourceRebuild {
				t.Errorf("removed account %s: entry %d (%s) kept its body", id, e.Seq, e.Event)
			}
		}
		if !removed {
			wantNoDiff(t, "timeline of "+id, before.timeline[id], after.timeline[id])
		}
	}
	wantNoDiff(t, "changes from cursor 0", before.changes, after.changes)
	if again, err := s.Prune(t.Context(), o); err != nil || again != (store.PruneReport{}) {
		t.Errorf("second Prune = %+v, %v; want nothing left to prune", again, err)
	}
	checkAndRebuildAgree(t, s, decode)
}

// testPruneDuringIngest: each batch is its own transaction, so ingests
// commit between a pass's batches (one is made to, from the first
// batch's progress report), and ingests racing the pass lose nothing.
func testPruneDuringIngest(t *testing.T, s store.Store) {
	ds := scannedHistory(3)
	var fresh []store.Delivery
	for i := 100; i < 160; i++ {
		fresh = append(fresh, Deliveries(connected(accountID(i), userID(i), t0.Add(5*24*time.Hour)))...)
	}
	decode := decoderOf(append(slices.Clone(ds), fresh...))
	storeOf(t, s, ds)

	var wg sync.WaitGroup
	wg.Go(func() {
		for _, d := range fresh[1:] {
			if _, err := s.Ingest(t.Context(), []store.Delivery{d}); err != nil {
				t.Errorf("Ingest during the prune: %v", err)
				return
			}
		}
	})
	now := t0.Add(4 * 24 * time.Hour)
	batches := 0
	r, err := s.Prune(t.Context(), store.PruneOptions{Retention: 24 * time.Hour, Decode: decode, BatchSize: 1,
		Now: func() time.Time { return now },
		Progress: func(store.PruneReport) {
			if batches++; batches == 1 {
				if _, err := s.Ingest(t.Context(), fresh[:1]); err != nil {
					t.Errorf("Ingest between batches: %v", err)
				}
			}
		}})
	wg.Wait()
	if err != nil || r.Accounts != 7 || batches < 7 {
		t.Fatalf("Prune = %+v after %d batches, %v; want 7 accounts, a batch each", r, batches, err)
	}
	for _, d := range fresh {
		if rec := mustGetHealth(t, s, d.Decoded.AccountID); rec.State != health.StateHealthy {
			t.Errorf("account %s ingested during the prune: %s, want HEALTHY", d.Decoded.AccountID, rec.State)
		}
	}
	if r, err := s.Check(t.Context(), store.CheckOptions{Decode: decode}); err != nil || !r.Clean() {
		t.Errorf("Check = %+v, %v; want clean", r, err)
	}
}

// testPrunedPageToken: a timeline's page token issued before a pass that
// removed entries past it is ErrOutOfRange, never a page with a silent
// gap; tokens past what was pruned, and those issued after the pass, go on.
func testPrunedPageToken(t *testing.T, s store.Store) {
	const days = 6
	ds := scannedHistory(days)
	storeOf(t, s, ds)
	id := accountID(2)
	first, err := s.ListEntries(t.Context(), store.EntryQuery{AccountID: id, PageSize: 2})
	if err != nil || first.NextPageToken == "" {
		t.Fatalf("first page = %+v, %v; want a next page", first, err)
	}
	timeline := allEntries(t, s, id, 0)
	// The token the store issues for the page after the last but one
	// entry: past anything a pass keeping three days removes.
	late := store.EntryQuery{AccountID: id, PageSize: 2}
	late.PageToken = late.NextPageToken(timeline[len(timeline)-2].Seq, 0)
	if page, err := s.ListEntries(t.Context(), late); err != nil || len(page.Entries) != 1 {
		t.Fatalf("page after the last but one entry = %+v, %v; want the last entry (the token must be the store's)", page, err)
	}

	now := t0.Add(days * 24 * time.Hour)
	if _, err := s.Prune(t.Context(), store.PruneOptions{Retention: 3 * 24 * time.Hour, Decode: decoderOf(ds), Now: func() time.Time { return now }}); err != nil {
		t.Fatalf("Prune: %v", err)
	}
	_, err = s.ListEntries(t.Context(), store.EntryQuery{AccountID: id, PageSize: 2, PageToken: first.NextPageToken})
	wantErr(t, "ListEntries with a token from before the pass", err, store.ErrOutOfRange)
	if err != nil && !strings.Contains(err.Error(), "first page") {
		t.Errorf("the error %q does not say to start again from the first page", err)
	}
	if page, err := s.ListEntries(t.Context(), late); err != nil || len(page.Entries) != 1 || page.Entries[0].Seq != timeline[len(timeline)-1].Seq {
		t.Errorf("page after the last but one entry, after the pass = %+v, %v; want the last entry", page, err)
	}
	// Paged anew, a page at a time: every entry kept, once.
	kept := allEntries(t, s, id, 0)
	wantNoDiff(t, "the timeline paged by 2 after the pass", kept, allEntries(t, s, id, 2))
	if len(kept) >= len(timeline) {
		t.Errorf("the pass removed none of the %d entries of account 2", len(timeline))
	}
}

// testPruneOutbox: retention removes the outbound messages of changes
// older than it once they are delivered or dead-lettered, with their
// attempts; pending ones stay however old, and are claimed with their
// bodies.
func testPruneOutbox(t *testing.T, s store.Store) {
	o := outboxOf(t, s)
	ctx := t.Context()
	ms := fannedIn(t, s, o, "ep")
	a1, a2, r1, r2 := ms[0].Seq, ms[1].Seq, ms[2].Seq, ms[3].Seq
	if got := claimMessages(t, o, "r1", t0); diff([]int64{a1, a2}, got) != "" {
		t.Fatalf("claim = %v, want a1 and a2", got)
	}
	record(t, o, "r1", store.Attempt{EndpointID: "ep", Seq: a1, N: 1, At: t0, StatusCode: 200}, store.MessageState{Status: store.MessageDelivered})
	record(t, o, "r1", store.Attempt{EndpointID: "ep", Seq: a2, N: 1, At: t0, StatusCode: 500, Error: "HTTP 500"}, store.MessageState{Status: store.MessageExhausted})

	now := t0.Add(48 * time.Hour)
	o24 := store.PruneOptions{Retention: 24 * time.Hour, Decode: decoderOf(Deliveries(fannedInEvents()...)), Now: func() time.Time { return now }}
	if r, err := s.Prune(ctx, o24); err != nil || r.Messages != 2 {
		t.Fatalf("Prune = %+v, %v; want the delivered and the dead-lettered message removed", r, err)
	}
	page, err := o.ListMessages(ctx, store.MessageQuery{EndpointID: "ep"})
	var kept []int64
	for _, m := range page.Messages {
		kept = append(kept, m.Seq)
	}
	if err != nil || diff([]int64{r2, r1}, kept) != "" {
		t.Errorf("ListMessages after pruning = %v, %v; want the pending r2 and r1", kept, err)
	}
	if attempts, err := o.ListAttempts(ctx, store.AttemptQuery{EndpointID: "ep"}); err != nil || len(attempts.Attempts) != 0 {
		t.Errorf("ListAttempts after pruning = %+v, %v; want none", attempts, err)
	}
	if got := claimMessages(t, o, "r2", now); diff([]int64{r1, r2}, got) != "" {
		t.Errorf("claim after pruning = %v, want the recoveries, now heads, with their bodies", got)
	}
	if r, err := s.Prune(ctx, o24); err != nil || r.Messages != 0 {
		t.Errorf("a second Prune = %+v, %v; want nothing left to remove", r, err)
	}
}
