package store

import (
	"cmp"
	"errors"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
)

func TestHealthTokenRoundTrip(t *testing.T) {
	q := HealthQuery{UserID: "u", States: []health.State{health.StateDegraded, health.StateAuthFailed}, ErrorCodes: []string{"b", "a"}}
	q.PageToken = q.NextPageToken(health.Record{AccountID: "0190a1e3-2b7e-7d03-a1c4-3e8f5a6b7c22"})
	// The same filters in another order are the same query.
	q.States = []health.State{health.StateAuthFailed, health.StateDegraded, health.StateAuthFailed}
	q.ErrorCodes = []string{"a", "b"}
	limit, after, err := q.Cursor()
	if err != nil || limit != DefaultPageSize || after != (HealthKey{AccountID: "0190a1e3-2b7e-7d03-a1c4-3e8f5a6b7c22"}) {
		t.Errorf("Cursor() = %d, %q, %v", limit, after, err)
	}
}

func TestHealthSinceToken(t *testing.T) {
	since := time.Date(2026, 12, 1, 7, 0, 0, 5, time.UTC)
	for _, rec := range []health.Record{{AccountID: "a", StateSince: since}, {AccountID: "b"}} {
		q := HealthQuery{States: []health.State{health.StateHealthy}, Order: ByStateSinceDesc}
		q.PageToken = q.NextPageToken(rec)
		_, after, err := q.Cursor()
		want := HealthKey{AccountID: rec.AccountID, StateSince: cmp.Or(rec.StateSince, time.Unix(0, 0).UTC())}
		if err != nil || !after.StateSince.Equal(want.StateSince) || after.AccountID != want.AccountID {
			t.Errorf("Cursor() of the token after %+v = %+v, %v; want %+v", rec, after, err, want)
		}
		for _, other := range []HealthOrder{ByAccountID, ByStateSinceAsc} {
			q.Order = other
			if _, _, err := q.Cursor(); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("a token of order %d used with order %d: %v, want ErrInvalidArgument", ByStateSinceDesc, other, err)
			}
		}
	}
	if _, _, err := (HealthQuery{Order: ByStateSinceDesc + 1}).Cursor(); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("an unknown order: %v, want ErrInvalidArgument", err)
	}
}

func TestEntryTokenRoundTrip(t *testing.T) {
	q := EntryQuery{AccountID: "a", PageSize: 7}
	for _, seq := range []int64{1, 127, 128, 1 << 40, 1<<63 - 1} {
		for _, through := range []int64{0, seq - 1, 1<<63 - 1} {
			q.PageToken = q.NextPageToken(seq, through)
			limit, after, pruned, err := q.Cursor()
			if err != nil || limit != 7 || after != seq || pruned != through {
				t.Errorf("Cursor() of token for %d, pruned up to %d = %d, %d, %d, %v", seq, through, limit, after, pruned, err)
			}
		}
	}
}

// FuzzDecodeToken: no input makes the decoders panic, and whatever they
// accept they could have issued.
func FuzzDecodeToken(f *testing.F) {
	f.Add((HealthQuery{}).NextPageToken(health.Record{AccountID: "0190a1e3-2b7e-7d03-a1c4-3e8f5a6b7c22"}))
	f.Add((HealthQuery{Order: ByStateSinceDesc}).NextPageToken(health.Record{AccountID: "a", StateSince: time.Unix(1, 2)}))
	f.Add((EntryQuery{AccountID: "a"}).NextPageToken(42, 7))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, token string) {
		for _, order := range []HealthOrder{ByAccountID, ByStateSinceAsc, ByStateSinceDesc} {
			hq := HealthQuery{Order: order, PageToken: token}
			if _, after, err := hq.Cursor(); err == nil && token != "" && hq.NextPageToken(health.Record{AccountID: after.AccountID, StateSince: after.StateSince}) != token {
				t.Errorf("health token %q (order %d) accepted but not reissued", token, order)
			} else if err != nil && !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("health token %q (order %d): %v", token, order, err)
			}
		}
		eq := EntryQuery{AccountID: "a", PageToken: token}
		if _, after, pruned, err := eq.Cursor(); err == nil && token != "" && eq.NextPageToken(after, pruned) != token {
			t.Errorf("entry token %q accepted but not reissued", token)
		} else if err != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("entry token %q: %v", token, err)
		}
	})
}
