package provider

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/provider/providerfake"
)

func TestUserTokenExpiresWhenTheTokenSays(t *testing.T) {
	// The fake's clock, ten minutes behind, puts the token's exp claim
	// inside the documented hour from now.
	behind := time.Now().Add(-10 * time.Minute)
	_, c, _ := fakeProvider(t, providerfake.Options{Clock: func() time.Time { return behind }})
	tok, err := c.CreateUserToken(t.Context(), "u1")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(behind.Add(time.Hour).Unix(), 0); !tok.ExpiresAt.Equal(want) || tok.Token == "" {
		t.Errorf("token expires %s; want the exp claim, %s", tok.ExpiresAt, want)
	}
}

func TestUserTokenExpiresAnHourAfterTheRequestOtherwise(t *testing.T) {
	srv, _ := scripted(t, answer{status: 200, body: `{"user_token":"opaque-token-3"}`})
	before := time.Now()
	tok, err := newClient(t, srv.URL).CreateUserToken(t.Context(), "u1")
	after := time.Now()
	if err != nil || tok.Token != "opaque-token-3" {
		t.Fatalf("got %v, %v", tok, err)
	}
	if tok.ExpiresAt.Before(before.Add(UserTokenLifetime)) || tok.ExpiresAt.After(after.Add(UserTokenLifetime)) {
		t.Errorf("expires %s; want an hour after the request, between %s and %s", tok.ExpiresAt, before.Add(time.Hour), after.Add(time.Hour))
	}
}

func TestUserTokenExpiryIgnoresClaimsOutsideTheHour(t *testing.T) {
	sent := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	jwt := func(claims string) string {
		enc := base64.RawURLEncoding
		return enc.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." + enc.EncodeToString([]byte(claims)) + ".sig"
	}
	tests := []struct {
		name, token string
		want        time.Time
	}{
		{"within the hour", jwt(fmt.Sprintf(`{"exp":%d}`, sent.Add(40*time.Minute).Unix())), sent.Add(40 * time.Minute)},
		{"fractional exp", jwt(fmt.Sprintf(`{"exp":%d.5}`, sent.Add(time.Minute).Unix())), sent.Add(time.Minute + 500*time.Millisecond)},
		{"past the hour", jwt(fmt.Sprintf(`{"exp":%d}`, sent.Add(2*time.Hour).Unix())), sent.Add(time.Hour)},
		{"already expired", jwt(fmt.Sprintf(`{"exp":%d}`, sent.Add(-time.Minute).Unix())), sent.Add(time.Hour)},
		{"no exp", jwt(`{"sub":"u1"}`), sent.Add(time.Hour)},
		{"exp not a number", jwt(`{"exp":"soon"}`), sent.Add(time.Hour)},
		{"payload not base64", "a.%%%.c", sent.Add(time.Hour)},
		{"not a JWT", "opaque", sent.Add(time.Hour)},
	}
	for _, tt := range tests {
		if got := expiry(tt.token, sent); !got.Equal(tt.want) {
			t.Errorf("%s: expires %s; want %s", tt.name, got, tt.want)
		}
	}
}

func TestUserTokenPrintsRedacted(t *testing.T) {
	tok := UserToken{Token: "eyJ-secret-token-9", ExpiresAt: time.Now()}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("minted", "token", tok)
	for _, out := range []string{fmt.Sprint(tok), fmt.Sprintf("%+v", tok), fmt.Sprintf("%#v", tok), logged.String()} {
		if strings.Contains(out, "secret-token") || !strings.Contains(out, "[redacted]") {
			t.Errorf("printed %s", out)
		}
	}
	if _, err := (&Client{}).CreateUserToken(t.Context(), ""); err == nil {
		t.Error("an empty user id was accepted")
	}
}
