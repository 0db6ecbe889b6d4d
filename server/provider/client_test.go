package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestGetAccountParsesRecordedObjects(t *testing.T) {
	names, err := filepath.Glob(filepath.Join("..", "..", "testdata", "fixtures", "recorded", "account_object_*.json"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, name := range names {
		raw := fixture(t, filepath.Base(name))
		var probe struct {
			Results []json.RawMessage `json:"results"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			t.Fatal(err)
		}
		if probe.Results != nil {
			continue // a list: TestListAccountsParsesRecordedPages
		}
		t.Run(filepath.Base(name), func(t *testing.T) {
			var want struct {
				ID         string `json:"id"`
				User       string `json:"user"`
				UpdatedAt  string `json:"updated_at"`
				Connection struct {
					Status    string `json:"status"`
					UpdatedAt string `json:"updated_at"`
				} `json:"connection"`
			}
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			srv, rec := scripted(t, answer{status: 200, body: string(raw)})
			a, err := newClient(t, srv.URL).GetAccount(t.Context(), want.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.get(0); got.method != http.MethodGet || got.path != "/v2/accounts/"+want.ID {
				t.Errorf("request %s %s, want GET /v2/accounts/%s", got.method, got.path, want.ID)
			}
			if a.ID != want.ID || a.User != want.User || string(a.Connection.Status) != want.Connection.Status {
				t.Errorf("parsed %q %q %q, want %+v", a.ID, a.User, a.Connection.Status, want)
			}
			if !a.UpdatedAt.Equal(mustTime(t, want.UpdatedAt)) ||
				!a.Connection.UpdatedAt.Equal(mustTime(t, want.Connection.UpdatedAt)) {
				t.Errorf("times %s %s, want %s %s", a.UpdatedAt, a.Connection.UpdatedAt, want.UpdatedAt, want.Connection.UpdatedAt)
			}
			if a.CreatedAt.IsZero() || a.ScannedAt.IsZero() {
				t.Errorf("created_at or scanned_at not parsed: %+v", a)
			}
			if !bytes.Equal(a.Raw, bytes.TrimSpace(raw)) {
				t.Error("Raw is not the body as received")
			}
		})
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestListAccountsParsesRecordedPages(t *testing.T) {
	for _, name := range []string{"account_object_busy_joe_list.json", "account_object_bob_list.json", "account_object_john_loanseeker_gig_list.json"} {
		t.Run(name, func(t *testing.T) {
			raw := fixture(t, name)
			var want struct {
				Results []json.RawMessage `json:"results"`
			}
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			srv, _ := scripted(t, answer{status: 200, body: string(raw)})
			p, err := newClient(t, srv.URL).ListAccounts(t.Context(), ListAccountsParams{})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Accounts) != len(want.Results) || p.Next != "" || p.NextCursor != "" {
				t.Fatalf("got %d accounts, next %q %q; want %d, none", len(p.Accounts), p.Next, p.NextCursor, len(want.Results))
			}
			for i, a := range p.Accounts {
				if !bytes.Equal(a.Raw, want.Results[i]) || a.ID == "" || a.Connection.Status == "" {
					t.Errorf("account %d: %+v", i, a)
				}
			}
		})
	}
}

func TestAccountKeepsUnknownFieldsAndValues(t *testing.T) {
	body := `{"id":"a1","user":"u1","scanned_at":null,"connection":{"status":"paused_by_platform","error_code":"brand_new_code","error_message":"New.","updated_at":"2026-01-02T03:04:05.123456Z"},"new_thing":{"x":[1,2]}}`
	srv, _ := scripted(t, answer{status: 200, body: body})
	a, err := newClient(t, srv.URL).GetAccount(t.Context(), "a1")
	if err != nil {
		t.Fatal(err)
	}
	if a.Connection.Status != "paused_by_platform" || a.Connection.ErrorCode != "brand_new_code" || !a.ScannedAt.IsZero() {
		t.Errorf("parsed %+v", a)
	}
	out, err := json.Marshal(a)
	if err != nil || string(out) != body {
		t.Errorf("re-encoded %s, %v; want the body as received", out, err)
	}
}

// An account whose id or user the provider sends as text encoding/json
// would repair (a lone surrogate, invalid UTF-8, NUL) is never used under
// the repaired id: GetAccount fails naming the field, ListAccounts leaves
// it out and says why. A U+FFFD the provider writes is its own.
func TestAccountIDsAreNotRepaired(t *testing.T) {
	bad := []struct{ name, object, want string }{
		{"lone surrogate in the id", `{"id":"a\ud800","user":"u1"}`, `argyle: account "a\ud800": id: not valid UTF-8 (a lone surrogate escape); an id is used as sent, never repaired`},
		{"invalid UTF-8 in the user", "{\"id\":\"a2\",\"user\":\"u\xff\"}", `argyle: account "a2": user: not valid UTF-8 (an invalid byte sequence); an id is used as sent, never repaired`},
		{"NUL in the id", `{"id":"a\u0000"}`, `argyle: account "a\u0000": id: contains NUL (\u0000); an id is used as sent, never repaired`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := scripted(t, answer{status: 200, body: tt.object})
			if a, err := newClient(t, srv.URL).GetAccount(t.Context(), "a"); err == nil || err.Error() != tt.want {
				t.Errorf("GetAccount = %+v, %v; want the error %q", a, err, tt.want)
			}
		})
	}
	t.Run("list", func(t *testing.T) {
		body := `{"next":null,"previous":null,"results":[{"id":"a0","user":"u0"},` + bad[0].object + `,{"id":"a\ufffd","user":"u\uFFFD"},` + bad[1].object + `]}`
		srv, _ := scripted(t, answer{status: 200, body: body})
		p, err := newClient(t, srv.URL).ListAccounts(t.Context(), ListAccountsParams{})
		if err != nil {
			t.Fatal(err)
		}
		var ids, why []string
		for _, a := range p.Accounts {
			ids = append(ids, a.ID+"/"+a.User)
		}
		for _, err := range p.Unusable {
			why = append(why, err.Error())
		}
		if want := []string{"a0/u0", "a\uFFFD/u\uFFFD"}; !slices.Equal(ids, want) || !slices.Equal(why, []string{bad[0].want, bad[1].want}) {
			t.Errorf("accounts %q, unusable %q; want %q and the errors of the two bad ones", ids, why, want)
		}
	})
}

func TestListAccountsRequestAndCursor(t *testing.T) {
	srv, rec := scripted(t, answer{status: 200, body: `{"next":"https://api-sandbox.argyle.com/v2/accounts?cursor=Y3Vy%3D&limit=2&user=u%201","previous":null,"results":[]}`})
	p, err := newClient(t, srv.URL).ListAccounts(t.Context(), ListAccountsParams{User: "u 1", Limit: 2, Cursor: "prev"})
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.get(0); got.path != "/v2/accounts" || got.query != "cursor=prev&limit=2&user=u+1" {
		t.Errorf("request %s?%s", got.path, got.query)
	}
	if p.NextCursor != "Y3Vy=" {
		t.Errorf("next cursor %q", p.NextCursor)
	}

	if _, err := newClient(t, srv.URL).ListAccounts(t.Context(), ListAccountsParams{Limit: MaxPageSize + 1}); err == nil || rec.count() != 1 {
		t.Errorf("limit above %d: err %v after %d requests; want an error before any request", MaxPageSize, err, rec.count())
	}

	bad, _ := scripted(t, answer{status: 200, body: `{"next":"https://api-sandbox.argyle.com/v2/accounts?page=2","previous":null,"results":[]}`})
	if _, err := newClient(t, bad.URL).ListAccounts(t.Context(), ListAccountsParams{}); err == nil || !strings.Contains(err.Error(), "no cursor") {
		t.Errorf("next link without cursor: %v", err)
	}
}

func TestRequestsCarryCredentialsAndHeaders(t *testing.T) {
	srv, rec := scripted(t, answer{status: 200, body: `{"id":"x","user_token":"t","results":[]}`})
	c := newClient(t, srv.URL)
	ctx := t.Context()
	calls := map[string]func() error{
		"GetAccount":    func() error { _, err := c.GetAccount(ctx, "a1"); return err },
		"ListAccounts":  func() error { _, err := c.ListAccounts(ctx, ListAccountsParams{}); return err },
		"DeleteAccount": func() error { return c.DeleteAccount(ctx, "a1") },
		"CreateWebhook": func() error {
			_, err := c.CreateWebhook(ctx, WebhookSpec{Events: []string{"*"}, Name: "n", URL: "https://h/"})
			return err
		},
		"ListWebhooks":    func() error { _, err := c.ListWebhooks(ctx); return err },
		"DeleteWebhook":   func() error { return c.DeleteWebhook(ctx, "w1") },
		"CreateUserToken": func() error { _, err := c.CreateUserToken(ctx, "u1"); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			before := rec.count()
			if err := call(); err != nil {
				t.Fatal(err)
			}
			got := rec.get(before)
			r := &http.Request{Header: got.header}
			if id, secret, ok := r.BasicAuth(); !ok || id != testKeyID || secret != testSecret {
				t.Errorf("basic auth %q %q %t", id, secret, ok)
			}
			if got.header.Get("Accept") != "application/json" || !strings.Contains(got.header.Get("User-Agent"), "accounthealth") {
				t.Errorf("headers %v", got.header)
			}
			if (got.method == http.MethodPost) != (got.header.Get("Content-Type") == "application/json") {
				t.Errorf("%s with Content-Type %q", got.method, got.header.Get("Content-Type"))
			}
		})
	}
}

func TestPathSegmentsAreEscaped(t *testing.T) {
	srv, rec := scripted(t, answer{status: 204})
	c := newClient(t, srv.URL)
	if err := c.DeleteAccount(t.Context(), "a/b?c d"); err != nil {
		t.Fatal(err)
	}
	if got := rec.get(0).path; got != "/v2/accounts/a%2Fb%3Fc%20d" {
		t.Errorf("path %s", got)
	}
	for _, id := range []string{"", ".", ".."} {
		if err := c.DeleteWebhook(t.Context(), id); err == nil {
			t.Errorf("id %q accepted", id)
		}
	}
	if rec.count() != 1 {
		t.Errorf("%d requests; invalid ids must not be sent", rec.count())
	}
}

func TestCreateWebhook(t *testing.T) {
	srv, rec := scripted(t, answer{status: 201, body: `{"id":"w1","name":"health","events":["accounts.updated","accounts.failed"],"config":{"include_resource":true},"secret":"whsec","url":"https://hooks.example/argyle","created_at":"2026-01-02T03:04:05.000001Z","updated_at":"2026-01-02T03:04:05.000001Z","last_sent_at":null}`})
	c := newClient(t, srv.URL)
	spec := WebhookSpec{Events: []string{"accounts.updated", "accounts.failed"}, Name: "health", URL: "https://hooks.example/argyle", Secret: "whsec", IncludeResource: true}
	w, err := c.CreateWebhook(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	got := rec.get(0)
	want := `{"events":["accounts.updated","accounts.failed"],"name":"health","url":"https://hooks.example/argyle","secret":"whsec","config":{"include_resource":true}}`
	if got.method != http.MethodPost || got.path != "/v2/webhooks" || string(got.body) != want {
		t.Errorf("request %s %s %s\nwant body %s", got.method, got.path, got.body, want)
	}
	if w.ID != "w1" || !w.Config.IncludeResource || len(w.Events) != 2 || w.CreatedAt.IsZero() || !w.LastSentAt.IsZero() {
		t.Errorf("parsed %+v", w)
	}

	spec.Events = []string{"*"}
	if _, err := c.CreateWebhook(t.Context(), spec); err == nil || rec.count() != 1 {
		t.Errorf(`include_resource with "*": %v after %d requests; want refused before sending`, err, rec.count())
	}
}

func TestListWebhooksFollowsPages(t *testing.T) {
	srv, rec := scripted(t,
		answer{status: 200, body: `{"next":"https://api-sandbox.argyle.com/v2/webhooks?cursor=c2&limit=200","previous":null,"results":[{"id":"w1"},{"id":"w2"}]}`},
		answer{status: 200, body: `{"next":null,"previous":"https://api-sandbox.argyle.com/v2/webhooks?cursor=p1","results":[{"id":"w3"}]}`},
	)
	ws, err := newClient(t, srv.URL).ListWebhooks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 3 || ws[2].ID != "w3" {
		t.Errorf("got %+v", ws)
	}
	if rec.count() != 2 || rec.get(0).query != "limit=200" || rec.get(1).query != "cursor=c2&limit=200" {
		t.Errorf("requests: %d, %q, %q", rec.count(), rec.get(0).query, rec.get(1).query)
	}

	loop, _ := scripted(t, answer{status: 200, body: `{"next":"https://h/v2/webhooks?cursor=same","results":[]}`})
	if _, err := newClient(t, loop.URL).ListWebhooks(t.Context()); err == nil {
		t.Error("a repeating cursor was followed forever")
	}
}

func TestCreateUserToken(t *testing.T) {
	srv, rec := scripted(t, answer{status: 200, body: `{"user_token":"tok-123"}`})
	tok, err := newClient(t, srv.URL).CreateUserToken(t.Context(), "u1")
	if err != nil || tok.Token != "tok-123" {
		t.Fatalf("token %q, %v", tok, err)
	}
	if got := rec.get(0); got.method != http.MethodPost || got.path != "/v2/user-tokens" || string(got.body) != `{"user":"u1"}` {
		t.Errorf("request %s %s %s", got.method, got.path, got.body)
	}
	empty, _ := scripted(t, answer{status: 200, body: `{}`})
	if _, err := newClient(t, empty.URL).CreateUserToken(t.Context(), "u1"); err == nil {
		t.Error("an answer without a token was accepted")
	}
}

func TestStatusErrors(t *testing.T) {
	tests := []struct {
		status   int
		body     string
		sentinel error
		message  string
	}{
		{404, `{"detail":"Not found."}`, ErrNotFound, "argyle DELETE /accounts/a1: 404 Not Found after 1 attempt: Not found."},
		{401, `{"detail":"Invalid API key"}`, ErrUnauthorized, "argyle DELETE /accounts/a1: 401 Unauthorized after 1 attempt: Invalid API key (check argyle-api-key-id/secret and that the key belongs to this environment: sandbox and production keys differ)"},
		{403, `{"code":"forbidden","message":"Key disabled"}`, ErrUnauthorized, "403 Forbidden after 1 attempt: forbidden: Key disabled (check"},
		{400, `{"id":["Not a valid UUID."]}`, nil, "400 Bad Request after 1 attempt: id: Not a valid UUID."},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv, rec := scripted(t, answer{status: tt.status, body: tt.body})
			err := newClient(t, srv.URL).DeleteAccount(t.Context(), "a1")
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tt.status || apiErr.Attempts != 1 || rec.count() != 1 {
				t.Fatalf("err %v after %d requests; want one attempt answered %d", err, rec.count(), tt.status)
			}
			for _, s := range []error{ErrNotFound, ErrUnauthorized, ErrRateLimited, ErrUnavailable} {
				if errors.Is(err, s) != (s == tt.sentinel) {
					t.Errorf("errors.Is(err, %v) = %t", s, !(s == tt.sentinel))
				}
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("message %q\nwant it to contain %q", err, tt.message)
			}
		})
	}
	t.Run("204", func(t *testing.T) {
		srv, _ := scripted(t, answer{status: 204})
		if err := newClient(t, srv.URL).DeleteAccount(t.Context(), "a1"); err != nil {
			t.Error(err)
		}
	})
}
