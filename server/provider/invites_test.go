package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/provider/providerfake"
)

func addInvite(t *testing.T, f *providerfake.Fake, s providerfake.InviteSeed) providerfake.InviteSeed {
	t.Helper()
	s, err := f.AddInvite(s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestInvitePagesListOneUsersInvites(t *testing.T) {
	f, c, _ := fakeProvider(t, providerfake.Options{})
	var want []providerfake.InviteSeed
	for i := range 5 {
		want = append(want, addInvite(t, f, providerfake.InviteSeed{User: "u1", Status: []string{"sent", "completed"}[i%2]}))
		addInvite(t, f, providerfake.InviteSeed{User: "u2"})
	}
	var got []Invite
	pages := 0
	for p, err := range c.InvitePages(t.Context(), ListInvitesParams{User: "u1", Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, p.Invites...)
	}
	if len(got) != len(want) || pages != 3 {
		t.Fatalf("got %d invites in %d pages; want %d in 3", len(got), pages, len(want))
	}
	for i, inv := range got {
		w := want[i]
		if inv.ID != w.ID || inv.User != "u1" || inv.URL != w.URL || string(inv.Status) != w.Status ||
			!inv.CreatedAt.Equal(w.CreatedAt) || !inv.InvitedAt.Equal(w.InvitedAt) || !inv.RevokedAt.IsZero() {
			t.Errorf("invite %d: %#v; want %+v", i, inv, w)
		}
	}
}

func TestListInvitesKeepsOnlyTheUsersInvites(t *testing.T) {
	// A provider that ignores the undocumented user filter.
	srv, rec := scripted(t, answer{status: 200, body: `{"next":"https://h/v2/invites?cursor=c2","previous":null,"results":[` +
		`{"id":"i1","user":"u2","url":"https://link/i1","status":"sent"},` +
		`{"id":"i2","user":"u1","url":"https://link/i2","status":"revoked","revoked_at":"2026-01-02T03:04:05.000000Z","user_token":null}]}`})
	c := newClient(t, srv.URL)
	p, err := c.ListInvites(t.Context(), ListInvitesParams{User: "u1", Limit: MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Invites) != 1 || p.Invites[0].ID != "i2" || p.Invites[0].Status != InviteRevoked || p.Invites[0].RevokedAt.IsZero() || p.NextCursor != "c2" {
		t.Errorf("page %+v; want i2 alone, revoked, then cursor c2", p)
	}
	if got := rec.get(0); got.method != http.MethodGet || got.path != "/v2/invites" || got.query != "limit=200&user=u1" {
		t.Errorf("request %s %s?%s", got.method, got.path, got.query)
	}
	if _, err := c.ListInvites(t.Context(), ListInvitesParams{Limit: MaxPageSize + 1}); err == nil || rec.count() != 1 {
		t.Errorf("limit above %d: %v after %d requests; want an error before any request", MaxPageSize, err, rec.count())
	}
}

func TestResendInviteResendsTheSameInvite(t *testing.T) {
	f, c, _ := fakeProvider(t, providerfake.Options{})
	sent := addInvite(t, f, providerfake.InviteSeed{User: "u1", CreatedAt: time.Now().Add(-48 * time.Hour)})
	inv, err := c.ResendInvite(t.Context(), sent.ID)
	if err != nil {
		t.Fatal(err)
	}
	if inv.ID != sent.ID || inv.User != "u1" || inv.URL != sent.URL || !inv.CreatedAt.Equal(sent.CreatedAt) || !inv.InvitedAt.After(sent.InvitedAt) {
		t.Errorf("re-sent %#v; want the same invite, sent again after %s", inv, sent.InvitedAt)
	}
	if n := f.ResendCount(sent.ID); n != 1 || len(f.Invites()) != 1 {
		t.Errorf("ResendCount %d, %d invites; want 1 re-send of the one invite", n, len(f.Invites()))
	}
	// The answer carried a user token (a JWT, "eyJ..."): nothing keeps it.
	b, _ := json.Marshal(inv)
	if out := fmt.Sprintf("%#v %+v %s", inv, inv, b); strings.Contains(out, "eyJ") || strings.Contains(out, "user_token") {
		t.Errorf("the invite's user token shows in %s", out)
	}
}

func TestResendInviteErrors(t *testing.T) {
	tests := []struct {
		name  string
		fault *providerfake.Fault
		edit  func(*Config)
		id    func(live, revoked string) string
		// check gets the call's error and the fake's ResendCount of the id.
		check func(t *testing.T, err error, resends int)
	}{
		{name: "unknown", id: func(_, _ string) string { return "unknown" },
			check: func(t *testing.T, err error, _ int) {
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("err %v; want ErrNotFound", err)
				}
			}},
		{name: "revoked", id: func(_, revoked string) string { return revoked },
			check: func(t *testing.T, err error, resends int) {
				var apiErr *APIError
				if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || !strings.Contains(apiErr.Message, "revoked") ||
					outcomeOf(err) != OutcomeError || resends != 0 {
					t.Errorf("err %v, %d re-sends; want a 400 naming the revocation, matching no sentinel, nothing sent", err, resends)
				}
			}},
		{name: "wrong key", edit: func(c *Config) { c.KeySecret = "wrong-secret-8Kd" },
			check: func(t *testing.T, err error, resends int) {
				if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), "wrong-secret-8Kd") || resends != 0 {
					t.Errorf("err %v, %d re-sends; want ErrUnauthorized without the secret", err, resends)
				}
			}},
		{name: "rate limited once", fault: &providerfake.Fault{Route: "POST /v2/invites/{id}", Status: 429, RetryAfter: "0", Times: 1},
			check: func(t *testing.T, err error, resends int) {
				if err != nil || resends != 1 {
					t.Errorf("err %v, %d re-sends; want sent once after the 429", err, resends)
				}
			}},
		{name: "server error", fault: &providerfake.Fault{Route: "POST /v2/invites/{id}", Status: 502, Times: 1},
			check: func(t *testing.T, err error, resends int) {
				var apiErr *APIError
				if !errors.Is(err, ErrUnavailable) || !errors.As(err, &apiErr) || apiErr.Attempts != 1 || resends != 0 {
					t.Errorf("err %v, %d re-sends; want ErrUnavailable at once: a retry could reach the user twice", err, resends)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edits := []func(*Config){}
			if tt.edit != nil {
				edits = append(edits, tt.edit)
			}
			f, c, _ := fakeProvider(t, providerfake.Options{}, edits...)
			live := addInvite(t, f, providerfake.InviteSeed{}).ID
			revoked := addInvite(t, f, providerfake.InviteSeed{Status: "revoked"}).ID
			if tt.fault != nil {
				if err := f.AddFault(*tt.fault); err != nil {
					t.Fatal(err)
				}
			}
			id := live
			if tt.id != nil {
				id = tt.id(live, revoked)
			}
			_, err := c.ResendInvite(t.Context(), id)
			tt.check(t, err, f.ResendCount(id))
		})
	}
}

func TestResendInviteRefusesBadIDs(t *testing.T) {
	srv, rec := scripted(t, answer{status: 200, body: `{}`})
	for _, id := range []string{"", ".", ".."} {
		if _, err := newClient(t, srv.URL).ResendInvite(t.Context(), id); err == nil {
			t.Errorf("id %q accepted", id)
		}
	}
	if rec.count() != 0 {
		t.Errorf("%d requests; invalid ids must not be sent", rec.count())
	}
}

func TestInvitePrintsWithoutItsURL(t *testing.T) {
	inv := Invite{ID: "i1", User: "u1", URL: "https://link.example/secret-path-4", Status: InviteSent}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("re-sent", "invite", inv)
	for _, out := range []string{fmt.Sprint(inv), fmt.Sprintf("%+v", inv), fmt.Sprintf("%#v", inv), logged.String()} {
		if strings.Contains(out, "secret-path") || !strings.Contains(out, "i1") {
			t.Errorf("printed %s", out)
		}
	}
}
