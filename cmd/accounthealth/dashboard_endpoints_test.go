package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/accounthealth/accounthealth/internal/eventually"
)

// countingReceiver answers every webhook with code and counts them.
type countingReceiver struct {
	srv *httptest.Server
	n   atomic.Int32
}

func newCountingReceiver(t *testing.T, code int) *countingReceiver {
	r := &countingReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r.n.Add(1)
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// restCreateEndpoint creates an endpoint for url through REST; its id.
func restCreateEndpoint(t *testing.T, s *server, url string) string {
	t.Helper()
	res, err := http.Post("http://"+s.rest+"/v1/endpoints", "application/json", strings.NewReader(`{"url": "`+url+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var created struct{ Endpoint struct{ ID string } }
	if err := json.NewDecoder(res.Body).Decode(&created); err != nil || res.StatusCode != http.StatusOK || created.Endpoint.ID == "" {
		t.Fatalf("create endpoint: %d %+v %v", res.StatusCode, created, err)
	}
	return created.Endpoint.ID
}

// waitREST waits until GET path answers 200 with a JSON body that,
// without white space, satisfies done.
func waitREST(t *testing.T, s *server, path, what string, done func(body string) bool) {
	t.Helper()
	eventually.Until(t, 30*time.Second, "GET "+path+" shows "+what, func() (bool, string) {
		code, body := s.restGet(t, path)
		return code == http.StatusOK && done(strings.Join(strings.Fields(body), "")), body
	})
}

// testDashboardEndpoints: one endpoint that answers 204 and one that
// answers 500, both sent the transition of one delivery. The list shows
// the first delivering, the second failing with a dead letter (the
// server's retry schedule is a single attempt); its page
// shows the attempts, and disable, enable and retry act on it.
func testDashboardEndpoints(t *testing.T, tab context.Context, s *server) {
	good, bad := newCountingReceiver(t, http.StatusNoContent), newCountingReceiver(t, http.StatusInternalServerError)
	goodID, badID := restCreateEndpoint(t, s, good.srv.URL+"/hook"), restCreateEndpoint(t, s, bad.srv.URL+"/hook")
	if got := s.post(t, updatedJSON("ep-acct-1", "ep-user", "error", "auth_required", time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))); got != http.StatusOK {
		t.Fatalf("delivery: %d", got)
	}
	waitREST(t, s, "/v1/endpoints/"+goodID+"/messages?statuses=MESSAGE_STATUS_DELIVERED", "a delivered message",
		func(b string) bool { return strings.Contains(b, "ep-acct-1") })
	waitREST(t, s, "/v1/endpoints/"+badID, "a dead letter", func(b string) bool { return strings.Contains(b, `"deadLetters":1`) })

	browse(t, tab, "open the endpoints", chromedp.Navigate("http://"+s.rest+"/ui/"), chromedp.Click(chromedp.CSS(`a[data-nav=endpoints]`)))
	rows := waitJS[map[string]map[string]string](t, tab, drawn("#/endpoints")+`Object.fromEntries([...document.querySelectorAll('#endpoints tbody tr')].map(r => [r.dataset.endpoint, {
		health: r.querySelector('[data-health]').dataset.health, dead: r.querySelector('[data-n=dead]').textContent,
		delivered: r.querySelector('td:nth-child(4)').textContent}]))`)
	if g := rows[goodID]; g["health"] != "delivering" || g["dead"] != "0" || g["delivered"] == "never" {
		t.Errorf("the answering endpoint shows %v", g)
	}
	if b := rows[badID]; b["health"] != "failing" || b["dead"] != "1" || b["delivered"] != "never" {
		t.Errorf("the failing endpoint shows %v", b)
	}

	browse(t, tab, "open the answering endpoint", chromedp.Click(chromedp.CSS(`tr[data-endpoint="`+goodID+`"] a`)))
	msg := waitJS[map[string]string](t, tab, drawn("#/endpoint/"+goodID)+`(r => r && {status: r.dataset.status, account: r.textContent})(document.querySelector('#messages tbody tr'))`)
	if msg["status"] != "delivered" || !strings.Contains(msg["account"], "ep-acct-1") {
		t.Errorf("the answering endpoint's message: %v", msg)
	}
	if codes := evalJS[[]string](t, tab, `[...document.querySelectorAll('#attempts tbody tr')].map(r => r.dataset.code)`); len(codes) != 1 || codes[0] != "204" {
		t.Errorf("the answering endpoint's attempts have codes %v, want one 204", codes)
	}
	// Its settings: the default filter and limits.
	if facts := evalJS[string](t, tab, `document.querySelector('#endpoint-facts').textContent`); !strings.Contains(facts, "every kind but the opt-in ones; no recoveries") ||
		!strings.Contains(facts, "10 in flight, no rate limit") {
		t.Errorf("the endpoint's facts %q do not say its filter and limits", facts)
	}

	browse(t, tab, "open the failing endpoint", chromedp.Navigate("http://"+s.rest+"/ui/#/endpoint/"+badID))
	codes := waitJS[[]string](t, tab, drawn("#/endpoint/"+badID)+`[...document.querySelectorAll('#attempts tbody tr')].map(r => r.dataset.code)`)
	if len(codes) != 1 || codes[0] != "500" {
		t.Errorf("the failing endpoint's attempts have codes %v, want one 500", codes)
	}
	screenshots(t, tab, "endpoint", `!!document.querySelector('#attempts tbody tr')`)
	browse(t, tab, "retry the dead letter", chromedp.Click(chromedp.CSS(`#messages tr[data-status=exhausted] button`)))
	waitJS[bool](t, tab, `document.querySelector('#action-result').textContent.includes('queued again')`)
	waitREST(t, s, "/v1/endpoints/"+badID+"/attempts", "the retried message's attempts", func(b string) bool {
		return strings.Count(b, `"statusCode":500`) == 2
	})
	if n := bad.n.Load(); n != 2 {
		t.Errorf("the failing receiver got %d requests, want 2", n)
	}

	browse(t, tab, "disable", chromedp.Click(chromedp.CSS(`#disable`)))
	reason := waitJS[string](t, tab, `!!document.querySelector('#enable') && document.querySelector('#endpoint-facts').textContent`)
	if !strings.Contains(reason, "disabled through the API by unauthenticated@127.0.0.1") {
		t.Errorf("after disabling the page says %q, want the reason with the caller", reason)
	}
	browse(t, tab, "enable", chromedp.Click(chromedp.CSS(`#enable`)))
	waitJS[bool](t, tab, `!!document.querySelector('#disable') && document.querySelector('#endpoint-facts [data-health]').dataset.health !== 'disabled'`)
}
