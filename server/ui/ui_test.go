package ui

import (
	"compress/gzip"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

const goodToken = "the-token"

func newHandler(t *testing.T, s *Sessions) http.Handler {
	t.Helper()
	h, err := New(Options{Sessions: s, Logger: slog.New(slog.DiscardHandler), Identify: func(_ *http.Request, authorization string) (string, error) {
		if authorization == "Bearer "+goodToken {
			return "token:ops", nil
		}
		return "", errors.New("unauthenticated")
	}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func login(h http.Handler, token string, viaTLS bool) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/ui/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if viaTLS {
		r.TLS = &tls.ConnectionState{}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestLoginCookie: the right token gets a cookie scripts cannot read, that
// other sites' requests do not carry, Secure under TLS, expiring; a wrong
// or missing token gets none.
func TestLoginCookie(t *testing.T) {
	s := NewSessions(time.Hour)
	h := newHandler(t, s)
	for _, viaTLS := range []bool{false, true} {
		w := login(h, goodToken, viaTLS)
		cookies := w.Result().Cookies()
		if w.Code != http.StatusOK || len(cookies) != 1 {
			t.Fatalf("login: %d, cookies %v", w.Code, cookies)
		}
		c := cookies[0]
		if c.Name != CookieName || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure != viaTLS || c.MaxAge != 3600 || c.Path != "/" {
			t.Errorf("TLS %v: cookie %+v", viaTLS, c)
		}
		r := httptest.NewRequest(http.MethodGet, "/v1/health/summary", nil)
		r.AddCookie(c)
		if caller, ok := s.Caller(r); !ok || caller != "token:ops" {
			t.Errorf("the cookie names %q, %v", caller, ok)
		}
	}
	for _, token := range []string{"wrong", ""} {
		if w := login(h, token, false); w.Code == http.StatusOK || len(w.Result().Cookies()) != 0 {
			t.Errorf("token %q: %d, cookies %v", token, w.Code, w.Result().Cookies())
		}
	}
}

// TestSessionRefused: a cookie that expired, was edited, or was signed by
// another process names nobody.
func TestSessionRefused(t *testing.T) {
	s := NewSessions(time.Hour)
	c := login(newHandler(t, s), goodToken, false).Result().Cookies()[0]
	check := func(name string, s *Sessions, value string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: CookieName, Value: value})
		if caller, ok := s.Caller(r); ok {
			t.Errorf("%s: names %q", name, caller)
		}
	}
	later := *s
	later.now = func() time.Time { return time.Now().Add(time.Hour + time.Second) }
	check("expired", &later, c.Value)
	payload, mac, _ := strings.Cut(c.Value, ".")
	check("edited", s, payload[:len(payload)-1]+"A."+mac)
	check("no signature", s, payload)
	check("another process", NewSessions(time.Hour), c.Value)
}

// TestAssets: the pages come gzipped to browsers that take it, revalidate
// by ETag, and keep to our own scripts.
func TestAssets(t *testing.T) {
	h := newHandler(t, NewSessions(time.Hour))
	get := func(path string, header ...string) *http.Response {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		for i := 0; i < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Result()
	}
	res := get("/ui/", "Accept-Encoding", "gzip, br")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /ui/: %d %v", res.StatusCode, res.Header)
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if page, _ := io.ReadAll(zr); !strings.Contains(string(page), `src="/ui/app.js"`) {
		t.Errorf("the index does not load the app: %s", page)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if again := get("/ui/", "If-None-Match", res.Header.Get("ETag")); again.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: %d", again.StatusCode)
	}
	js := get("/ui/app.js")
	if body, _ := io.ReadAll(js.Body); js.Header.Get("Content-Encoding") != "" || !strings.HasPrefix(js.Header.Get("Content-Type"), "text/javascript") || len(body) == 0 {
		t.Errorf("GET /ui/app.js without gzip: %v, %d bytes", js.Header, len(body))
	}
	if res := get("/ui/nope.js"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown asset: %d", res.StatusCode)
	}
}

// TestSessionEndpoint: the page learns whether to ask for a token.
func TestSessionEndpoint(t *testing.T) {
	s := NewSessions(time.Hour)
	h := newHandler(t, s)
	ask := func(c *http.Cookie) string {
		r := httptest.NewRequest(http.MethodGet, "/ui/session", nil)
		if c != nil {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return strings.TrimSpace(w.Body.String())
	}
	if got := ask(nil); got != `{"login":true}` {
		t.Errorf("without a session: %s", got)
	}
	c := login(h, goodToken, false).Result().Cookies()[0]
	if got := ask(c); got != `{"caller":"token:ops","session":true}` {
		t.Errorf("with a session: %s", got)
	}
}
