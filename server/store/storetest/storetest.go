// Package storetest is the conformance suite every store.Store driver runs,
// so that all drivers keep the same contract: a driver's test is a few
// lines calling Run.
package storetest

import (
	"cmp"
	"errors"
	"strings"
	"testing"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// Opener opens one database (a fresh, empty one per call of a Factory)
// with opts; it may be called again to reopen the same database, e.g. with
// other options. Each store it returns is closed when the test ends (Close
// errors of store.ErrClosed ignored: a subtest may have closed it).
type Opener func(opts store.Options) store.Store

// Factory makes a fresh, empty database for a test. It must be safe to
// call concurrently.
type Factory func(t *testing.T) DB

// DB is the database a Factory made, as the suite reaches it.
type DB struct {
	// Open opens (or reopens) the database with opts, returning the
	// driver's Open's error. The suite closes what it opens.
	Open func(opts store.Options) (store.Store, error)
	// AdvanceSchema records in the database, past any open store, a
	// schema version above every one the driver knows, as a newer
	// binary's migration would.
	AdvanceSchema func(t *testing.T)
	// Tamper runs statements on the database behind any open store's
	// back, with foreign keys unenforced, as damage or a careless
	// operator would.
	Tamper func(t *testing.T, statements ...string)
}

// opener is db's Opener for t.
func (db DB) opener(t *testing.T) Opener {
	return func(opts store.Options) store.Store {
		t.Helper()
		s, err := db.Open(opts)
		return Opened(t, s, err)
	}
}

// storeTests each get a store of their own.
var storeTests = []struct {
	name string
	fn   func(*testing.T, store.Store)
}{
	{"GetHealthRoundTrip", testGetHealthRoundTrip},
	{"GetHealthNotFound", testGetHealthNotFound},
	{"BlobsReadBackExact", testBlobsReadBackExact},
	{"FailedThenConnectedChanges", testFailedThenConnectedChanges},
	{"ReadChangesPaging", testReadChangesPaging},
	{"ChangePagesBoundedInBytes", testChangePagesBoundedInBytes},
	{"DuplicateWithSnapshot", testDuplicateWithSnapshot},
	{"DuplicateWithoutSnapshotWindow", testDuplicateWithoutSnapshotWindow},
	{"IdenticalBytesNewFact", testIdenticalBytesNewFact},
	{"Batch", testBatch},
	{"CancelledContextCommitsNothing", testCancelledContext},
	{"ListHealthFilters", testListHealthFilters},
	{"ListHealthPaging", testListHealthPaging},
	{"ListHealthBySince", testListHealthBySince},
	{"ListHealthByFreshness", testListHealthByFreshness},
	{"PagesBoundedInBytes", testPagesBoundedInBytes},
	{"InvalidArguments", testInvalidArguments},
	{"Summary", testSummary},
	{"ListEntriesTimeline", testListEntriesTimeline},
	{"NonAccountEventForUnknownAccount", testNonAccountEventForUnknownAccount},
	{"NonAccountEventWithoutAccount", testNonAccountEventWithoutAccount},
	{"ConcurrentIngest", testConcurrentIngest},
	{"Closed", testClosed},
	{"ChangeSeqBefore", testChangeSeqBefore},
	{"CountChanges", testCountChanges},
	{"CountChangesInvalid", testCountChangesInvalid},
	{"APIAction", testAPIAction},
	{"ConfirmedAt", testConfirmedAt},
	{"ResultUnconfirmed", testResultUnconfirmed},
	{"SyncState", testSyncState},
	{"OldestUnconfirmed", testOldestUnconfirmed},
	{"ClaimDue", testClaimDue},
	{"ClaimDueInvalid", testClaimDueInvalid},
	{"PruneKeepsWhatItMust", testPruneKeepsWhatItMust},
	{"PruneRemovedAccounts", testPruneRemovedAccounts},
	{"PruneDuringIngest", testPruneDuringIngest},
	{"PrunedPageToken", testPrunedPageToken},
	{"PruneOutbox", testPruneOutbox},
	{"OutboxEndpoints", testOutboxEndpoints},
	{"OutboxClaims", testOutboxClaims},
	{"OutboxStep", testOutboxStep},
	{"OutboxStepRoom", testOutboxStepRoom},
	{"OutboxClaimBudget", testOutboxClaimBudget},
	{"ItemSignals", testItemSignals},
	{"ItemOutages", testItemOutages},
	{"StaleCandidates", testStaleCandidates},
}

// reopeningTests open stores of their own over one database, under the
// options they choose.
var reopeningTests = []struct {
	name string
	fn   func(*testing.T, Opener)
}{
	{"RebuildUnderNewRules", testRebuildUnderNewRules},
	{"RebuildResumes", testRebuildResumes},
	{"RebuildConcurrently", testRebuildConcurrently},
	{"RebuildDerivesConfirmedAt", testRebuildDerivesConfirmedAt},
	{"RebuildCutsMessages", testRebuildCutsMessages},
	{"ClaimDueConcurrently", testClaimDueConcurrently},
	{"CheckClean", testCheckClean},
	{"SummaryFollowsCommits", testSummaryFollowsCommits},
	{"SummaryByFreshness", testSummaryByFreshness},
	{"RedeliveryAfterRebuiltDuplicate", testRedeliveryAfterRebuiltDuplicate},
	{"OutboxClaimsConcurrently", testOutboxClaimsConcurrently},
	{"RebuildDerivesItems", testRebuildDerivesItems},
}

// Run runs the suite. Every subtest gets its own database, so no subtest
// can depend on another's leftovers or order, and they run in parallel.
func Run(t *testing.T, newDB Factory) {
	for _, tc := range storeTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newDB(t).opener(t)(store.Options{}))
		})
	}
	for _, tc := range reopeningTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newDB(t).opener(t))
		})
	}
	t.Run("CheckFindsDamage", func(t *testing.T) {
		t.Parallel()
		testCheckFindsDamage(t, newDB)
	})
	t.Run("RefusesNewerSchema", func(t *testing.T) {
		t.Parallel()
		testRefusesNewerSchema(t, newDB(t))
	})
}

// testRefusesNewerSchema: a binary must not write to a schema it does not
// know, e.g. after a rollback.
func testRefusesNewerSchema(t *testing.T, db DB) {
	const want = "newer than this binary"
	s := db.opener(t)(store.Options{})
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	// Another binary (a replica, say) migrated the database past this
	// one: not ready.
	db.AdvanceSchema(t)
	if err := s.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Ping after a newer migration: %v, want a schema version error", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s, err := db.Open(store.Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open of a newer schema succeeded")
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("Open: %v, want a schema version error", err)
	}
}

// ingest commits events in one Ingest and fails the test on error.
func ingest(t *testing.T, s store.Store, events ...Event) []store.Result {
	t.Helper()
	return ingestDeliveries(t, s, Deliveries(events...))
}

func ingestDeliveries(t *testing.T, s store.Store, ds []store.Delivery) []store.Result {
	t.Helper()
	res, err := s.Ingest(t.Context(), ds)
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	if len(res) != len(ds) {
		t.Fatalf("Ingest returned %d results for %d deliveries", len(res), len(ds))
	}
	return res
}

// allChanges reads the whole change log, a page at a time.
func allChanges(t *testing.T, s store.Store) []store.Change {
	t.Helper()
	var all []store.Change
	after := int64(0)
	for {
		page, err := s.ReadChanges(t.Context(), after, store.MaxPageSize)
		if err != nil {
			t.Fatalf("ReadChanges(%d): %v", after, err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
}

// allEntries reads an account's whole timeline with pages of size n.
func allEntries(t *testing.T, s store.Store, accountID string, n int) []store.Entry {
	t.Helper()
	all, _ := pagedEntries(t, s, accountID, n)
	return all
}

// pagedEntries is allEntries that also counts the pages, each checked by
// checkPageCuts.
func pagedEntries(t *testing.T, s store.Store, accountID string, n int) ([]store.Entry, int) {
	t.Helper()
	var (
		all   []store.Entry
		sizes [][]int
	)
	q := store.EntryQuery{AccountID: accountID, PageSize: n}
	for {
		page, err := s.ListEntries(t.Context(), q)
		if err != nil {
			t.Fatalf("ListEntries(%+v): %v", q, err)
		}
		all = append(all, page.Entries...)
		sizes = append(sizes, itemSizes(page.Entries, store.EntryBytes))
		if page.NextPageToken == "" {
			checkPageCuts(t, "ListEntries of "+accountID, cmp.Or(n, store.DefaultPageSize), sizes)
			return all, len(sizes)
		}
		q.PageToken = page.NextPageToken
	}
}

// checkPageCuts checks where a listing's pages, given by the sizes of
// their items, end: within the page size and store.PageBytes, except a
// page of one item; and each but the last full, by count or because its
// successor's first item would have taken it past store.PageBytes.
func checkPageCuts(t *testing.T, what string, pageSize int, pages [][]int) {
	t.Helper()
	for i, page := range pages {
		bytes := 0
		for _, n := range page {
			bytes += n
		}
		last := i == len(pages)-1
		switch {
		case len(page) > pageSize:
			t.Fatalf("%s: page %d holds %d items, above the page size %d", what, i+1, len(page), pageSize)
		case len(page) > 1 && bytes > store.PageBytes:
			t.Fatalf("%s: page %d holds %d items of %d bytes, above store.PageBytes", what, i+1, len(page), bytes)
		case !last && len(page) == 0:
			t.Fatalf("%s: page %d is empty but has a next page token", what, i+1)
		case !last && len(page) < pageSize && bytes+pages[i+1][0] <= store.PageBytes:
			t.Fatalf("%s: page %d ends after %d items of %d bytes, though the next item (%d bytes) fits", what, i+1, len(page), bytes, pages[i+1][0])
		}
	}
}

func itemSizes[T any](items []T, size func(T) int) []int {
	sizes := make([]int, len(items))
	for i, v := range items {
		sizes[i] = size(v)
	}
	return sizes
}

func mustGetHealth(t *testing.T, s store.Store, accountID string) health.Record {
	t.Helper()
	r, err := s.GetHealth(t.Context(), accountID)
	if err != nil {
		t.Fatalf("GetHealth(%s): %v", accountID, err)
	}
	return r
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want one wrapping %v", what, err, target)
	}
}

// notUnavailable: err must not ask callers to retry.
func notUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if errors.Is(err, store.ErrUnavailable) {
		t.Errorf("%s: %v, which is store.ErrUnavailable", what, err)
	}
}

func wantNoDiff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := diff(want, got); d != "" {
		t.Errorf("%s differs:\n%s", what, d)
	}
}

// Opened is what a test does with what a driver's Open returned: it fails
// t on err, and otherwise closes s when t ends, unless t closed it first
// (store.ErrClosed is no failure). It is how the suite's Opener and a
// driver's benchmarks register their cleanup.
func Opened[S store.Store](t testing.TB, s S, err error) S {
	t.Helper()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}
