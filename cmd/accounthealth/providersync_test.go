package main

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/provider/providerfake"
)

// The commands that ask the provider through the server: sync, health
// refresh, reconnect-link and reconnect-invite, against a fake provider.
func TestProviderCommands(t *testing.T) {
	fake := providerfake.New(providerfake.Options{})
	t.Cleanup(fake.Close)
	old := time.Now().Add(-48 * time.Hour)
	for _, s := range []providerfake.AccountSeed{
		{ID: "acct-d", User: "user-d", Status: "error", ErrorCode: "auth_required", ScannedAt: old},
		{ID: "acct-h", User: "user-h", Status: "connected", ScannedAt: old},
		{ID: "acct-f", User: "user-f", Status: "error", ErrorCode: "invalid_credentials"},
	} {
		if _, err := fake.AddAccount(s); err != nil {
			t.Fatal(err)
		}
	}
	invite, err := fake.AddInvite(providerfake.InviteSeed{User: "user-d", CreatedAt: old})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(fake.Handler())
	t.Cleanup(api.Close)
	s := serve(t, t.TempDir(), "ACCOUNTHEALTH_ARGYLE_API_URL="+api.URL+"/v2",
		"ACCOUNTHEALTH_ARGYLE_API_KEY_ID="+providerfake.DefaultKeyID, "ACCOUNTHEALTH_ARGYLE_API_KEY_SECRET="+providerfake.DefaultKeySecret,
		"ACCOUNTHEALTH_SYNC_ON_START=false", "ACCOUNTHEALTH_RECONCILE_INTERVAL=0")
	env := []string{"ACCOUNTHEALTH_SERVER=" + s.grpc}

	cases := []cliCase{
		{"sync", []string{"sync"}, exitOK, []string{"backfill done: 3 accounts in 1 pages, 3 applied"}, []string{"seen 3, applied 3", "; done"}},
		{"sync again", []string{"sync"}, exitOK, []string{"backfill done: 3 accounts"}, nil},
		{"refresh", []string{"health", "refresh", "acct-d"}, exitOK, []string{"fetched account acct-d from the provider (DUPLICATE): DISCONNECTED since "}, nil},
		{"refresh unknown", []string{"health", "refresh", "nobody"}, exitNotFound, nil, []string{"neither this service nor the provider knows it"}},
		{"reconnect link", []string{"reconnect-link", "acct-d"}, exitOK,
			[]string{"remedy          RECONNECT: ", "link accountId  acct-d", "link userToken  ey", "invite          " + invite.URL}, nil},
		{"reconnect link of a healthy account", []string{"reconnect-link", "acct-h"}, exitError, nil, []string{"account acct-h is connected; there is nothing to fix in Link"}},
		{"reconnect invite", []string{"reconnect-invite", "acct-d"}, exitOK, []string{"re-sent invite " + invite.ID + " to user user-d"}, nil},
		{"reconnect invite again", []string{"reconnect-invite", "acct-d"}, exitError, nil, []string{"it may be sent again from"}},
		{"reconnect invite without invite", []string{"reconnect-invite", "acct-f"}, exitError, nil, []string{"holds no invite for user user-f"}},
	}
	runCases(t, env, cases)
	if n := fake.ResendCount(invite.ID); n != 1 {
		t.Errorf("invite re-sent %d times, want 1", n)
	}
	// The start-up line (logged before the first call was served) names
	// the store and the provider's API.
	if log := s.stderr.String(); !strings.Contains(log, `store="sqlite in `) || !strings.Contains(log, "provider_api="+api.URL+"/v2") {
		t.Errorf("start-up line:\n%s", log)
	}
}
