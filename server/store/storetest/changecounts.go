package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/store"
)

// testCountChanges: CountChanges buckets exactly the changes that
// ReadChanges returns, by OccurredAt and kind, with the window's start
// inclusive and its end exclusive.
func testCountChanges(t *testing.T, s store.Store) {
	from := t0.Truncate(time.Hour)
	q := store.ChangeCountQuery{From: from, To: from.Add(3 * time.Hour), Bucket: time.Hour}
	if got, err := s.CountChanges(t.Context(), q); err != nil || len(got) != 0 {
		t.Fatalf("empty store: CountChanges = %v, %v; want none", got, err)
	}
	ingest(t, s,
		failed(accountID(0), userID(0), "invalid_mfa", from.Add(-time.Nanosecond)), // before the window
		failed(accountID(1), userID(1), "invalid_mfa", from),                       // first bucket's first instant
		failed(accountID(2), userID(2), "invalid_credentials", from.Add(59*time.Minute)),
		connected(accountID(1), userID(1), from.Add(61*time.Minute)),
		removed(accountID(3), userID(3), from.Add(2*time.Hour+time.Minute)),
		failed(accountID(4), userID(4), "invalid_mfa", q.To), // the end: outside
	)
	var want []store.ChangeCount
	for _, c := range allChanges(t, s) {
		if c.OccurredAt.Before(q.From) || !c.OccurredAt.Before(q.To) {
			continue
		}
		start := q.From.Add(c.OccurredAt.Sub(q.From).Truncate(q.Bucket)).UTC()
		i := slices.IndexFunc(want, func(w store.ChangeCount) bool { return w.Start.Equal(start) && w.Kind == c.Kind })
		if i < 0 {
			want = append(want, store.ChangeCount{Start: start, Kind: c.Kind})
			i = len(want) - 1
		}
		want[i].N++
	}
	slices.SortFunc(want, func(a, b store.ChangeCount) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return int(a.Kind - b.Kind)
	})
	if len(want) < 3 || want[0].N != 2 {
		t.Fatalf("the events made %v; the test needs three buckets, the first with two changes", want)
	}
	got, err := s.CountChanges(t.Context(), q)
	if err != nil {
		t.Fatalf("CountChanges: %v", err)
	}
	if !slices.EqualFunc(got, want, func(a, b store.ChangeCount) bool { return a.Start.Equal(b.Start) && a.Kind == b.Kind && a.N == b.N }) {
		t.Errorf("CountChanges = %v\nwant %v", got, want)
	}
}

// testCountChangesInvalid: windows that are empty, reversed, off whole
// hours, bucketed in other than whole hours, too long or out of range are
// ErrInvalidArgument.
func testCountChangesInvalid(t *testing.T, s store.Store) {
	hour := t0.Truncate(time.Hour)
	for _, q := range []store.ChangeCountQuery{
		{},
		{From: t0, To: t0, Bucket: time.Hour},
		{From: t0, To: t0.Add(-time.Hour), Bucket: time.Hour},
		{From: hour, To: hour.Add(time.Hour), Bucket: time.Minute},
		{From: hour, To: hour.Add(2 * time.Hour), Bucket: 90 * time.Minute},
		{From: t0, To: t0.Add(time.Hour), Bucket: time.Hour}, // not on whole hours
		{From: hour, To: hour.Add(1001 * time.Hour), Bucket: time.Hour},
		{From: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), To: hour, Bucket: time.Hour},
	} {
		if _, err := s.CountChanges(t.Context(), q); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("CountChanges(%+v) = %v, want ErrInvalidArgument", q, err)
		}
	}
	if _, err := s.CountChanges(t.Context(), store.ChangeCountQuery{From: hour, To: hour.Add(1000 * time.Hour), Bucket: time.Hour}); err != nil {
		t.Errorf("CountChanges of exactly %d buckets: %v", store.MaxChangeBuckets, err)
	}
}
