package reconnect

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/provider"
)

func TestTokenShareWindowAndBound(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	minted := map[string]int{}
	s := newTokenShare(func(_ context.Context, user string) (provider.UserToken, error) {
		minted[user]++
		return provider.UserToken{Token: fmt.Sprintf("%s-%d", user, minted[user])}, nil
	}, 10*time.Second, func() time.Time { return now })
	get := func(user string) string {
		tok, err := s.get(t.Context(), user)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Token
	}
	if a, b := get("u"), get("u"); a != "u-1" || b != "u-1" {
		t.Errorf("within the window: %s then %s, want one token", a, b)
	}
	now = now.Add(10 * time.Second)
	if got := get("u"); got != "u-2" {
		t.Errorf("after the window: %s, want a new token", got)
	}
	// A token too large to keep is used, not shared.
	large := strings.Repeat("x", maxSharedTokenBytes)
	if get(large) != large+"-1" || get(large) != large+"-2" {
		t.Error("a token larger than maxSharedTokenBytes was shared")
	}
	// Full of fresh tokens: a new user's token is minted but not kept.
	for i := range maxSharedTokens {
		get(fmt.Sprint("user-", i))
	}
	if len(s.recent) != maxSharedTokens {
		t.Fatalf("%d tokens kept, want the bound %d", len(s.recent), maxSharedTokens)
	}
	if get("late") != "late-1" || get("late") != "late-2" {
		t.Error("a token minted while full was shared")
	}
	// Once the others expire, room is made again.
	now = now.Add(time.Minute)
	get("later")
	if len(s.recent) != 1 {
		t.Errorf("%d tokens kept after the others expired, want 1", len(s.recent))
	}
}
