package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strings"
	"time"
)

// CookieName is the session cookie's name.
const CookieName = "accounthealth_session"

// Sessions issues and checks session cookies: the caller's name and an
// expiry, signed with a key made when the process starts. The cookie
// holds no token, and nothing is kept per session on the server, so there
// is nothing to bound; a restart (or another replica) asks for the token
// again.
type Sessions struct {
	key [32]byte
	ttl time.Duration
	now func() time.Time
}

// NewSessions makes sessions that last ttl.
func NewSessions(ttl time.Duration) *Sessions {
	s := &Sessions{ttl: ttl, now: time.Now}
	rand.Read(s.key[:]) // never fails (crypto/rand panics rather)
	return s
}

// Start sets a session cookie naming caller: HttpOnly (scripts never see
// it), SameSite=Strict (other sites' requests do not carry it), Secure when
// the request came over TLS, expiring with the session.
func (s *Sessions) Start(w http.ResponseWriter, r *http.Request, caller string) {
	expires := s.now().Add(s.ttl)
	payload := binary.BigEndian.AppendUint64(nil, uint64(expires.Unix()))
	payload = append(payload, caller...)
	value := base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(s.sign(payload))
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: value, Path: "/", Expires: expires, MaxAge: int(s.ttl.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// End clears the session cookie.
func (s *Sessions) End(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// Caller returns the caller of r's session cookie; false without one, or
// with one this process did not sign or that expired.
func (s *Sessions) Caller(r *http.Request) (string, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return "", false
	}
	enc, encMAC, ok := strings.Cut(c.Value, ".")
	if !ok {
		return "", false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(enc)
	mac, err2 := base64.RawURLEncoding.DecodeString(encMAC)
	if err1 != nil || err2 != nil || len(payload) <= 8 || !hmac.Equal(mac, s.sign(payload)) {
		return "", false
	}
	if !s.now().Before(time.Unix(int64(binary.BigEndian.Uint64(payload)), 0)) {
		return "", false
	}
	return string(payload[8:]), true
}

func (s *Sessions) sign(payload []byte) []byte {
	m := hmac.New(sha256.New, s.key[:])
	m.Write(payload)
	return m.Sum(nil)
}
