package providerfake_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/provider/providerfake"
)

func TestEveryRouteChecksCredentials(t *testing.T) {
	e := start(t, providerfake.Options{})
	routes := []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/v2/accounts/{id}", "", 200},
		{"GET", "/v2/accounts", "", 200},
		{"POST", "/v2/webhooks", `{"events":["accounts.updated"],"name":"n","url":"http://127.0.0.1:1/"}`, 201},
		{"GET", "/v2/webhooks", "", 200},
		{"DELETE", "/v2/webhooks/unknown", "", 404},
		{"POST", "/v2/user-tokens", `{"user":"u1"}`, 200},
		{"POST", "/_fake/faults", `{"route":"GET /v2/webhooks","status":500,"times":1}`, 204},
		{"DELETE", "/_fake/faults", "", 204},
		{"POST", "/_fake/accounts", `{}`, 201},
		{"POST", "/_fake/accounts/{id}/connect", "", 204},
		{"DELETE", "/v2/accounts/{id}", "", 204},
	}
	for _, r := range routes {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			path := strings.ReplaceAll(r.path, "{id}", e.add(t, providerfake.AccountSeed{}).ID)
			for _, bad := range [][2]string{{"", ""}, {keyID, "wrong"}, {"wrong", keySecret}} {
				status, body := e.call(t, r.method, path, r.body, bad[0], bad[1])
				var answer struct{ Detail string }
				if status != http.StatusUnauthorized || json.Unmarshal([]byte(body), &answer) != nil || answer.Detail == "" {
					t.Errorf("credentials %q: %d %s; want 401 with a JSON detail", bad, status, body)
				}
			}
			if status, body := e.authed(t, r.method, path, r.body); status != r.want {
				t.Errorf("good credentials: %d %s; want %d", status, body, r.want)
			}
		})
	}
}

func TestAccountObjectsLookRecorded(t *testing.T) {
	e := start(t, providerfake.Options{})
	scanned := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	seed := e.add(t, providerfake.AccountSeed{User: "u1", ScannedAt: scanned})
	failed := e.add(t, providerfake.AccountSeed{User: "u1", Status: "error", ErrorCode: "invalid_mfa"})

	a, err := e.client.GetAccount(t.Context(), seed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != seed.ID || a.User != "u1" || a.Connection.Status != provider.StatusConnected ||
		!a.ScannedAt.Equal(scanned.Truncate(time.Microsecond)) || !a.CreatedAt.Equal(seed.CreatedAt) {
		t.Errorf("got %+v from %+v", a, seed)
	}
	recorded, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "fixtures", "recorded", "account_object_bob_single.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keys(t, a.Raw), keys(t, recorded); !slices.Equal(got, want) {
		t.Errorf("fields %v, recorded objects have %v", got, want)
	}

	f, err := e.client.GetAccount(t.Context(), failed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if f.Connection.Status != provider.StatusError || f.Connection.ErrorCode != "invalid_mfa" || f.Connection.ErrorMessage == "" || !f.ScannedAt.IsZero() {
		t.Errorf("failed account %+v", f.Connection)
	}
	if _, err := e.client.GetAccount(t.Context(), "unknown"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
}

// keys lists an object's fields and those of its nested objects, as
// "connection.status", sorted.
func keys(t *testing.T, raw []byte) []string {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	var out []string
	for k, v := range obj {
		out = append(out, k)
		if nested, ok := v.(map[string]any); ok {
			for sub := range maps.Keys(nested) {
				out = append(out, k+"."+sub)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestListAccountsPages(t *testing.T) {
	e := start(t, providerfake.Options{})
	var want []string
	for i := range 7 {
		s := e.add(t, providerfake.AccountSeed{User: "u1"})
		if i == 2 {
			e.add(t, providerfake.AccountSeed{User: "u2"})
		}
		want = append(want, s.ID)
	}
	var got []string
	params := provider.ListAccountsParams{User: "u1", Limit: 3}
	for pages := 0; ; pages++ {
		p, err := e.client.ListAccounts(t.Context(), params)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range p.Accounts {
			got = append(got, a.ID)
		}
		if pages == 0 {
			// Deleting a listed account must not shift the next page.
			if err := e.client.DeleteAccount(t.Context(), want[0]); err != nil {
				t.Fatal(err)
			}
		}
		if p.NextCursor == "" {
			break
		}
		params.Cursor = p.NextCursor
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged through %v, want %v", got, want)
	}

	_, body := e.authed(t, "GET", "/v2/accounts?limit=2", "")
	var p2 struct{ Next string }
	_ = json.Unmarshal([]byte(body), &p2)
	_, body = e.authed(t, "GET", strings.TrimPrefix(p2.Next, e.srv.URL), "")
	var p3 struct {
		Previous string
		Results  []struct{ ID string }
	}
	_ = json.Unmarshal([]byte(body), &p3)
	_, body = e.authed(t, "GET", strings.TrimPrefix(p3.Previous, e.srv.URL), "")
	if !strings.Contains(body, want[1]) || !strings.Contains(body, want[2]) || len(p3.Results) != 2 {
		t.Errorf("previous page %s; want the first two live accounts", body)
	}

	for _, q := range []string{"limit=201", "limit=0", "limit=x", "cursor=bogus"} {
		if status, body := e.authed(t, "GET", "/v2/accounts?"+q, ""); status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, status, body)
		}
	}
}

func TestDeleteTwiceAndTheRemovalWebhook(t *testing.T) {
	url, got := receiver(t)
	e := start(t, providerfake.Options{WebhookURL: url, WebhookSecret: webhookSecret, IncludeResource: true})
	a := e.add(t, providerfake.AccountSeed{})

	if err := e.client.DeleteAccount(t.Context(), a.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.client.DeleteAccount(t.Context(), a.ID); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("second delete: %v; want ErrNotFound", err)
	}
	if _, err := e.client.GetAccount(t.Context(), a.ID); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
	if n := e.fake.DeleteCount(a.ID); n != 2 || len(e.fake.Accounts()) != 0 {
		t.Errorf("DeleteCount %d, %d accounts left", n, len(e.fake.Accounts()))
	}
	d := verified(t, got, webhookSecret)
	if d.Event != "accounts.removed" || d.Data.Account != a.ID || d.Data.User != a.User || d.Data.Resource != nil || d.Name == "" {
		t.Errorf("delivery %s", d.body)
	}
	if _, err := e.fake.AddAccount(providerfake.AccountSeed{ID: a.ID}); err == nil {
		t.Error("a deleted id was reused")
	}
}

func TestFailedDeliveryIsRetriedOnce(t *testing.T) {
	url, got := receiver(t, http.StatusInternalServerError)
	e := start(t, providerfake.Options{WebhookURL: url, WebhookSecret: webhookSecret, RetryDelay: 10 * time.Millisecond})
	a := e.add(t, providerfake.AccountSeed{})
	if err := e.fake.Remove(a.ID); err != nil {
		t.Fatal(err)
	}
	first, second := verified(t, got, webhookSecret), verified(t, got, webhookSecret)
	e.fake.WaitDeliveries()
	if string(first.body) != string(second.body) || len(got) != 0 {
		t.Errorf("retry sent %s after %s, then %d more; want the same delivery exactly twice", second.body, first.body, len(got))
	}
}

func TestSimulationsSendTheProvidersWebhooks(t *testing.T) {
	url, got := receiver(t)
	fixed := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	e := start(t, providerfake.Options{
		WebhookURL: url, WebhookSecret: webhookSecret, IncludeResource: true,
		Clock: func() time.Time { return fixed }, // updated_at must advance anyway
	})
	a := e.add(t, providerfake.AccountSeed{})
	var last time.Time
	expect := func(event, status, code string) {
		t.Helper()
		d := verified(t, got, webhookSecret)
		var r provider.Account
		if err := json.Unmarshal(d.Data.Resource, &r); err != nil {
			t.Fatalf("%s resource: %v", d.Event, err)
		}
		if d.Event != event || d.Data.Account != a.ID || d.Data.User != a.User || string(r.Connection.Status) != status || r.Connection.ErrorCode != code {
			t.Errorf("got %s %+v; want %s %s %s", d.Event, r.Connection, event, status, code)
		}
		if event == "accounts.failed" && (d.Data.ErrorCode != code || d.Data.ErrorMessage == "") {
			t.Errorf("accounts.failed data %s lacks the error", d.body)
		}
		if r.UpdatedAt.Before(last) || r.Connection.UpdatedAt.After(r.UpdatedAt) {
			t.Errorf("updated_at %s after %s, connection %s", r.UpdatedAt, last, r.Connection.UpdatedAt)
		}
		last = r.UpdatedAt
	}

	mustDo(t, e.fake.Fail(a.ID, "invalid_mfa"))
	expect("accounts.failed", "error", "invalid_mfa")
	expect("accounts.updated", "error", "invalid_mfa")
	before := last
	mustDo(t, e.fake.Connect(a.ID))
	expect("accounts.connected", "connected", "")
	expect("accounts.updated", "connected", "")
	mustDo(t, e.fake.Disconnect(a.ID, ""))
	expect("accounts.updated", "error", "auth_required")
	if !last.After(before) {
		t.Errorf("updated_at stayed at %s across changes", last)
	}
	if err := e.fake.Fail("unknown", ""); !errors.Is(err, providerfake.ErrUnknownAccount) {
		t.Errorf("Fail(unknown): %v", err)
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestWebhookSubscriptionsReceiveTheirEvents(t *testing.T) {
	url, got := receiver(t)
	e := start(t, providerfake.Options{})
	w, err := e.client.CreateWebhook(t.Context(), provider.WebhookSpec{
		Events: []string{"accounts.failed"}, Name: "health-failed", URL: url, Secret: "sub-secret",
	})
	if err != nil {
		t.Fatal(err)
	}
	all, err := e.client.ListWebhooks(t.Context())
	if err != nil || len(all) != 1 || all[0].ID != w.ID || all[0].Name != "health-failed" {
		t.Fatalf("listed %+v, %v", all, err)
	}

	a := e.add(t, providerfake.AccountSeed{})
	mustDo(t, e.fake.Fail(a.ID, "mfa_timeout"))
	d := verified(t, got, "sub-secret")
	if d.Event != "accounts.failed" || d.Name != "health-failed" || d.Data.Resource != nil {
		t.Errorf("delivery %s", d.body)
	}
	e.fake.WaitDeliveries()
	if len(got) != 0 {
		t.Errorf("accounts.updated reached a subscription to accounts.failed only")
	}
	if all, _ := e.client.ListWebhooks(t.Context()); all[0].LastSentAt.IsZero() {
		t.Error("last_sent_at not set after a delivery")
	}

	if err := e.client.DeleteWebhook(t.Context(), w.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.client.DeleteWebhook(t.Context(), w.ID); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	for _, body := range []string{`{}`, `{"events":["*"],"name":"n","url":"https://h/","config":{"include_resource":true}}`, `{"events":["x"],"name":"n","url":"nope"}`} {
		if status, answer := e.authed(t, "POST", "/v2/webhooks", body); status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", body, status, answer)
		}
	}
}

func TestUserTokens(t *testing.T) {
	e := start(t, providerfake.Options{})
	tok, err := e.client.CreateUserToken(t.Context(), "u1")
	if err != nil || tok.Token == "" {
		t.Fatalf("token %q, %v", tok, err)
	}
	if status, _ := e.authed(t, "POST", "/v2/user-tokens", `{}`); status != http.StatusBadRequest {
		t.Errorf("no user: %d", status)
	}
}

func TestControlRoutes(t *testing.T) {
	e := start(t, providerfake.Options{})
	status, body := e.authed(t, "POST", "/_fake/accounts", `{"id":"acc-1","user":"u1","status":"connecting"}`)
	if status != http.StatusCreated || !strings.Contains(body, `"status":"connecting"`) {
		t.Fatalf("seed: %d %s", status, body)
	}
	if status, _ := e.authed(t, "POST", "/_fake/accounts", `{"id":"acc-1"}`); status != http.StatusConflict {
		t.Errorf("duplicate seed: %d", status)
	}
	if status, body := e.authed(t, "POST", "/_fake/accounts/acc-1/disconnect", `{"error_code":"expired_credentials"}`); status != http.StatusNoContent {
		t.Fatalf("disconnect: %d %s", status, body)
	}
	a, err := e.client.GetAccount(t.Context(), "acc-1")
	if err != nil || a.Connection.ErrorCode != "expired_credentials" {
		t.Errorf("after disconnect: %+v, %v", a.Connection, err)
	}
	for path, want := range map[string]int{
		"/_fake/accounts/acc-1/explode": http.StatusNotFound,
		"/_fake/accounts/nope/connect":  http.StatusNotFound,
		"/_fake/accounts/acc-1/remove":  http.StatusNoContent,
	} {
		if status, body := e.authed(t, "POST", path, ""); status != want {
			t.Errorf("%s: %d %s; want %d", path, status, body, want)
		}
	}
	for _, fault := range []string{`{"route":"GET /v2/nowhere","status":500}`, `{"status":500,"colour":"red"}`, `{"times":1}`, `{"status":200}`, `{"latency":"soon"}`, `{"hang":true,"status":500}`} {
		if status, _ := e.authed(t, "POST", "/_fake/faults", fault); status != http.StatusBadRequest {
			t.Errorf("fault %s accepted: %d", fault, status)
		}
	}
	if status, _ := e.authed(t, "GET", "/v2/elsewhere", ""); status != http.StatusNotFound {
		t.Errorf("unknown route: %d", status)
	}
}

// TestFaultsAsTheClientSeesThem is also the client's integration test:
// every kind of fault, through the real client, against the fake.
func TestFaultsAsTheClientSeesThem(t *testing.T) {
	tests := []struct {
		name  string
		fault providerfake.Fault
		// control sets the fault through POST /_fake/faults instead.
		control string
		// check gets the result of GetAccount and the times requests
		// reached the server.
		check func(t *testing.T, err error, at []time.Time)
	}{
		{name: "500 twice", fault: providerfake.Fault{Route: "GET /v2/accounts/{id}", Status: 500, Times: 2},
			check: succeededAfter(3)},
		{name: "503 via the control route", control: `{"route":"/v2/accounts/{id}","status":503,"times":1}`,
			check: succeededAfter(2)},
		{name: "503 forever", fault: providerfake.Fault{Status: 503},
			check: func(t *testing.T, err error, at []time.Time) {
				var apiErr *provider.APIError
				if !errors.Is(err, provider.ErrUnavailable) || !errors.As(err, &apiErr) || apiErr.Attempts != 3 || len(at) != 3 {
					t.Errorf("err %v after %d requests; want ErrUnavailable after 3 attempts", err, len(at))
				}
			}},
		{name: "429 with Retry-After", fault: providerfake.Fault{Status: 429, RetryAfter: "1", Times: 1},
			check: func(t *testing.T, err error, at []time.Time) {
				succeededAfter(2)(t, err, at)
				if len(at) == 2 && at[1].Sub(at[0]) < 900*time.Millisecond {
					t.Errorf("retried after %s, before Retry-After: 1", at[1].Sub(at[0]))
				}
			}},
		{name: "429 beyond the budget", fault: providerfake.Fault{Status: 429, RetryAfter: "120"},
			check: func(t *testing.T, err error, at []time.Time) {
				var apiErr *provider.APIError
				if !errors.Is(err, provider.ErrRateLimited) || !errors.As(err, &apiErr) || apiErr.RetryAfter != 2*time.Minute || len(at) != 1 {
					t.Errorf("err %v after %d requests; want ErrRateLimited at once", err, len(at))
				}
			}},
		{name: "latency under the timeout", fault: providerfake.Fault{Latency: 50 * time.Millisecond},
			check: func(t *testing.T, err error, at []time.Time) {
				succeededAfter(1)(t, err, at)
			}},
		{name: "latency over the timeout", fault: providerfake.Fault{Latency: time.Second, Times: 1},
			check: succeededAfter(2)},
		{name: "hang once", fault: providerfake.Fault{Hang: true, Times: 1},
			check: succeededAfter(2)},
		{name: "hang forever", fault: providerfake.Fault{Hang: true},
			check: func(t *testing.T, err error, at []time.Time) {
				if !errors.Is(err, provider.ErrUnavailable) || len(at) != 3 {
					t.Errorf("err %v after %d requests; want ErrUnavailable after 3", err, len(at))
				}
			}},
		{name: "other route", fault: providerfake.Fault{Route: "DELETE /v2/accounts/{id}", Status: 500},
			check: succeededAfter(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, providerfake.Options{}, func(c *provider.Config) { c.Timeout, c.MaxRetries = 200*time.Millisecond, 2 })
			a := e.add(t, providerfake.AccountSeed{})
			if tt.control != "" {
				if status, body := e.authed(t, "POST", "/_fake/faults", tt.control); status != http.StatusNoContent {
					t.Fatalf("POST /_fake/faults: %d %s", status, body)
				}
			} else if err := e.fake.AddFault(tt.fault); err != nil {
				t.Fatal(err)
			}
			_, err := e.client.GetAccount(t.Context(), a.ID)
			tt.check(t, err, e.hits.times("GET /v2/accounts/"+a.ID))

			e.fake.ClearFaults()
			if _, err := e.client.GetAccount(t.Context(), a.ID); err != nil {
				t.Errorf("after ClearFaults: %v", err)
			}
		})
	}
}

func succeededAfter(n int) func(*testing.T, error, []time.Time) {
	return func(t *testing.T, err error, at []time.Time) {
		t.Helper()
		if err != nil || len(at) != n {
			t.Errorf("err %v after %d requests; want success after %d", err, len(at), n)
		}
	}
}

func TestFaultJSONRoundTrip(t *testing.T) {
	in := providerfake.Fault{Route: "/v2/accounts/{id}", Latency: 1500 * time.Millisecond, Status: 503, RetryAfter: "2", Times: 3}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out providerfake.Fault
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Errorf("%s decoded as %+v, %v", b, out, err)
	}
	if !strings.Contains(string(b), `"latency":"1.5s"`) {
		t.Errorf("latency not written as a duration: %s", b)
	}
}

func TestClearFaultsOverHTTP(t *testing.T) {
	e := start(t, providerfake.Options{}, func(c *provider.Config) { c.MaxRetries = -1 })
	mustDo(t, e.fake.AddFault(providerfake.Fault{Status: 500}))
	if _, err := e.client.ListWebhooks(t.Context()); !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("with the fault: %v", err)
	}
	if status, _ := e.authed(t, "DELETE", "/_fake/faults", ""); status != http.StatusNoContent {
		t.Fatalf("DELETE /_fake/faults: %d", status)
	}
	if _, err := e.client.ListWebhooks(t.Context()); err != nil {
		t.Errorf("after clearing: %v", err)
	}
}

func TestParallelDeletesOfOneAccount(t *testing.T) {
	url, got := receiver(t)
	e := start(t, providerfake.Options{WebhookURL: url, WebhookSecret: webhookSecret})
	a := e.add(t, providerfake.AccountSeed{})
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = e.client.DeleteAccount(t.Context(), a.ID) })
	}
	wg.Wait()
	deleted, gone := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			deleted++
		case errors.Is(err, provider.ErrNotFound):
			gone++
		default:
			t.Error(err)
		}
	}
	if deleted != 1 || gone != n-1 || e.fake.DeleteCount(a.ID) != n {
		t.Errorf("%d deleted, %d not found, DeleteCount %d; want 1, %d, %d", deleted, gone, e.fake.DeleteCount(a.ID), n-1, n)
	}
	verified(t, got, webhookSecret)
	e.fake.WaitDeliveries()
	if len(got) != 0 {
		t.Errorf("%d more removal deliveries; want exactly one", len(got))
	}
}

// onMessage is a slog handler that signals on ch each record whose
// message is msg.
func onMessage(msg string, ch chan<- struct{}) slog.Handler {
	return messageHandler{msg: msg, ch: ch}
}

type messageHandler struct {
	msg string
	ch  chan<- struct{}
}

func (h messageHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h messageHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h messageHandler) WithGroup(string) slog.Handler            { return h }
func (h messageHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return nil
}

func TestServeShutsDownOnCancel(t *testing.T) {
	hung := make(chan struct{}, 1)
	f := providerfake.New(providerfake.Options{KeyID: keyID, KeySecret: keySecret, Logger: slog.New(onMessage("fault injected", hung))})
	mustDo(t, f.AddFault(providerfake.Fault{Hang: true}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- f.Serve(ctx, ln) }()

	c := newClient(t, "http://"+ln.Addr().String(), func(c *provider.Config) { c.Timeout, c.MaxRetries = 10*time.Second, -1 })
	held := make(chan error, 1)
	go func() { _, err := c.ListWebhooks(t.Context()); held <- err }()
	<-hung // the request is held: cancelling must drop it
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if err := <-held; !errors.Is(err, provider.ErrUnavailable) {
		t.Errorf("held request ended with %v; want a dropped connection", err)
	}
}
