package provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// UserTokenLifetime is how long the provider documents a user token to
// stay valid.
const UserTokenLifetime = time.Hour

// UserToken is a token with which Link opens on one user's accounts (with
// accountId set: straight at that account's Reconnect button), and when it
// stops working. Token is a credential: String, GoString and LogValue
// redact it; never log or return it in an error.
type UserToken struct {
	Token string
	// ExpiresAt is UserTokenLifetime after the request was sent, or the
	// token's own expiry if that comes earlier within the hour. The
	// provider's answer carries no expiry field, but its user tokens are
	// JWTs whose exp claim says when they expire; an exp outside that hour
	// is taken for clock skew and ignored.
	ExpiresAt time.Time
}

// String prints the token redacted.
func (t UserToken) String() string {
	return fmt.Sprintf("provider.UserToken{Token:%q ExpiresAt:%s}", redacted(t.Token), t.ExpiresAt.Format(time.RFC3339))
}

// GoString covers %#v.
func (t UserToken) GoString() string { return t.String() }

// LogValue logs the token redacted.
func (t UserToken) LogValue() slog.Value {
	return slog.GroupValue(slog.String("token", redacted(t.Token)), slog.Time("expires_at", t.ExpiresAt))
}

// CreateUserToken mints a user token for userID. Every call mints a new
// one: callers that want one per user at a time share it themselves. It is
// retried only when the provider surely created nothing (see creating).
func (c *Client) CreateUserToken(ctx context.Context, userID string) (UserToken, error) {
	if userID == "" {
		return UserToken{}, errors.New("argyle: create user token: empty user id")
	}
	var out struct {
		Token string `json:"user_token"`
	}
	body := map[string]string{"user": userID}
	sent := time.Now()
	if err := c.do(ctx, request{method: http.MethodPost, path: "/user-tokens", body: body, policy: creating}, &out); err != nil {
		return UserToken{}, err
	}
	if out.Token == "" {
		return UserToken{}, errors.New("argyle POST /user-tokens: the answer has no user_token")
	}
	return UserToken{Token: out.Token, ExpiresAt: expiry(out.Token, sent)}, nil
}

// expiry is when a token obtained by a request sent at sent expires. The
// time of sending, not of the answer, errs on the early side.
func expiry(token string, sent time.Time) time.Time {
	limit := sent.Add(UserTokenLifetime)
	if exp, ok := jwtExpiry(token); ok && exp.After(sent) && exp.Before(limit) {
		return exp
	}
	return limit
}

// jwtExpiry reads the exp claim of a JWT. The signature is not checked:
// the token comes from the provider over TLS, and only its expiry
// is read from it, to err early.
func jwtExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp float64 `json:"exp"` // NumericDate: seconds, maybe fractional
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp <= 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(claims.Exp * 1000)), true
}
