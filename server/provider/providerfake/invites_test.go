package providerfake_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/provider/providerfake"
)

// invitePage is a page of GET /v2/invites as sent.
type invitePage struct {
	Next, Previous *string
	Results        []map[string]any
}

func (e *env) invitePage(t *testing.T, path string) invitePage {
	t.Helper()
	status, body := e.authed(t, "GET", strings.TrimPrefix(path, e.srv.URL), "")
	var p invitePage
	if status != http.StatusOK || json.Unmarshal([]byte(body), &p) != nil {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	return p
}

func (e *env) addInvite(t *testing.T, s providerfake.InviteSeed) providerfake.InviteSeed {
	t.Helper()
	s, err := e.fake.AddInvite(s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestInvitesPageByUserLikeTheProvider(t *testing.T) {
	e := start(t, providerfake.Options{})
	var want []string
	for range 3 {
		want = append(want, e.addInvite(t, providerfake.InviteSeed{User: "u1"}).ID)
		e.addInvite(t, providerfake.InviteSeed{User: "u2"})
	}
	var got []string
	path := "/v2/invites?user=u1&limit=2"
	for pages := 0; path != ""; pages++ {
		p := e.invitePage(t, path)
		for _, inv := range p.Results {
			got = append(got, inv["id"].(string))
			if inv["user"] != "u1" || inv["user_token"] != nil || inv["status"] != "sent" || !strings.HasPrefix(inv["url"].(string), "https://") {
				t.Errorf("listed %v", inv)
			}
		}
		if pages == 0 {
			// Added between pages: comes last, nothing repeats.
			want = append(want, e.addInvite(t, providerfake.InviteSeed{User: "u1"}).ID)
		}
		path = ""
		if p.Next != nil {
			if !strings.Contains(*p.Next, "user=u1") || !strings.Contains(*p.Next, "limit=2") {
				t.Errorf("next link %s drops the filter or the limit", *p.Next)
			}
			path = *p.Next
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged through %v; want %v", got, want)
	}
	if all := e.invitePage(t, "/v2/invites"); len(all.Results) != 7 || all.Next != nil {
		t.Errorf("unfiltered: %d invites, next %v; want all 7 on one page", len(all.Results), all.Next)
	}
}

func TestResendingAnInvite(t *testing.T) {
	fixed := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	e := start(t, providerfake.Options{Clock: func() time.Time { return fixed }})
	inv := e.addInvite(t, providerfake.InviteSeed{User: "u1", Status: "completed"})
	revoked := e.addInvite(t, providerfake.InviteSeed{User: "u1", Status: "revoked"})
	if !revoked.RevokedAt.Equal(fixed) {
		t.Errorf("revoked invite seeded with revoked_at %s", revoked.RevokedAt)
	}

	status, body := e.authed(t, "POST", "/v2/invites/"+inv.ID, "")
	var out struct {
		ID, User, URL, Status string
		UserToken             *string   `json:"user_token"`
		InvitedAt             time.Time `json:"invited_at"`
		UpdatedAt             time.Time `json:"updated_at"`
		CreatedAt             time.Time `json:"created_at"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil {
		t.Fatalf("re-send: %d %s", status, body)
	}
	if out.ID != inv.ID || out.URL != inv.URL || out.Status != "completed" || out.UserToken == nil ||
		!out.InvitedAt.After(inv.InvitedAt) || !out.UpdatedAt.Equal(out.InvitedAt) || !out.CreatedAt.Equal(inv.CreatedAt) {
		t.Errorf("re-sent %s; want the same invite with a user token, invited_at and updated_at moved", body)
	}
	if e.fake.ResendCount(inv.ID) != 1 || len(e.fake.Invites()) != 2 {
		t.Errorf("ResendCount %d, %d invites; want 1 and no new invite", e.fake.ResendCount(inv.ID), len(e.fake.Invites()))
	}

	var answer struct{ Detail string }
	status, body = e.authed(t, "POST", "/v2/invites/"+revoked.ID, "")
	if status != http.StatusBadRequest || json.Unmarshal([]byte(body), &answer) != nil || !strings.Contains(answer.Detail, "revoked") {
		t.Errorf("revoked: %d %s; want 400 with a detail", status, body)
	}
	if status, _ := e.authed(t, "POST", "/v2/invites/unknown", ""); status != http.StatusNotFound {
		t.Errorf("unknown: %d", status)
	}
	if status, _ := e.call(t, "POST", "/v2/invites/"+inv.ID, "", keyID, "wrong"); status != http.StatusUnauthorized {
		t.Errorf("wrong key: %d", status)
	}
	if n := e.fake.ResendCount(revoked.ID) + e.fake.ResendCount("unknown"); n != 0 || e.fake.ResendCount(inv.ID) != 1 {
		t.Errorf("refused re-sends counted")
	}
}

func TestInviteControlRoute(t *testing.T) {
	e := start(t, providerfake.Options{})
	status, body := e.authed(t, "POST", "/_fake/invites", `{"id":"inv-1","user":"u1","url":"https://link.example/inv-1","status":"revoked"}`)
	if status != http.StatusCreated || !strings.Contains(body, `"status":"revoked"`) || strings.Contains(body, `"revoked_at":null`) {
		t.Fatalf("seed: %d %s", status, body)
	}
	if got := e.fake.Invites(); len(got) != 1 || got[0].URL != "https://link.example/inv-1" {
		t.Errorf("Invites() = %+v", got)
	}
	if status, _ := e.authed(t, "POST", "/_fake/invites", `{"id":"inv-1"}`); status != http.StatusConflict {
		t.Errorf("duplicate: %d", status)
	}
	if status, _ := e.authed(t, "POST", "/_fake/invites", `{"colour":"red"}`); status != http.StatusBadRequest {
		t.Errorf("unknown field: %d", status)
	}
	if status, _ := e.call(t, "POST", "/_fake/invites", `{}`, "", ""); status != http.StatusUnauthorized {
		t.Errorf("no credentials: %d", status)
	}
}
