package service_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/provider/providerfake"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/store"
)

const fakeKeySecret = "fake-key-secret-never-logged"

// withFake starts the service wired to a fake provider that sends its
// webhooks (e.g. accounts.removed after a delete) back to the service.
func withFake(t testing.TB, st store.Store, configure ...func(*service.Config)) (*env, *providerfake.Fake) {
	t.Helper()
	return withFakeLogging(t, slog.LevelInfo, st, configure...)
}

// withFakeLogging is withFake with a chosen log level.
func withFakeLogging(t testing.TB, level slog.Level, st store.Store, configure ...func(*service.Config)) (*env, *providerfake.Fake) {
	t.Helper()
	var fake *providerfake.Fake
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fake.Handler().ServeHTTP(w, r) }))
	t.Cleanup(api.Close)
	e := startLogging(t, level, st, append([]func(*service.Config){func(c *service.Config) {
		// Tests that want the provider sync turn it on.
		c.SyncOnStart, c.ReconcileInterval = false, 0
		// A generous timeout: a loaded machine (the race detector on two
		// cores) can take a second to answer; a test of a hung provider
		// shortens it (hungProviderTimeout).
		c.Provider = provider.Config{
			BaseURL: api.URL + "/v2", KeyID: "fake-key", KeySecret: fakeKeySecret,
			Timeout: 10 * time.Second, MaxElapsed: 20 * time.Second, MaxRetries: 2,
			BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		}
	}}, configure...)...)
	fake = providerfake.New(providerfake.Options{
		KeyID: "fake-key", KeySecret: fakeKeySecret,
		WebhookURL: "http://" + e.addrs.Webhook + service.WebhookPath, WebhookSecret: fixtureSecret,
		RetryDelay: 10 * time.Millisecond,
	})
	t.Cleanup(fake.Close)
	return e, fake
}

// hungProviderTimeout gives up on a provider that never answers soon, for
// the tests of one.
func hungProviderTimeout(c *service.Config) {
	c.Provider.Timeout, c.Provider.MaxElapsed = 300*time.Millisecond, 2*time.Second
}

// seed makes an account known to both the fake provider and the service,
// in the state the given deliveries lead to.
func seed(t *testing.T, e *env, fake *providerfake.Fake, id string, bodies ...[]byte) {
	t.Helper()
	if _, err := fake.AddAccount(providerfake.AccountSeed{ID: id, User: "user-" + id, Status: "error", ErrorCode: "invalid_credentials"}); err != nil {
		t.Fatal(err)
	}
	for _, b := range bodies {
		e.deliver(b)
	}
}

// failedBody is the accounts.failed of an account's first login, with the
// account object (so that no fetch follows it).
func failedBody(id string) []byte {
	ts := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	return fmt.Appendf(nil, `{"event":"accounts.failed","name":"t","data":{"account":%q,"user":"user-%s","error_code":"invalid_credentials","error_message":"wrong password",`+
		`"resource":{"id":%q,"user":"user-%s","created_at":%q,"updated_at":%q,"scanned_at":null,"connection":{"status":"error","error_code":"invalid_credentials","error_message":"wrong password","updated_at":%q}}}}`,
		id, id, id, id, ts, ts, ts)
}

// deleteCall runs DeleteFailedAccount over gRPC or REST.
type deleteCall func(e *env, id string, force, dryRun bool) (*ahv1.DeleteFailedAccountResponse, codes.Code, string)

var deleteCalls = []struct {
	name string
	call deleteCall
}{
	{"grpc", func(e *env, id string, force, dryRun bool) (*ahv1.DeleteFailedAccountResponse, codes.Code, string) {
		resp := &ahv1.DeleteFailedAccountResponse{}
		err := e.conn.Invoke(e.t.Context(), "/accounthealth.v1.AccountHealthService/DeleteFailedAccount",
			&ahv1.DeleteFailedAccountRequest{AccountId: id, Force: force, DryRun: dryRun}, resp)
		st := status.Convert(err)
		return resp, st.Code(), st.Message()
	}},
	{"rest", func(e *env, id string, force, dryRun bool) (*ahv1.DeleteFailedAccountResponse, codes.Code, string) {
		u := fmt.Sprintf("http://%s/v1/accounts/%s?force=%t&dryRun=%t", e.addrs.API, id, force, dryRun)
		req, _ := http.NewRequest(http.MethodDelete, u, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			e.t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		resp := &ahv1.DeleteFailedAccountResponse{}
		if res.StatusCode != http.StatusOK {
			code, msg := e.restError(res.StatusCode, raw)
			return resp, code, msg
		}
		if err := protojson.Unmarshal(raw, resp); err != nil {
			e.t.Fatalf("decode %s: %v", raw, err)
		}
		return resp, codes.OK, ""
	}},
}

func TestDeleteFailedAccountPreconditions(t *testing.T) {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, dc := range deleteCalls {
		t.Run(dc.name, func(t *testing.T) {
			e, fake := withFake(t, nil)
			seed(t, e, fake, "never-connected", failedBody("never-connected"))
			seed(t, e, fake, "once-connected", updatedBody("once-connected", "user-once-connected", "connected", "", at), failedBody("once-connected"))
			seed(t, e, fake, "healthy", updatedBody("healthy", "u", "connected", "", at))
			seed(t, e, fake, "disconnected", updatedBody("disconnected", "u", "error", "auth_required", at))
			seed(t, e, fake, "degraded", updatedBody("degraded", "u", "error", "platform_unavailable", at))
			seed(t, e, fake, "connecting", leanBody("accounts.added", "connecting", "u"))

			cases := []struct {
				id            string
				force, dryRun bool
				code          codes.Code
				outcome       ahv1.DeletionOutcome
				message       string
			}{
				{"unknown", false, false, codes.NotFound, 0, "not found"},
				{"healthy", true, false, codes.FailedPrecondition, 0, "HEALTHY"},
				{"disconnected", true, false, codes.FailedPrecondition, 0, "DISCONNECTED"},
				{"degraded", true, false, codes.FailedPrecondition, 0, "DEGRADED"},
				{"connecting", true, false, codes.FailedPrecondition, 0, "CONNECTING"},
				{"once-connected", false, false, codes.FailedPrecondition, 0, "force"},
				{"never-connected", false, true, codes.OK, ahv1.DeletionOutcome_DELETION_OUTCOME_WOULD_DELETE, ""},
				{"never-connected", false, false, codes.OK, ahv1.DeletionOutcome_DELETION_OUTCOME_DELETED, ""},
				{"never-connected", false, false, codes.OK, ahv1.DeletionOutcome_DELETION_OUTCOME_DELETED, ""}, // retried: same answer
				{"once-connected", true, false, codes.OK, ahv1.DeletionOutcome_DELETION_OUTCOME_DELETED, ""},
			}
			for _, c := range cases {
				resp, code, msg := dc.call(e, c.id, c.force, c.dryRun)
				if code != c.code || resp.GetOutcome() != c.outcome || !strings.Contains(msg, c.message) {
					t.Errorf("%s force=%v dry=%v: %s %s %q, want %s %s %q", c.id, c.force, c.dryRun, code, resp.GetOutcome(), msg, c.code, c.outcome, c.message)
				}
			}
			for _, id := range []string{"never-connected", "once-connected"} {
				if n := fake.DeleteCount(id); n != 1 {
					t.Errorf("%s: %d DELETEs reached the provider, want 1", id, n)
				}
				if got := e.getHealth(readers[0], id).GetState(); got != ahv1.HealthState_HEALTH_STATE_REMOVED {
					t.Errorf("%s: state %s after deletion", id, got)
				}
			}
			for _, id := range []string{"healthy", "disconnected", "degraded", "connecting"} {
				if n := fake.DeleteCount(id); n != 0 {
					t.Errorf("%s: %d DELETEs for an account that must not be deleted", id, n)
				}
			}
		})
	}
}

// The deletion is audited in the timeline with the caller, and exactly one
// removal event reaches the stream. The provider sends its own
// accounts.removed once it has deleted the account; whichever of that and
// our audit entry commits first removes the account, the other changes
// nothing more.
func TestDeleteFailedAccountAuditAndProviderWebhook(t *testing.T) {
	e, fake := withFake(t, nil)
	seed(t, e, fake, "acct", failedBody("acct"))
	w := e.watchGRPC(&ahv1.StreamDisconnectionsRequest{Kinds: []ahv1.TransitionKind{ahv1.TransitionKind_TRANSITION_KIND_REMOVED}})
	if _, code, msg := deleteCalls[0].call(e, "acct", false, false); code != codes.OK {
		t.Fatalf("delete: %s %s", code, msg)
	}
	if ev := w.events(t, 1)[0]; ev.GetAccountId() != "acct" || ev.GetPreviousState() != ahv1.HealthState_HEALTH_STATE_AUTH_FAILED {
		t.Errorf("removal event = %v", ev)
	}
	fake.WaitDeliveries()
	w.quiet(t) // one removal, one event
	events := &ahv1.ListAccountEventsResponse{}
	if code := e.callGRPC("ListAccountEvents", &ahv1.ListAccountEventsRequest{AccountId: "acct"}, events); code != codes.OK {
		t.Fatal(code)
	}
	evs := events.GetEvents()
	if len(evs) != 3 {
		t.Fatalf("timeline has %d entries, want failed, our deletion, the provider's removal: %v", len(evs), evs)
	}
	var audit, webhookRemoval *ahv1.AccountEvent
	for _, ev := range evs[1:] {
		if ev.GetSource() == "api" {
			audit = ev
		} else {
			webhookRemoval = ev
		}
	}
	if audit == nil || !strings.HasPrefix(audit.GetActor(), "unauthenticated@") || audit.GetEventType() != "accounts.removed" {
		t.Fatalf("no audit entry naming the caller: %v", evs)
	}
	if webhookRemoval == nil || webhookRemoval.GetEventType() != "accounts.removed" {
		t.Fatalf("no provider removal: %v", evs)
	}
	first, second := evs[1], evs[2]
	if first.GetTransition().GetKind() != ahv1.TransitionKind_TRANSITION_KIND_REMOVED || first.GetOutcome() != ahv1.DeliveryOutcome_DELIVERY_OUTCOME_APPLIED {
		t.Errorf("the first removal did not remove: %v", first)
	}
	if second.GetTransition() != nil || second.GetOutcome() != ahv1.DeliveryOutcome_DELIVERY_OUTCOME_AFTER_REMOVAL {
		t.Errorf("the second removal changed something: %v", second)
	}
	if strings.Contains(e.logs.String(), fakeKeySecret) {
		t.Error("the provider key secret appears in the log")
	}
}

func TestDeleteFailedAccountProviderFailures(t *testing.T) {
	cases := []struct {
		name    string
		fault   providerfake.Fault
		code    codes.Code
		outcome ahv1.DeletionOutcome
		message string
	}{
		{"already gone", providerfake.Fault{Route: "DELETE /v2/accounts/{id}", Status: 404, Times: 1}, codes.OK, ahv1.DeletionOutcome_DELETION_OUTCOME_ALREADY_GONE, ""},
		{"wrong key", providerfake.Fault{Route: "DELETE /v2/accounts/{id}", Status: 401}, codes.FailedPrecondition, 0, "API key"},
		{"rate limited past the budget", providerfake.Fault{Route: "DELETE /v2/accounts/{id}", Status: 429, RetryAfter: "1"}, codes.Unavailable, 0, "retry later"},
		{"provider down", providerfake.Fault{Route: "DELETE /v2/accounts/{id}", Status: 503}, codes.Unavailable, 0, "retry later"},
		{"provider hangs", providerfake.Fault{Route: "DELETE /v2/accounts/{id}", Hang: true}, codes.Unavailable, 0, "retry later"},
		{"one 500 then fine", providerfake.Fault{Route: "DELETE /v2/accounts/{id}", Status: 500, Times: 1}, codes.OK, ahv1.DeletionOutcome_DELETION_OUTCOME_DELETED, ""},
		{"one 429 then fine", providerfake.Fault{Route: "DELETE /v2/accounts/{id}", Status: 429, RetryAfter: "0", Times: 1}, codes.OK, ahv1.DeletionOutcome_DELETION_OUTCOME_DELETED, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var configure []func(*service.Config)
			if c.fault.Hang {
				configure = append(configure, hungProviderTimeout)
			}
			e, fake := withFake(t, nil, configure...)
			seed(t, e, fake, "acct", failedBody("acct"))
			fake.AddFault(c.fault)
			for _, dc := range deleteCalls {
				resp, code, msg := dc.call(e, "acct", false, false)
				if code != c.code || resp.GetOutcome() != c.outcome || !strings.Contains(msg, c.message) {
					t.Errorf("%s: %s %s %q, want %s %s %q", dc.name, code, resp.GetOutcome(), msg, c.code, c.outcome, c.message)
				}
			}
			want := ahv1.HealthState_HEALTH_STATE_AUTH_FAILED
			if c.code == codes.OK {
				want = ahv1.HealthState_HEALTH_STATE_REMOVED
			}
			if got := e.getHealth(readers[0], "acct").GetState(); got != want {
				t.Errorf("state %s, want %s", got, want)
			}
			if strings.Contains(e.logs.String(), fakeKeySecret) {
				t.Error("the provider key secret appears in the log")
			}
		})
	}
}

func TestDeleteFailedAccountConcurrentCallsSendOneDelete(t *testing.T) {
	e, fake := withFake(t, nil)
	seed(t, e, fake, "acct", failedBody("acct"))
	fake.AddFault(providerfake.Fault{Route: "DELETE /v2/accounts/{id}", Latency: 100 * time.Millisecond})
	var wg sync.WaitGroup
	outcomes := make([]ahv1.DeletionOutcome, 16)
	for i := range outcomes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, code, msg := deleteCalls[i%2].call(e, "acct", false, false)
			if code != codes.OK {
				t.Errorf("call %d: %s %s", i, code, msg)
			}
			outcomes[i] = resp.GetOutcome()
		}()
	}
	wg.Wait()
	for i, o := range outcomes {
		if o != ahv1.DeletionOutcome_DELETION_OUTCOME_DELETED {
			t.Errorf("call %d: %s", i, o)
		}
	}
	if n := fake.DeleteCount("acct"); n != 1 {
		t.Errorf("%d DELETEs reached the provider, want 1", n)
	}
}

func TestDeleteFailedAccountWithoutProvider(t *testing.T) {
	e := start(t, nil)
	e.deliver(failedBody("acct"))
	_, code, msg := deleteCalls[0].call(e, "acct", false, false)
	if code != codes.FailedPrecondition || !strings.Contains(msg, "--argyle-api-key-id") {
		t.Errorf("%s %q", code, msg)
	}
}

func TestPurgeFailedAccounts(t *testing.T) {
	// Five failed logins two hours old, one fresh, one healthy: committed
	// straight to the store, since the service stamps deliveries "now".
	st := openStore(t, t.TempDir())
	old := time.Now().Add(-2 * time.Hour)
	var ds []store.Delivery
	addFailed := func(id string, at time.Time) {
		ds = append(ds, store.Delivery{Body: failedBody(id), Decoded: health.Delivery{
			Event: health.EventAccountsFailed, AccountID: id, UserID: "user-" + id, ErrorCode: "invalid_credentials", ReceivedAt: at,
		}})
	}
	for i := range 5 {
		addFailed(fmt.Sprintf("failed-%d", i), old)
	}
	addFailed("fresh", time.Now())
	if _, err := st.Ingest(t.Context(), ds); err != nil {
		t.Fatal(err)
	}
	e, fake := withFake(t, st)
	for _, id := range []string{"failed-0", "failed-1", "failed-2", "failed-3", "failed-4", "fresh", "healthy"} {
		if _, err := fake.AddAccount(providerfake.AccountSeed{ID: id, User: "user-" + id}); err != nil {
			t.Fatal(err)
		}
	}
	e.deliver(updatedBody("healthy", "u", "connected", "", old))

	purge := func(req *ahv1.PurgeFailedAccountsRequest) ([]*ahv1.PurgeFailedAccountsResponse, codes.Code) {
		stream, err := ahv1.NewAccountHealthServiceClient(e.conn).PurgeFailedAccounts(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		var out []*ahv1.PurgeFailedAccountsResponse
		for {
			msg, err := stream.Recv()
			if err == io.EOF {
				return out, codes.OK
			}
			if err != nil {
				return out, status.Code(err)
			}
			out = append(out, msg)
		}
	}
	for _, bad := range []*ahv1.PurgeFailedAccountsRequest{{}, {OlderThan: durationpb.New(time.Second)}, {OlderThan: durationpb.New(time.Hour), Limit: -1}} {
		if _, code := purge(bad); code != codes.InvalidArgument {
			t.Errorf("%v: %s, want INVALID_ARGUMENT", bad, code)
		}
	}
	if got, code := purge(&ahv1.PurgeFailedAccountsRequest{OlderThan: durationpb.New(3 * time.Hour)}); code != codes.OK || len(got) != 1 || got[0].GetTotal() != 0 || got[0].GetResult() != nil {
		t.Errorf("older than 3h: %s %v", code, got)
	}

	dry, code := purge(&ahv1.PurgeFailedAccountsRequest{OlderThan: durationpb.New(time.Hour), DryRun: true, Limit: 3})
	if code != codes.OK || len(dry) != 3 {
		t.Fatalf("dry run: %s, %d results", code, len(dry))
	}
	for i, m := range dry {
		if m.GetResult().GetOutcome() != ahv1.DeletionOutcome_DELETION_OUTCOME_WOULD_DELETE || m.GetProcessed() != int32(i+1) || m.GetTotal() != 3 {
			t.Errorf("dry run result %d: %v", i, m)
		}
		if n := fake.DeleteCount(m.GetResult().GetAccountId()); n != 0 {
			t.Errorf("the dry run deleted %s", m.GetResult().GetAccountId())
		}
	}

	// An outage fails each account on its own, with the reason a single
	// deletion would carry; a refused key ends the purge.
	fake.AddFault(providerfake.Fault{Route: "DELETE /v2/accounts/{id}", Status: 503})
	down, code := purge(&ahv1.PurgeFailedAccountsRequest{OlderThan: durationpb.New(time.Hour), Limit: 1})
	if code != codes.OK || len(down) != 1 {
		t.Fatalf("purge with the provider down: %s, %d results", code, len(down))
	}
	if r := down[0].GetResult(); r.GetOutcome() != ahv1.DeletionOutcome_DELETION_OUTCOME_FAILED ||
		r.GetReason() != ahv1.ErrorReason_PROVIDER_UNAVAILABLE || !strings.Contains(r.GetMessage(), "retry later") {
		t.Errorf("purge with the provider down: %v", r)
	}
	fake.ClearFaults()
	fake.AddFault(providerfake.Fault{Route: "DELETE /v2/accounts/{id}", Status: 401})
	if got, code := purge(&ahv1.PurgeFailedAccountsRequest{OlderThan: durationpb.New(time.Hour)}); code != codes.FailedPrecondition || len(got) != 0 {
		t.Errorf("purge with a refused key: %s %v", code, got)
	}
	fake.ClearFaults()

	done, code := purge(&ahv1.PurgeFailedAccountsRequest{OlderThan: durationpb.New(time.Hour)})
	if code != codes.OK || len(done) != 5 {
		t.Fatalf("purge: %s, %d results", code, len(done))
	}
	for _, m := range done {
		r := m.GetResult()
		if r.GetOutcome() != ahv1.DeletionOutcome_DELETION_OUTCOME_DELETED || fake.DeleteCount(r.GetAccountId()) != 1 || !strings.HasPrefix(r.GetAccountId(), "failed-") {
			t.Errorf("purge result %v", r)
		}
	}
	for _, id := range []string{"fresh", "healthy"} {
		if fake.DeleteCount(id) != 0 {
			t.Errorf("purge deleted %s", id)
		}
	}
}

// The README's REST purge works as written, and says when nothing matched.
func TestPurgeOverREST(t *testing.T) {
	e := start(t, nil)
	res, err := http.Post("http://"+e.addrs.API+"/v1/accounts:purgeFailed", "application/json", strings.NewReader(`{"olderThan":"2592000s","dryRun":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"total":0`) {
		t.Errorf("%d %s, want one line with total 0", res.StatusCode, raw)
	}
}
