package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/accounthealth/accounthealth/server/auth"
	"github.com/accounthealth/accounthealth/server/provider/providerfake"
)

// seededAccounts is the dashboard tests' store: more than a page of 50.
const seededAccounts = 60

// TestDashboard drives the dashboard in one Chromium against the built
// binary in development mode (no credentials: the pages open directly),
// with the fake provider behind it, then against one with API tokens.
func TestDashboard(t *testing.T) {
	browser := startBrowser(t)
	fake := providerfake.New(providerfake.Options{})
	t.Cleanup(fake.Close)
	provider := httptest.NewServer(fake.Handler())
	t.Cleanup(provider.Close)
	dir := t.TempDir()
	seedHistory(t, dir, seededAccounts)
	env := []string{"ACCOUNTHEALTH_ARGYLE_API_URL=" + provider.URL + "/v2", "ACCOUNTHEALTH_ARGYLE_API_KEY_ID=" + providerfake.DefaultKeyID,
		"ACCOUNTHEALTH_ARGYLE_API_KEY_SECRET=" + providerfake.DefaultKeySecret,
		// Nothing but the test changes the accounts.
		"ACCOUNTHEALTH_SYNC_ON_START=false", "ACCOUNTHEALTH_RECONCILE_INTERVAL=0",
		// A failing endpoint's message is a dead letter after one attempt.
		"ACCOUNTHEALTH_NOTIFY_RETRY_SCHEDULE=0s"}
	s := serve(t, dir, env...)

	t.Run("Overview", func(t *testing.T) { testDashboardOverview(t, openTab(t, browser), s) })
	// The search for an unknown account is a 404 of GetAccountHealth.
	t.Run("AccountsFiltersAndPaging", func(t *testing.T) { testDashboardAccounts(t, openTab(t, browser, "404"), s) })
	t.Run("AccountDetailAndDelete", func(t *testing.T) { testDashboardAccount(t, openTab(t, browser), s) })
	t.Run("Refresh", func(t *testing.T) { testDashboardRefresh(t, openTab(t, browser), s) })
	// After the tests that count the seeded accounts: it adds one.
	t.Run("Freshness", func(t *testing.T) { testDashboardFreshness(t, openTab(t, browser), s) })
	t.Run("CrossSitePostRefused", func(t *testing.T) { testDashboardCrossSite(t, openTab(t, browser, "403", "404"), s) })
	t.Run("NotOnWebhookListener", func(t *testing.T) {
		for _, path := range []string{"/", "/ui/", "/ui/app.js"} {
			res, err := http.Get("http://" + s.webhook + path)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusNotFound {
				t.Errorf("webhook listener GET %s: %d, want 404", path, res.StatusCode)
			}
		}
	})
	t.Run("Endpoints", func(t *testing.T) { testDashboardEndpoints(t, openTab(t, browser), s) })
	// Last: it restarts the server.
	t.Run("LiveFeed", func(t *testing.T) {
		testDashboardFeed(t, openTab(t, browser, "ERR_CONNECTION_REFUSED", "ERR_EMPTY_RESPONSE", "ERR_INCOMPLETE_CHUNKED_ENCODING"), s, dir, env)
	})
	t.Run("TokenLogin", func(t *testing.T) { testDashboardLogin(t, openTab(t, browser, "401")) })
}

// summaryJSON is GetHealthSummary over REST, counts by short name.
func summaryJSON(t *testing.T, s *server) (total int, byState, byCode map[string]int) {
	t.Helper()
	var sum struct {
		Total   string
		ByState []struct {
			State string
			Count string
		}
		ByErrorCode []struct {
			ErrorCode string
			Count     string
		}
	}
	if err := json.Unmarshal([]byte(s.restBody(t, "/v1/health/summary")), &sum); err != nil {
		t.Fatal(err)
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	byState, byCode = map[string]int{}, map[string]int{}
	for _, c := range sum.ByState {
		byState[strings.ToLower(strings.TrimPrefix(c.State, "HEALTH_STATE_"))] = atoi(c.Count)
	}
	for _, c := range sum.ByErrorCode {
		byCode[c.ErrorCode] = atoi(c.Count)
	}
	return atoi(sum.Total), byState, byCode
}

// digits reads a number the page formatted for people.
func digits(s string) int {
	n, _ := strconv.Atoi(strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s))
	return n
}

func testDashboardOverview(t *testing.T, tab context.Context, s *server) {
	browse(t, tab, "open the root", chromedp.Navigate("http://"+s.rest+"/"))
	waitJS[bool](t, tab, `!!document.querySelector('[data-count=total]') && !!document.querySelector('#chart g.bar')`)
	if loc := evalJS[string](t, tab, `location.pathname`); loc != "/ui/" {
		t.Errorf("the root opened %s, want /ui/", loc)
	}
	cards := evalJS[map[string]string](t, tab, `Object.fromEntries([...document.querySelectorAll('[data-count]')].map(e => [e.dataset.count, e.querySelector('.n').textContent]))`)
	total, byState, byCode := summaryJSON(t, s)
	if total != seededAccounts || digits(cards["total"]) != total {
		t.Errorf("total: page %q, summary %d, seeded %d", cards["total"], total, seededAccounts)
	}
	if got, want := digits(cards["attention"]), byState["auth_failed"]+byState["disconnected"]; got != want || want == 0 {
		t.Errorf("need attention: page %q, summary %d", cards["attention"], want)
	}
	for state, n := range byState {
		if digits(cards[state]) != n {
			t.Errorf("%s: page %q, summary %d", state, cards[state], n)
		}
	}
	codes := evalJS[map[string]string](t, tab, `Object.fromEntries([...document.querySelectorAll('#top-codes td[data-code]')].map(e => [e.dataset.code, e.textContent]))`)
	if len(codes) != len(byCode) {
		t.Errorf("top codes: page %v, summary %v", codes, byCode)
	}
	for code, n := range byCode {
		if digits(codes[code]) != n {
			t.Errorf("code %s: page %q, summary %d", code, codes[code], n)
		}
	}
	// The bars hold every transition of the window; a focused bar tells
	// its numbers.
	day := evalJS[int](t, tab, `[...document.querySelectorAll('#chart g.bar')].reduce((n, g) => n + Number(g.dataset.total), 0)`)
	bars := evalJS[int](t, tab, `document.querySelectorAll('#chart g.bar').length`)
	if bars != 24 || day == 0 {
		t.Errorf("24-hour chart: %d bars, %d transitions", bars, day)
	}
	detail := evalJS[string](t, tab, `(() => { const g = [...document.querySelectorAll('#chart g.bar')].find(g => g.dataset.total > 0); g.focus(); return document.querySelector('#chart-detail').textContent })()`)
	if !strings.Contains(detail, "disconnected") && !strings.Contains(detail, "recovered") && !strings.Contains(detail, "auth failed") {
		t.Errorf("a focused bar's detail: %q", detail)
	}
	// The legend names every kind a bar may be drawn with.
	drawn := waitJS[string](t, tab, `(() => {
		window.chartKinds ??= Promise.all([import('/ui/chart.js'), import('/ui/dom.js')]).then(([chart, dom]) => { window.chartKinds = chart.KINDS.map(k => 'k-' + dom.kindKey(k)).join(' ') });
		return typeof window.chartKinds === 'string' && window.chartKinds })()`)
	if legend := evalJS[string](t, tab, `[...document.querySelectorAll('.legend .badge')].map(b => [...b.classList].find(c => c.startsWith('k-'))).join(' ')`); legend != drawn {
		t.Errorf("the chart's legend names %q, its bars may be %q", legend, drawn)
	}
	browse(t, tab, "show 30 days", chromedp.Click(chromedp.CSS(`button[data-window=month]`)))
	month := waitJS[int](t, tab, `document.querySelector('#chart').dataset.window === 'month' && document.querySelectorAll('#chart g.bar').length === 30 && [...document.querySelectorAll('#chart g.bar')].reduce((n, g) => n + Number(g.dataset.total), 0)`)
	if month <= day {
		t.Errorf("30 days hold %d transitions, the last 24 hours %d: the seeded history spans the month", month, day)
	}
	browse(t, tab, "show 24 hours", chromedp.Click(chromedp.CSS(`button[data-window=day]`)))
	screenshots(t, tab, "overview", `!!document.querySelector('#chart g.bar')`)
	// An error code links to the accounts with it.
	browse(t, tab, "follow a code", chromedp.Click(chromedp.CSS(`#top-codes a`)))
	waitJS[bool](t, tab, `location.hash.startsWith('#/accounts?code=') && !!document.querySelector('#accounts tbody tr')`)
}

// drawn is a condition that the dashboard shows the route hash, followed
// by && to chain an expression evaluated once it does.
func drawn(hash string) string {
	return "document.querySelector('main').dataset.drawn === " + strconv.Quote(hash) + " && "
}

// rowsJS lists the accounts table's rows as account -> state.
const rowsJS = `Object.fromEntries([...document.querySelectorAll('#accounts tbody tr')].map(r => [r.dataset.account, r.querySelector('[data-state]').dataset.state]))`

func testDashboardAccounts(t *testing.T, tab context.Context, s *server) {
	browse(t, tab, "open the accounts", chromedp.Navigate("http://"+s.rest+"/ui/#/accounts"))
	first := waitJS[map[string]string](t, tab, `document.querySelectorAll('#accounts tbody tr').length > 0 && `+rowsJS)
	if len(first) != 50 {
		t.Fatalf("first page: %d rows, want 50", len(first))
	}
	browse(t, tab, "next page", chromedp.Click(chromedp.CSS(`#next-page`)))
	second := waitJS[map[string]string](t, tab, `document.querySelector('main').dataset.drawn.includes('page=') && `+rowsJS)
	if len(second) != seededAccounts-50 {
		t.Errorf("second page: %d rows, want %d", len(second), seededAccounts-50)
	}
	for a := range second {
		if _, ok := first[a]; ok {
			t.Errorf("%s on both pages", a)
		}
	}
	_, byState, _ := summaryJSON(t, s)
	browse(t, tab, "filter by state", setField(`#filter-state`, "AUTH_FAILED"), chromedp.Click(chromedp.CSS(`#filters button[type=submit]`)))
	failed := waitJS[map[string]string](t, tab, drawn("#/accounts?state=AUTH_FAILED")+rowsJS)
	if len(failed) != byState["auth_failed"] {
		t.Errorf("AUTH_FAILED filter: %d rows, summary says %d", len(failed), byState["auth_failed"])
	}
	for a, st := range failed {
		if st != "auth_failed" {
			t.Errorf("AUTH_FAILED filter shows %s in %s", a, st)
		}
	}
	browse(t, tab, "filter by code and user", setField(`#filter-state`, ""), setField(`#filter-code`, "auth_required"),
		chromedp.Click(chromedp.CSS(`#filters button[type=submit]`)))
	codes := waitJS[[]string](t, tab, drawn("#/accounts?code=auth_required")+`[...document.querySelectorAll('#accounts tbody tr td:nth-child(4)')].map(td => td.textContent)`)
	if len(codes) == 0 {
		t.Error("code filter: no rows")
	}
	for _, c := range codes {
		if c != "auth_required" {
			t.Errorf("code filter shows code %q", c)
		}
	}
	browse(t, tab, "search an account", setField(`#filter-code`, ""), setField(`#filter-account`, "seed-0000001"),
		chromedp.Click(chromedp.CSS(`#filters button[type=submit]`)))
	one := waitJS[map[string]string](t, tab, drawn("#/accounts?account=seed-0000001")+rowsJS)
	if len(one) != 1 || one["seed-0000001"] == "" {
		t.Errorf("account search: %v", one)
	}
	browse(t, tab, "search an unknown account", chromedp.Navigate("http://"+s.rest+"/ui/#/accounts?account=nobody"))
	waitJS[bool](t, tab, `!!document.querySelector('#no-accounts')`)
	testDashboardSortBySince(t, tab, s)
}

// testDashboardSortBySince: the "In state since" header sorts the table
// as ListAccountHealth orders it, the longest in their state first, then,
// clicked again, the newest first.
func testDashboardSortBySince(t *testing.T, tab context.Context, s *server) {
	browse(t, tab, "open the accounts", chromedp.Navigate("http://"+s.rest+"/ui/#/accounts"))
	for _, order := range []string{"state_since_asc", "state_since_desc"} {
		browse(t, tab, "sort "+order, chromedp.Click(chromedp.CSS(`#sort-since`)))
		ids := waitJS[[]string](t, tab, drawn("#/accounts?order="+order)+`[...document.querySelectorAll('#accounts tbody tr')].map(r => r.dataset.account)`)
		var page struct{ Accounts []struct{ AccountID string } }
		if err := json.Unmarshal([]byte(s.restBody(t, "/v1/accounts/health?pageSize=50&orderBy="+order)), &page); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, a := range page.Accounts {
			want = append(want, a.AccountID)
		}
		if len(ids) != 50 || !slices.Equal(ids, want) {
			t.Errorf("sorted %s: the page shows %v, the API %v", order, ids, want)
		}
		since := evalJS[[]float64](t, tab, `[...document.querySelectorAll('#accounts tbody td[data-since]')].map(td => Date.parse(td.dataset.since))`)
		if order == "state_since_desc" {
			slices.Reverse(since)
		}
		sorted := slices.IsSorted(since)
		if !sorted || since[0] == since[len(since)-1] {
			t.Errorf("sorted %s: times in state %v", order, since)
		}
		if aria := evalJS[string](t, tab, `document.querySelector('#sort-since').parentElement.getAttribute('aria-sort')`); aria != map[string]string{"state_since_asc": "ascending", "state_since_desc": "descending"}[order] {
			t.Errorf("sorted %s: aria-sort %q", order, aria)
		}
	}
	browse(t, tab, "next page sorted", chromedp.Click(chromedp.CSS(`#next-page`)))
	if n := waitJS[int](t, tab, `document.querySelector('main').dataset.drawn.includes('page=') && document.querySelectorAll('#accounts tbody tr').length`); n != seededAccounts-50 {
		t.Errorf("second page sorted: %d rows, want %d", n, seededAccounts-50)
	}
}

func testDashboardAccount(t *testing.T, tab context.Context, s *server) {
	// seed-0000001 failed at login and never connected: deletable.
	const acct = "seed-0000001"
	browse(t, tab, "open the account", chromedp.Navigate("http://"+s.rest+"/ui/#/account/"+acct))
	waitJS[bool](t, tab, `!!document.querySelector('#timeline tbody tr') && !!document.querySelector('#facts')`)
	var events struct{ Events []json.RawMessage }
	if err := json.Unmarshal([]byte(s.restBody(t, "/v1/accounts/"+acct+"/events")), &events); err != nil {
		t.Fatal(err)
	}
	if rows := evalJS[int](t, tab, `document.querySelectorAll('#timeline tbody tr').length`); rows != len(events.Events) {
		t.Errorf("timeline: %d rows, the API has %d events", rows, len(events.Events))
	}
	facts := evalJS[string](t, tab, `document.querySelector('#facts').textContent`)
	for _, want := range []string{"invalid_credentials", "Ever connected", "no", "Failures in a row", "1"} {
		if !strings.Contains(facts, want) {
			t.Errorf("facts lack %q: %s", want, facts)
		}
	}
	if remedy := evalJS[string](t, tab, `document.querySelector('#remedy').textContent`); remedy == "" {
		t.Error("no remedy sentence")
	}
	if evalJS[bool](t, tab, `!!document.querySelector('#freshness')`) {
		t.Error("an AUTH_FAILED account shows a data freshness")
	}
	if evalJS[bool](t, tab, `document.querySelector('#snapshot').open`) {
		t.Error("the account object is expanded before asked")
	}
	screenshots(t, tab, "account", `!!document.querySelector('#timeline tbody tr')`)
	browse(t, tab, "reconnect link", chromedp.Click(chromedp.CSS(`#reconnect`)))
	if link := waitJS[string](t, tab, `document.querySelector('#reconnect-value')?.value`); !strings.Contains(link, "userToken") && !strings.HasPrefix(link, "http") {
		t.Errorf("reconnect link %q", link)
	}
	// Delete: a dry run first, then the confirmation.
	browse(t, tab, "dry run", chromedp.Click(chromedp.CSS(`#delete`)))
	dry := waitJS[string](t, tab, `document.querySelector('#confirm-delete') && document.querySelector('#action-result').textContent`)
	if !strings.Contains(dry, "would delete") {
		t.Errorf("dry run says %q", dry)
	}
	if st := s.restBody(t, "/v1/accounts/"+acct+"/health"); !strings.Contains(st, "HEALTH_STATE_AUTH_FAILED") {
		t.Fatalf("the dry run changed the account: %s", st)
	}
	browse(t, tab, "confirm", chromedp.Click(chromedp.CSS(`#confirm-delete`)))
	outcome := waitJS[string](t, tab, `document.querySelector('[data-state=removed]') && document.querySelector('#timeline tr[data-source=api]') && document.querySelector('#action-result').textContent`)
	if !strings.Contains(outcome, "Deletion: already gone") { // the fake never heard of the seeded accounts
		t.Errorf("after the deletion the page says %q", outcome)
	}
	actor := evalJS[string](t, tab, `document.querySelector('#timeline tr[data-source=api] td:nth-child(3)').textContent`)
	if !strings.Contains(actor, "unauthenticated@127.0.0.1") {
		t.Errorf("the deletion is audited as %q, want the caller", actor)
	}
}

// testDashboardRefresh: the refresh button asks the provider, which (the
// fake) does not know the account: it ends removed, shown at once.
func testDashboardRefresh(t *testing.T, tab context.Context, s *server) {
	browse(t, tab, "open the account", chromedp.Navigate("http://"+s.rest+"/ui/#/account/seed-0000009"))
	waitJS[bool](t, tab, `!!document.querySelector('#refresh')`)
	browse(t, tab, "refresh", chromedp.Click(chromedp.CSS(`#refresh`)))
	waitJS[bool](t, tab, `!!document.querySelector('.remedy [data-state=removed]')`)
}

// testDashboardFreshness: a HEALTHY account whose paystubs failed to sync
// is the one in the overview's "sync failed" card, whose link lists it
// alone, its freshness in its row; its page tells the failure, and its
// timeline the change of freshness (its state stayed HEALTHY).
func testDashboardFreshness(t *testing.T, tab context.Context, s *server) {
	const acct = "fresh-ui-1"
	at := time.Now().Add(-2 * time.Hour)
	s.deliver(t, updatedJSON(acct, "user-fresh", "connected", "", at),
		withFields(updatedJSON(acct, "user-fresh", "connected", "", at.Add(time.Hour)), `"availability":{"paystubs":{"status":"sync_failed"},"gigs":{"status":"synced"}}`))
	browse(t, tab, "open the overview", chromedp.Navigate("http://"+s.rest+"/ui/#/"))
	cards := waitJS[[][]string](t, tab, `document.querySelectorAll('[data-freshness]').length > 0 && [...document.querySelectorAll('[data-freshness]')].map(e => [e.dataset.freshness, e.querySelector('.n').textContent])`)
	var names []string
	byFreshness, healthy := map[string]int{}, 0
	for _, c := range cards {
		names = append(names, c[0])
		byFreshness[c[0]] = digits(c[1])
		healthy += digits(c[1])
	}
	if got := strings.Join(names, ","); got != "fresh,stale,refresh_disabled,sync_failed" {
		t.Errorf("freshness cards %s, want every status in the API's order", got)
	}
	// The same summary drew the state cards: the HEALTHY count is the sum.
	if n := digits(evalJS[string](t, tab, `document.querySelector('[data-count=healthy] .n').textContent`)); healthy != n || byFreshness["sync_failed"] != 1 {
		t.Errorf("freshness cards %v: want sync_failed 1, and %d in all as HEALTHY", cards, n)
	}
	browse(t, tab, "follow sync failed", chromedp.Click(chromedp.CSS(`a[data-freshness=sync_failed]`)))
	const freshnessJS = `Object.fromEntries([...document.querySelectorAll('#accounts tbody tr')].map(r => [r.dataset.account, r.querySelector('[data-freshness]')?.textContent ?? '']))`
	rows := waitJS[map[string]string](t, tab, drawn("#/accounts?freshness=SYNC_FAILED")+freshnessJS)
	if len(rows) != 1 || rows[acct] != "sync failed (paystubs)" {
		t.Errorf("the sync failed accounts: %v, want %s alone, sync failed (paystubs)", rows, acct)
	}
	// The form shows the filter and keeps it beside another.
	browse(t, tab, "filter by state too", setField(`#filter-state`, "HEALTHY"), chromedp.Click(chromedp.CSS(`#filters button[type=submit]`)))
	if both := waitJS[map[string]string](t, tab, drawn("#/accounts?state=HEALTHY&freshness=SYNC_FAILED")+freshnessJS); len(both) != 1 || both[acct] == "" {
		t.Errorf("HEALTHY and sync failed: %v, want %s alone", both, acct)
	}
	browse(t, tab, "open the account", chromedp.Click(chromedp.CSS(`#accounts tbody a[href="#/account/`+acct+`"]`)))
	facts := waitJS[string](t, tab, drawn("#/account/"+acct)+`document.querySelector('#facts').textContent`)
	var health struct {
		AccountHealth struct{ Freshness struct{ Message string } }
	}
	if err := json.Unmarshal([]byte(s.restBody(t, "/v1/accounts/"+acct+"/health")), &health); err != nil {
		t.Fatal(err)
	}
	message := health.AccountHealth.Freshness.Message
	for _, want := range []string{"Data freshness", "sync failed since ", "Failed to sync: paystubs", "Last scan: ", message} {
		if !strings.Contains(facts, want) {
			t.Errorf("facts lack %q: %s", want, facts)
		}
	}
	if message == "" {
		t.Error("the API gives the sync failure no message")
	}
	changes := evalJS[[]string](t, tab, `[...document.querySelectorAll('#timeline tbody td:nth-child(6)')].map(td => td.textContent)`)
	if !slices.Contains(changes, "freshness lost fresh → sync failed (paystubs)") {
		t.Errorf("the timeline's changes %q lack the freshness lost", changes)
	}
}

// testDashboardCrossSite: a page of another origin posts a form to the
// API in the browser, which says where it comes from: refused.
func testDashboardCrossSite(t *testing.T, tab context.Context, s *server) {
	const acct = "seed-0000005"
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id=f method=post action="http://%s/v1/accounts/%s:refresh"></form><script>document.getElementById('f').submit()</script>`, s.rest, acct)
	}))
	t.Cleanup(evil.Close)
	browse(t, tab, "open the other site", chromedp.Navigate(evil.URL))
	body := waitJS[string](t, tab, `location.host === '`+s.rest+`' && document.readyState === 'complete' && document.body.textContent`)
	if !strings.Contains(strings.ToLower(body), "cross-origin") {
		t.Errorf("the cross-site POST answered %q", body)
	}
	var events struct{ Events []struct{ Source string } }
	if err := json.Unmarshal([]byte(s.restBody(t, "/v1/accounts/"+acct+"/events")), &events); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Events {
		if e.Source == "api" {
			t.Error("the cross-site POST reached the API")
		}
	}
}

// testDashboardFeed: an event committed while the feed is open shows at
// its top; after the server restarts, the feed reconnects by itself and
// goes on from its cursor.
func testDashboardFeed(t *testing.T, tab context.Context, s *server, dir string, env []string) {
	browse(t, tab, "open the feed", chromedp.Navigate("http://"+s.rest+"/ui/#/feed"))
	waitJS[bool](t, tab, `document.querySelector('#feed-state').dataset.state === 'live' && !!document.querySelector('#feed-rows')`)
	sent := time.Now()
	s.deliver(t, failedWithObject("live-1", "user-live", "invalid_mfa"))
	waitJS[bool](t, tab, `!!document.querySelector('#feed-rows tr[data-account="live-1"]')`)
	t.Logf("event shown %v after it was sent", time.Since(sent))

	s.stop(t)
	waitJS[bool](t, tab, `document.querySelector('#feed-state').dataset.state === 'reconnecting'`)
	s = serveOn(t, s.webhook, s.grpc, s.rest, dir, env...)
	s.deliver(t, failedWithObject("live-2", "user-live", "invalid_credentials"))
	waitJS[bool](t, tab, `document.querySelector('#feed-state').dataset.state === 'live' && !!document.querySelector('#feed-rows tr[data-account="live-2"]')`)
	order := evalJS[[]string](t, tab, `[...document.querySelectorAll('#feed-rows tr')].map(r => r.dataset.account)`)
	if strings.Join(order, ",") != "live-2,live-1" {
		t.Errorf("feed rows %v, want live-2 then live-1 once each", order)
	}
}

// testDashboardLogin: with API tokens configured the page asks for one; a
// wrong token is refused, the right one opens a session whose cookie
// scripts cannot read.
func testDashboardLogin(t *testing.T, tab context.Context) {
	token, entry, err := auth.NewToken("ops")
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, t.TempDir(), "ACCOUNTHEALTH_API_TOKENS="+entry)
	if code, _ := s.restGet(t, "/v1/health/summary"); code != http.StatusUnauthorized {
		t.Fatalf("without a token the API answers %d", code)
	}
	browse(t, tab, "open the dashboard", chromedp.Navigate("http://"+s.rest+"/ui/"))
	waitJS[bool](t, tab, `!!document.querySelector('#login-form')`)
	browse(t, tab, "a wrong token", chromedp.SendKeys(chromedp.CSS(`#token`), "not-the-token"), chromedp.Click(chromedp.CSS(`#login-form button`)))
	if msg := waitJS[string](t, tab, `document.querySelector('#login-error').textContent`); !strings.Contains(msg, "matches none") {
		t.Errorf("wrong token: %q", msg)
	}
	evalJS[string](t, tab, `document.querySelector('#token').value = ''`)
	browse(t, tab, "the token", chromedp.SendKeys(chromedp.CSS(`#token`), token), chromedp.Click(chromedp.CSS(`#login-form button`)))
	waitJS[bool](t, tab, `!!document.querySelector('[data-count=total]') && document.querySelector('#caller').textContent === 'token:ops'`)
	if c := evalJS[string](t, tab, `document.cookie`); c != "" {
		t.Errorf("scripts see the cookie %q: it must be HttpOnly", c)
	}
	browse(t, tab, "log out", chromedp.Click(chromedp.CSS(`#logout`)))
	waitJS[bool](t, tab, `!!document.querySelector('#login-form')`)
}
