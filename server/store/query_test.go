package store

import (
	"errors"
	"testing"

	"github.com/accounthealth/accounthealth/server/health"
)

func TestHealthTokenRoundTrip(t *testing.T) {
	q := HealthQuery{UserID: "u", States: []health.State{health.StateDegraded, health.StateAuthFailed}, ErrorCodes: []string{"b", "a"}}
	q.PageToken = q.NextPageToken("0190a1e3-2b7e-7d03-a1c4-3e8f5a6b7c22")
	// The same filters in another order are the same query.
	q.States = []health.State{health.StateAuthFailed, health.StateDegraded, health.StateAuthFailed}
	q.ErrorCodes = []string{"a", "b"}
	limit, after, err := q.Cursor()
	if err != nil || limit != DefaultPageSize || after != "0190a1e3-2b7e-7d03-a1c4-3e8f5a6b7c22" {
		t.Errorf("Cursor() = %d, %q, %v", limit, after, err)
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
	f.Add((HealthQuery{}).NextPageToken("0190a1e3-2b7e-7d03-a1c4-3e8f5a6b7c22"))
	f.Add((EntryQuery{AccountID: "a"}).NextPageToken(42, 7))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, token string) {
		hq := HealthQuery{PageToken: token}
		if _, after, err := hq.Cursor(); err == nil && token != "" && hq.NextPageToken(after) != token {
			t.Errorf("health token %q accepted but not reissued", token)
		} else if err != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("health token %q: %v", token, err)
		}
		eq := EntryQuery{AccountID: "a", PageToken: token}
		if _, after, pruned, err := eq.Cursor(); err == nil && token != "" && eq.NextPageToken(after, pruned) != token {
			t.Errorf("entry token %q accepted but not reissued", token)
		} else if err != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("entry token %q: %v", token, err)
		}
	})
}
