package providerfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"
)

// tokenLifetime is how long the provider's user tokens last.
const tokenLifetime = time.Hour

// createUserToken answers as the provider does, {"user_token": "..."},
// with no expiry beside the token: like the provider's, the token is a JWT
// whose exp claim is an hour after it was made.
func (f *Fake) createUserToken(w http.ResponseWriter, r *http.Request) {
	var in struct {
		User string `json:"user"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.User == "" {
		writeJSON(w, http.StatusBadRequest, map[string][]string{"user": {"This field is required."}})
		return
	}
	f.mu.Lock()
	f.tokens[in.User]++
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"user_token": f.mintToken(in.User)})
}

// UserTokenRequests is how many user tokens the fake made for user through
// POST /v2/user-tokens; requests answered by an injected fault or refused
// are not counted.
func (f *Fake) UserTokenRequests(user string) int { return f.count(f.tokens, user) }

// mintToken makes a user token shaped like the provider's: a JWT signed
// with the key secret, for user, expiring tokenLifetime after the fake's
// now. Its claims name only ids and times.
func (f *Fake) mintToken(user string) string {
	now := f.opts.Clock()
	claims, err := json.Marshal(map[string]any{
		"client_id": f.opts.KeyID, "iss": "providerfake", "jti": newID(),
		"sub": user, "user_id": user,
		"iat": now.Unix(), "exp": now.Add(tokenLifetime).Unix(),
	})
	if err != nil {
		panic(err) // strings and numbers: cannot fail
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(f.opts.KeySecret))
	mac.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(mac.Sum(nil))
}
