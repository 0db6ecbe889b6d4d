package storetest

import (
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/store"
)

// The provider sync: the backfill's state and the lag of reconciliation.

func testSyncState(t *testing.T, s store.Store) {
	ctx := t.Context()
	if st, err := s.SyncState(ctx); err != nil || st != (store.SyncState{}) {
		t.Fatalf("SyncState before any = %+v, %v; want the zero value", st, err)
	}
	saved := []store.SyncState{
		{Cursor: "cursor/page=2", Pages: 1, Seen: 100, Applied: 40, StartedAt: t0, UpdatedAt: t0.Add(time.Minute)},
		{Cursor: "cursor/page=3", Done: true, Pages: 2, Seen: 163, Applied: 51,
			StartedAt: t0, UpdatedAt: t0.Add(2 * time.Minute), FinishedAt: t0.Add(2 * time.Minute)},
	}
	if zero := zeroFields(saved[1]); len(zero) > 0 {
		t.Fatalf("the test's state leaves fields %v zero: their round trip would go untested", zero)
	}
	for i, want := range saved {
		if err := s.SaveSyncState(ctx, want); err != nil {
			t.Fatalf("SaveSyncState #%d: %v", i+1, err)
		}
		got, err := s.SyncState(ctx)
		if err != nil {
			t.Fatalf("SyncState: %v", err)
		}
		wantNoDiff(t, "sync state", want, got)
	}
}

// testOldestUnconfirmed: the lag of reconciliation is the oldest last
// event of the unconfirmed records, not removed.
func testOldestUnconfirmed(t *testing.T, s store.Store) {
	wantOldest := func(what string, want time.Time) {
		t.Helper()
		at, ok, err := s.OldestUnconfirmed(t.Context())
		if err != nil || ok != !want.IsZero() || !at.Equal(want) {
			t.Errorf("%s: OldestUnconfirmed = %v, %v, %v; want %v, %v", what, at, ok, err, want, !want.IsZero())
		}
	}
	wantOldest("empty store", time.Time{})
	a, b, c := accountID(1), accountID(2), accountID(3)
	ingest(t, s,
		connected(a, userID(1), t0),
		updatedLean(a, userID(1), t0.Add(2*time.Hour)),
		updatedLean(b, userID(1), t0.Add(3*time.Hour)),
		connected(c, userID(1), t0.Add(time.Hour)),
		removed(c, userID(1), t0.Add(90*time.Minute)),
	)
	wantOldest("two unconfirmed", t0.Add(2*time.Hour))
	ingest(t, s, connected(a, userID(1), t0.Add(4*time.Hour)))
	wantOldest("after the oldest was confirmed", t0.Add(3*time.Hour))
	ingest(t, s, removed(b, userID(1), t0.Add(5*time.Hour)))
	wantOldest("all confirmed or removed", time.Time{})
}
