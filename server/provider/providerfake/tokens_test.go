package providerfake_test

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/provider/providerfake"
)

func TestUserTokensAreJWTsExpiringInAnHour(t *testing.T) {
	fixed := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	e := start(t, providerfake.Options{Clock: func() time.Time { return fixed }})
	status, body := e.authed(t, "POST", "/v2/user-tokens", `{"user":"u1"}`)
	var answer map[string]string
	if status != http.StatusOK || json.Unmarshal([]byte(body), &answer) != nil {
		t.Fatalf("%d %s", status, body)
	}
	if keys := slices.Collect(maps.Keys(answer)); !slices.Equal(keys, []string{"user_token"}) {
		t.Errorf("answer has %v; the provider answers user_token alone", keys)
	}
	parts := strings.Split(answer["user_token"], ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", answer["user_token"])
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Sub      string
		Exp, Iat int64
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Sub != "u1" || claims.Iat != fixed.Unix() || claims.Exp != fixed.Add(time.Hour).Unix() {
		t.Errorf("claims %s; want sub u1, expiring an hour after %s", payload, fixed)
	}
}

func TestUserTokenRequestsAreCounted(t *testing.T) {
	e := start(t, providerfake.Options{})
	mustDo(t, e.fake.AddFault(providerfake.Fault{Route: "POST /v2/user-tokens", Status: 429, RetryAfter: "0", Times: 1}))
	const n = 5
	var wg sync.WaitGroup
	tokens := make([]string, n)
	for i := range n {
		wg.Go(func() {
			tok, err := e.client.CreateUserToken(t.Context(), "u1")
			if err != nil {
				t.Error(err)
			}
			tokens[i] = tok.Token
		})
	}
	wg.Wait()
	if got := e.fake.UserTokenRequests("u1"); got != n {
		t.Errorf("UserTokenRequests(u1) = %d; want %d: one per call, the one refused with 429 not counted", got, n)
	}
	slices.Sort(tokens)
	if len(slices.Compact(tokens)) != n {
		t.Error("two calls got the same token")
	}
	if e.fake.UserTokenRequests("u2") != 0 {
		t.Error("u2 counted")
	}
	e.authed(t, "POST", "/v2/user-tokens", `{}`)
	if e.fake.UserTokenRequests("") != 0 {
		t.Error("a request without a user was counted")
	}
}
