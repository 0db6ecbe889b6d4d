package providerfake_test

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/provider/providerfake"
)

// drain returns the events of the deliveries received once the fake has
// none in progress.
func drain(e *env, got <-chan delivery) []string {
	e.fake.WaitDeliveries()
	var events []string
	for len(got) > 0 {
		d := <-got
		events = append(events, d.Event+" "+d.Data.Account)
	}
	return events
}

// connection fetches an account through the client, as the service
// reconciling it would.
func connection(t *testing.T, e *env, id string) provider.Connection {
	t.Helper()
	a, err := e.client.GetAccount(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a.Connection
}

func TestSilentChangesShowOnlyAtTheProvider(t *testing.T) {
	url, got := receiver(t)
	e := start(t, providerfake.Options{WebhookURL: url, WebhookSecret: webhookSecret, IncludeResource: true})
	a := e.add(t, providerfake.AccountSeed{})

	mustDo(t, e.fake.Fail(a.ID, "invalid_mfa", providerfake.Silently()))
	if c := connection(t, e, a.ID); c.Status != provider.StatusError || c.ErrorCode != "invalid_mfa" {
		t.Errorf("after a silent Fail: %+v", c)
	}
	mustDo(t, e.fake.Connect(a.ID, providerfake.Silently()))
	mustDo(t, e.fake.Disconnect(a.ID, "expired_credentials", providerfake.Silently()))
	if c := connection(t, e, a.ID); c.ErrorCode != "expired_credentials" {
		t.Errorf("after a silent Disconnect: %+v", c)
	}
	if events := drain(e, got); len(events) != 0 {
		t.Errorf("silent changes delivered %v", events)
	}

	mustDo(t, e.fake.Remove(a.ID, providerfake.Silently()))
	if _, err := e.client.GetAccount(t.Context(), a.ID); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("after a silent Remove: %v; want ErrNotFound", err)
	}
	if events := drain(e, got); len(events) != 0 {
		t.Errorf("a silent Remove delivered %v", events)
	}
	if err := e.fake.Connect("unknown", providerfake.Silently()); !errors.Is(err, providerfake.ErrUnknownAccount) {
		t.Errorf("silent Connect(unknown): %v", err)
	}
}

func TestDroppingLosesOnlyTheNamedEvents(t *testing.T) {
	url, got := receiver(t)
	e := start(t, providerfake.Options{WebhookURL: url, WebhookSecret: webhookSecret})
	a := e.add(t, providerfake.AccountSeed{})

	// Each change's deliveries run on their own: drained one by one.
	steps := []struct {
		change func() error
		want   []string
	}{
		{func() error { return e.fake.Fail(a.ID, "", providerfake.Dropping("accounts.updated")) }, []string{"accounts.failed"}},
		{func() error { return e.fake.Connect(a.ID, providerfake.Dropping("accounts.connected")) }, []string{"accounts.updated"}},
		{func() error { return e.fake.Disconnect(a.ID, "", providerfake.Dropping("accounts.failed")) }, []string{"accounts.updated"}}, // not one of its events
		{func() error { return e.fake.Remove(a.ID, providerfake.Dropping("accounts.updated")) }, []string{"accounts.removed"}},
	}
	for i, s := range steps {
		mustDo(t, s.change())
		var want []string
		for _, ev := range s.want {
			want = append(want, ev+" "+a.ID)
		}
		if events := drain(e, got); !slices.Equal(events, want) {
			t.Errorf("step %d delivered %v; want %v", i, events, want)
		}
	}
}

func TestSilentChangesOverTheControlRoutes(t *testing.T) {
	url, got := receiver(t)
	e := start(t, providerfake.Options{WebhookURL: url})
	a := e.add(t, providerfake.AccountSeed{})

	path := "/_fake/accounts/" + a.ID
	if status, body := e.authed(t, "POST", path+"/disconnect", `{"error_code":"expired_credentials","silently":true}`); status != http.StatusNoContent {
		t.Fatalf("silent disconnect: %d %s", status, body)
	}
	if c := connection(t, e, a.ID); c.ErrorCode != "expired_credentials" {
		t.Errorf("after a silent disconnect: %+v", c)
	}
	if status, body := e.authed(t, "POST", path+"/fail", `{"drop":["accounts.updated"]}`); status != http.StatusNoContent {
		t.Fatalf("fail dropping accounts.updated: %d %s", status, body)
	}
	if events := drain(e, got); !slices.Equal(events, []string{"accounts.failed " + a.ID}) {
		t.Errorf("delivered %v; want only the accounts.failed", events)
	}
	if status, _ := e.authed(t, "POST", path+"/connect", `{"quietly":true}`); status != http.StatusBadRequest {
		t.Errorf("an unknown option: %d; want 400", status)
	}
	if status, body := e.authed(t, "POST", path+"/remove", `{"silently":true}`); status != http.StatusNoContent {
		t.Fatalf("silent remove: %d %s", status, body)
	}
	if events := drain(e, got); len(events) != 0 || len(e.fake.Accounts()) != 0 {
		t.Errorf("after a silent remove: delivered %v, %d accounts left", events, len(e.fake.Accounts()))
	}
}
