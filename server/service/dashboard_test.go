package service_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/accounthealth/accounthealth/server/auth"
	"github.com/accounthealth/accounthealth/server/service"
)

// TestDashboardWiring: the internal listener serves the dashboard and
// sends its root there; the webhook listener serves neither; a dashboard
// session authenticates REST calls like the token it was opened with, but
// never over an Authorization header that fails.
func TestDashboardWiring(t *testing.T) {
	token, entry, err := auth.NewToken("ops")
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.ParseTokens(strings.NewReader(entry), "test")
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, nil, func(c *service.Config) { c.APITokens = tokens })
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noRedirect.Get("http://" + e.addrs.API + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	for _, path := range []string{"/", "/ui/"} {
		res, err := http.Get("http://" + e.addrs.Webhook + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("webhook listener GET %s: %d", path, res.StatusCode)
		}
	}
	res, err = http.PostForm("http://"+e.addrs.API+"/ui/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || len(res.Cookies()) != 1 {
		t.Fatalf("login: %d, cookies %v", res.StatusCode, res.Cookies())
	}
	session := res.Cookies()[0]
	for _, c := range []struct {
		name          string
		cookie        bool
		authorization string
		want          int
	}{
		{"nothing", false, "", http.StatusUnauthorized},
		{"the session", true, "", http.StatusOK},
		{"the session and a wrong token", true, "Bearer wrong", http.StatusUnauthorized},
		{"the token", false, "Bearer " + token, http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+e.addrs.API+"/v1/health/summary", nil)
		if c.cookie {
			req.AddCookie(session)
		}
		if c.authorization != "" {
			req.Header.Set("Authorization", c.authorization)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, res.StatusCode, c.want)
		}
	}
}

// TestCrossSiteRequestsRefused: a state-changing request a browser marks
// as coming from another site (Sec-Fetch-Site, or an Origin of another
// host) is refused before it is authenticated or routed; the same request
// from the dashboard's own origin, or from a client that is no browser,
// goes through.
func TestCrossSiteRequestsRefused(t *testing.T) {
	e := start(t, nil)
	e.deliver(leanBody("accounts.failed", "a1", "u1"))
	for _, c := range []struct {
		name   string
		header map[string]string
		forbid bool
	}{
		{"cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, true},
		{"same-site, other origin", map[string]string{"Sec-Fetch-Site": "same-site"}, true},
		{"other origin", map[string]string{"Origin": "http://evil.example"}, true},
		{"same origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://" + e.addrs.API}, false},
		{"no browser", nil, false},
	} {
		for _, target := range []struct{ method, path string }{
			{http.MethodDelete, "/v1/accounts/a1?dryRun=true"},
			{http.MethodPost, "/ui/login"},
		} {
			req, _ := http.NewRequest(target.method, "http://"+e.addrs.API+target.path, nil)
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if (res.StatusCode == http.StatusForbidden) != c.forbid {
				t.Errorf("%s %s %s: %d", c.name, target.method, target.path, res.StatusCode)
			}
		}
	}
}
