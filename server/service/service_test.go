package service_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// updatedBody is an accounts.updated delivery with the account object, in
// the provider's shape.
func updatedBody(account, user, status, code string, at time.Time) []byte {
	errCode, errMsg := "null", "null"
	if code != "" {
		errCode, errMsg = `"`+code+`"`, `"error `+code+`"`
	}
	ts := at.UTC().Format(time.RFC3339Nano)
	return fmt.Appendf(nil, `{"event":"accounts.updated","name":"test","data":{"account":%q,"user":%q,"resource":{"id":%q,"user":%q,"employers":["Acme"],"item":"item_1","source":"adp","created_at":"2026-01-01T00:00:00Z","updated_at":%q,"scanned_at":%q,"connection":{"status":%q,"error_code":%s,"error_message":%s,"updated_at":%q},"availability":{},"ongoing_refresh":{"status":"enabled"}}}}`,
		account, user, account, user, ts, ts, status, errCode, errMsg, ts)
}

// leanBody is a delivery without the account object.
func leanBody(event, account, user string) []byte {
	return fmt.Appendf(nil, `{"event":%q,"name":"test","data":{"account":%q,"user":%q}}`, event, account, user)
}

func TestWebhookIntakeAnswers(t *testing.T) {
	e := start(t, nil)
	big := append(leanBody("accounts.added", "big", "u"), bytes.Repeat([]byte(" "), 1<<20)...)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			acct := "acct-" + tr.name
			good := leanBody("accounts.added", acct, "user-1")
			retried := leanBody("accounts.failed", acct, "user-1")
			cases := []struct {
				name      string
				body      []byte
				signature string
				code      codes.Code
				http      int
				outcome   ahv1.DeliveryOutcome
				message   string // a part of the error message
				reason    ahv1.ErrorReason
			}{
				{"missing signature", leanBody("accounts.failed", acct+"-x", "u"), "", codes.Unauthenticated, 401, 0, "signature", ahv1.ErrorReason_MISSING_SIGNATURE},
				{"signed with another secret", leanBody("accounts.failed", acct+"-x", "u"), webhook.Sign("not-our-secret", good), codes.Unauthenticated, 401, 0, "signature", ahv1.ErrorReason_INVALID_SIGNATURE},
				{"signature of another body", leanBody("accounts.failed", acct+"-x", "u"), webhook.Sign(fixtureSecret, good), codes.Unauthenticated, 401, 0, "signature", ahv1.ErrorReason_INVALID_SIGNATURE},
				{"not hex", leanBody("accounts.failed", acct+"-x", "u"), "zz", codes.Unauthenticated, 401, 0, "signature", ahv1.ErrorReason_INVALID_SIGNATURE},
				{"not JSON", []byte(`{"event": "accounts.failed", `), "", codes.InvalidArgument, 400, 0, "JSON", ahv1.ErrorReason_MALFORMED_DELIVERY},
				{"no event", []byte(`{"name":"x","data":{"account":"` + acct + `-x"}}`), "", codes.InvalidArgument, 400, 0, "event", ahv1.ErrorReason_MALFORMED_DELIVERY},
				{"too large", big, "", codes.ResourceExhausted, 413, 0, "too large", ahv1.ErrorReason_DELIVERY_TOO_LARGE},
				{"account id with a lone surrogate", []byte(`{"event":"accounts.failed","data":{"account":"` + acct + `-x\ud800"}}`), "", codes.InvalidArgument, 400, 0,
					"data.account: not valid UTF-8 (a lone surrogate escape)", ahv1.ErrorReason_MALFORMED_DELIVERY},
				{"accepted", good, "", codes.OK, 200, ahv1.DeliveryOutcome_DELIVERY_OUTCOME_APPLIED, "", 0},
				{"lean idempotent delivery again: applied again", good, "", codes.OK, 200, ahv1.DeliveryOutcome_DELIVERY_OUTCOME_APPLIED, "", 0},
				{"lean failed", retried, "", codes.OK, 200, ahv1.DeliveryOutcome_DELIVERY_OUTCOME_APPLIED, "", 0},
				{"byte-identical retry of a lean failed", retried, "", codes.OK, 200, ahv1.DeliveryOutcome_DELIVERY_OUTCOME_DUPLICATE, "", 0},
				{"unknown event accepted", leanBody("payouts.invented", acct, "user-1"), "", codes.OK, 200, ahv1.DeliveryOutcome_DELIVERY_OUTCOME_NOT_ACCOUNT_EVENT, "", 0},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					sig := c.signature
					if sig == "" && c.code != codes.Unauthenticated {
						sig = webhook.Sign(fixtureSecret, c.body)
					}
					got := tr.send(e, c.body, sig)
					if got.code != c.code {
						t.Fatalf("code = %s (%d %q), want %s", got.code, got.http, got.message, c.code)
					}
					if tr.name == "http" && got.http != c.http {
						t.Errorf("HTTP status = %d, want %d", got.http, c.http)
					}
					if got.outcome != c.outcome {
						t.Errorf("outcome = %s, want %s", got.outcome, c.outcome)
					}
					if !strings.Contains(got.message, c.message) {
						t.Errorf("message %q does not mention %q", got.message, c.message)
					}
					if got.reason != c.reason {
						t.Errorf("reason = %s, want %s", got.reason, c.reason)
					}
				})
			}
			// Nothing refused was stored: the account of the refused
			// deliveries is unknown, under the bad id repaired too.
			for _, id := range []string{acct + "-x", acct + "-x\uFFFD"} {
				resp := &ahv1.ListAccountEventsResponse{}
				if code := e.callGRPC("ListAccountEvents", &ahv1.ListAccountEventsRequest{AccountId: id}, resp); code != codes.NotFound {
					t.Errorf("refused deliveries left a timeline for %q: %s %v", id, code, resp.GetEvents())
				}
			}
		})
	}
}

// Headers that cannot travel into gRPC as they are, a signature that is not
// UTF-8 or a request id that is not printable ASCII, do not make the route
// answer 500, which the provider would retry: the signature is wrong, and
// the request id is replaced.
func TestWebhookHeadersNotForwardable(t *testing.T) {
	e := start(t, nil)
	body := leanBody("accounts.added", "acct-1", "user-1")
	for _, c := range []struct {
		name, signature, requestID string
		want                       int
	}{
		{"signature not UTF-8", "\xff" + webhook.Sign(fixtureSecret, body)[1:], "", http.StatusUnauthorized},
		{"request id not ASCII", webhook.Sign(fixtureSecret, body), "caf\xe9", http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "http://"+e.addrs.Webhook+service.WebhookPath, bytes.NewReader(body))
			req.Header.Set(webhook.SignatureHeader, c.signature)
			if c.requestID != "" {
				req.Header.Set("X-Request-Id", c.requestID)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if id := res.Header.Get("X-Request-Id"); res.StatusCode != c.want || id == "" || id == c.requestID {
				t.Errorf("HTTP %d, request id %q; want %d and a new id", res.StatusCode, id, c.want)
			}
		})
	}
}

// The webhook route's call goes through the interceptors as gRPC calls
// do: its log lines carry the sender's request id, and the call is logged
// with its method and code.
func TestWebhookRouteInterceptors(t *testing.T) {
	e := startLogging(t, slog.LevelDebug, nil)
	body := leanBody("accounts.added", "acct-1", "user-1")
	req, _ := http.NewRequest(http.MethodPost, "http://"+e.addrs.Webhook+service.WebhookPath, bytes.NewReader(body))
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(fixtureSecret, body))
	req.Header.Set("X-Request-Id", "delivery-7")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("X-Request-Id") != "delivery-7" {
		t.Fatalf("HTTP %d, request id %q", res.StatusCode, res.Header.Get("X-Request-Id"))
	}
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	var accepted, done bool
	for line := range strings.SplitSeq(e.logs.String(), "\n") {
		if !strings.Contains(line, "request_id=delivery-7") {
			continue
		}
		accepted = accepted || strings.Contains(line, "webhook accepted")
		done = done || strings.Contains(line, `msg="rpc done" method=/accounthealth.v1.WebhookService/ReceiveArgyleWebhook code=OK`)
	}
	if !accepted || !done {
		t.Errorf("log lines with the request id: accepted %v, call logged %v\n%s", accepted, done, e.logs.String())
	}
}

func TestSignedFixtureStory(t *testing.T) {
	const (
		connected = "0190a1e3-0a4f-7c12-8e55-6b2d9f0c1a11"
		failed    = "0190a1e3-2b7e-7d03-a1c4-3e8f5a6b7c22"
	)
	type want struct {
		account  string
		state    ahv1.HealthState
		code     string
		action   ahv1.RemedyAction
		failures int32
	}
	steps := []struct {
		file    string
		outcome ahv1.DeliveryOutcome
		want    want
	}{
		{"01_accounts_added.json", ahv1.DeliveryOutcome_DELIVERY_OUTCOME_APPLIED, want{connected, ahv1.HealthState_HEALTH_STATE_CONNECTING, "", ahv1.RemedyAction_REMEDY_ACTION_WAIT, 0}},
		{"02_accounts_connected_with_resource.json", ahv1.DeliveryOutcome_DELIVERY_OUTCOME_APPLIED, want{connected, ahv1.HealthState_HEALTH_STATE_HEALTHY, "", ahv1.RemedyAction_REMEDY_ACTION_NONE, 0}},
		{"03_accounts_failed_invalid_mfa_with_resource.json", ahv1.DeliveryOutcome_DELIVERY_OUTCOME_APPLIED, want{failed, ahv1.HealthState_HEALTH_STATE_AUTH_FAILED, "invalid_mfa", ahv1.RemedyAction_REMEDY_ACTION_RETRY_MFA, 1}},
		{"04_accounts_failed_mfa_timeout_no_resource.json", ahv1.DeliveryOutcome_DELIVERY_OUTCOME_APPLIED, want{failed, ahv1.HealthState_HEALTH_STATE_AUTH_FAILED, "mfa_timeout", ahv1.RemedyAction_REMEDY_ACTION_RETRY_MFA, 2}},
		{"05_accounts_updated_auth_required.json", ahv1.DeliveryOutcome_DELIVERY_OUTCOME_APPLIED, want{connected, ahv1.HealthState_HEALTH_STATE_DISCONNECTED, "auth_required", ahv1.RemedyAction_REMEDY_ACTION_RECONNECT, 0}},
		{"06_accounts_updated_expired_credentials.json", ahv1.DeliveryOutcome_DELIVERY_OUTCOME_APPLIED, want{connected, ahv1.HealthState_HEALTH_STATE_DISCONNECTED, "expired_credentials", ahv1.RemedyAction_REMEDY_ACTION_UPDATE_CREDENTIALS, 0}},
		{"07_accounts_updated_reconnected.json", ahv1.DeliveryOutcome_DELIVERY_OUTCOME_APPLIED, want{connected, ahv1.HealthState_HEALTH_STATE_HEALTHY, "", ahv1.RemedyAction_REMEDY_ACTION_NONE, 0}},
		{"08_accounts_updated_platform_unavailable.json", ahv1.DeliveryOutcome_DELIVERY_OUTCOME_APPLIED, want{connected, ahv1.HealthState_HEALTH_STATE_DEGRADED, "platform_unavailable", ahv1.RemedyAction_REMEDY_ACTION_WAIT, 0}},
		{"09_accounts_updated_no_resource.json", ahv1.DeliveryOutcome_DELIVERY_OUTCOME_UNCONFIRMED, want{connected, ahv1.HealthState_HEALTH_STATE_DEGRADED, "platform_unavailable", ahv1.RemedyAction_REMEDY_ACTION_WAIT, 0}},
		{"10_accounts_removed.json", ahv1.DeliveryOutcome_DELIVERY_OUTCOME_APPLIED, want{connected, ahv1.HealthState_HEALTH_STATE_REMOVED, "", ahv1.RemedyAction_REMEDY_ACTION_CONNECT_NEW_ACCOUNT, 0}},
		{"11_users_fully_synced.json", ahv1.DeliveryOutcome_DELIVERY_OUTCOME_NOT_ACCOUNT_EVENT, want{connected, ahv1.HealthState_HEALTH_STATE_REMOVED, "", ahv1.RemedyAction_REMEDY_ACTION_CONNECT_NEW_ACCOUNT, 0}},
		{"12_paystubs_added_unrelated.json", ahv1.DeliveryOutcome_DELIVERY_OUTCOME_NOT_ACCOUNT_EVENT, want{connected, ahv1.HealthState_HEALTH_STATE_REMOVED, "", ahv1.RemedyAction_REMEDY_ACTION_CONNECT_NEW_ACCOUNT, 0}},
		// Late and repeated deliveries after the removal change nothing.
		{"07_accounts_updated_reconnected.json", ahv1.DeliveryOutcome_DELIVERY_OUTCOME_DUPLICATE, want{connected, ahv1.HealthState_HEALTH_STATE_REMOVED, "", ahv1.RemedyAction_REMEDY_ACTION_CONNECT_NEW_ACCOUNT, 0}},
		{"10_accounts_removed.json", ahv1.DeliveryOutcome_DELIVERY_OUTCOME_AFTER_REMOVAL, want{connected, ahv1.HealthState_HEALTH_STATE_REMOVED, "", ahv1.RemedyAction_REMEDY_ACTION_CONNECT_NEW_ACCOUNT, 0}},
	}
	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) {
			e := start(t, nil)
			for i, s := range steps {
				got := e.deliver(readFixture(t, "deliveries", s.file))
				if got.outcome != s.outcome {
					t.Fatalf("step %d %s: outcome %s, want %s", i, s.file, got.outcome, s.outcome)
				}
				h := e.getHealth(r, s.want.account)
				if h.GetState() != s.want.state || h.GetErrorCode() != s.want.code || h.GetRemedy().GetAction() != s.want.action || h.GetConsecutiveFailures() != s.want.failures {
					t.Fatalf("step %d %s: got %s code=%q action=%s failures=%d, want %+v", i, s.file,
						h.GetState(), h.GetErrorCode(), h.GetRemedy().GetAction(), h.GetConsecutiveFailures(), s.want)
				}
			}

			// The removed account keeps the last snapshot it had and says what to do.
			h := e.getHealth(r, connected)
			if !h.GetEverConnected() || h.GetUserId() != "0190a1e2-5c3d-7b41-9f2e-1d7c3a4b5e60" {
				t.Errorf("ever_connected=%v user=%q", h.GetEverConnected(), h.GetUserId())
			}
			if h.GetLastSnapshot().GetFields()["item"].GetStringValue() != "item_000041078" {
				t.Errorf("last snapshot not served: %v", h.GetLastSnapshot())
			}
			if h.GetRemedy().GetLink().GetUserId() == "" || h.GetRemedy().GetMessage() == "" {
				t.Errorf("remedy lacks its sentence or Link user: %v", h.GetRemedy())
			}

			// The timeline holds every delivery for the account, with the transitions they caused.
			events := &ahv1.ListAccountEventsResponse{}
			if code := r.call(e, "ListAccountEvents", &ahv1.ListAccountEventsRequest{AccountId: connected}, events); code != codes.OK {
				t.Fatalf("ListAccountEvents: %s", code)
			}
			var kinds []string
			for _, ev := range events.GetEvents() {
				if tr := ev.GetTransition(); tr != nil {
					kinds = append(kinds, strings.TrimPrefix(tr.GetKind().String(), "TRANSITION_KIND_"))
				}
			}
			wantKinds := "DISCONNECTED DISCONNECTED RECOVERED DEGRADED REMOVED"
			if got := strings.Join(kinds, " "); got != wantKinds {
				t.Errorf("transitions = %s, want %s", got, wantKinds)
			}
			// 01,02,05..10 and 12 name the account, and so does the second
			// (lean) 10, recorded after the removal; 11 (a user event) does
			// not, and the second 07 is a redelivery.
			if n := len(events.GetEvents()); n != 10 {
				t.Errorf("timeline has %d entries, want 10", n)
			}

			sum := &ahv1.GetHealthSummaryResponse{}
			if code := r.call(e, "GetHealthSummary", &ahv1.GetHealthSummaryRequest{}, sum); code != codes.OK {
				t.Fatalf("GetHealthSummary: %s", code)
			}
			counts := map[ahv1.HealthState]int64{}
			for _, c := range sum.GetByState() {
				counts[c.GetState()] = c.GetCount()
			}
			if sum.GetTotal() != 2 || counts[ahv1.HealthState_HEALTH_STATE_REMOVED] != 1 || counts[ahv1.HealthState_HEALTH_STATE_AUTH_FAILED] != 1 {
				t.Errorf("summary = %v", sum)
			}
			if len(sum.GetByErrorCode()) != 1 || sum.GetByErrorCode()[0].GetErrorCode() != "mfa_timeout" {
				t.Errorf("by error code = %v", sum.GetByErrorCode())
			}
		})
	}
}

// Every delivery recorded from the provider's sandbox is accepted, with the
// signature it was recorded with when there is one.
func TestRecordedDeliveriesAccepted(t *testing.T) {
	e := start(t, nil)
	files, _ := filepath.Glob(filepath.Join(fixturesDir, "recorded", "*.json"))
	var n int
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "account_object_") {
			continue
		}
		body := readFixture(t, "recorded", filepath.Base(f))
		sig := webhook.Sign(recordedSecret, body)
		if recorded, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".sig.txt"); err == nil {
			sig = string(recorded)
		}
		if got := e.postHTTP(body, sig); got.http != http.StatusOK {
			t.Errorf("%s: %d %s", filepath.Base(f), got.http, got.message)
		}
		n++
	}
	if n < 30 {
		t.Fatalf("only %d recorded deliveries found in %s", n, fixturesDir)
	}
}

func TestReadErrors(t *testing.T) {
	e := start(t, nil)
	e.deliver(leanBody("accounts.added", "a1", "u1"))
	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) {
			checks := []struct {
				name string
				call func() codes.Code
				want codes.Code
			}{
				{"unknown account", func() codes.Code {
					return r.call(e, "GetAccountHealth", &ahv1.GetAccountHealthRequest{AccountId: "nope"}, &ahv1.GetAccountHealthResponse{})
				}, codes.NotFound},
				{"id with a space", func() codes.Code {
					return r.call(e, "GetAccountHealth", &ahv1.GetAccountHealthRequest{AccountId: "a b"}, &ahv1.GetAccountHealthResponse{})
				}, codes.InvalidArgument},
				{"id too long", func() codes.Code {
					return r.call(e, "GetAccountHealth", &ahv1.GetAccountHealthRequest{AccountId: strings.Repeat("a", 200)}, &ahv1.GetAccountHealthResponse{})
				}, codes.InvalidArgument},
				{"timeline of unknown account", func() codes.Code {
					return r.call(e, "ListAccountEvents", &ahv1.ListAccountEventsRequest{AccountId: "nope"}, &ahv1.ListAccountEventsResponse{})
				}, codes.NotFound},
				{"page size too big", func() codes.Code {
					return r.call(e, "ListAccountHealth", &ahv1.ListAccountHealthRequest{PageSize: 501}, &ahv1.ListAccountHealthResponse{})
				}, codes.InvalidArgument},
				{"page token not ours", func() codes.Code {
					return r.call(e, "ListAccountHealth", &ahv1.ListAccountHealthRequest{PageToken: "garbage"}, &ahv1.ListAccountHealthResponse{})
				}, codes.InvalidArgument},
				{"timeline page token not ours", func() codes.Code {
					return r.call(e, "ListAccountEvents", &ahv1.ListAccountEventsRequest{AccountId: "a1", PageToken: "garbage"}, &ahv1.ListAccountEventsResponse{})
				}, codes.InvalidArgument},
				{"existing account", func() codes.Code {
					return r.call(e, "GetAccountHealth", &ahv1.GetAccountHealthRequest{AccountId: "a1"}, &ahv1.GetAccountHealthResponse{})
				}, codes.OK},
			}
			for _, c := range checks {
				if got := c.call(); got != c.want {
					t.Errorf("%s: %s, want %s", c.name, got, c.want)
				}
			}
		})
	}
	// Over gRPC an empty id and an unknown state filter are refused too.
	if got := e.callGRPC("GetAccountHealth", &ahv1.GetAccountHealthRequest{}, &ahv1.GetAccountHealthResponse{}); got != codes.InvalidArgument {
		t.Errorf("empty account_id: %s", got)
	}
	if got := e.callGRPC("ListAccountHealth", &ahv1.ListAccountHealthRequest{States: []ahv1.HealthState{42}}, &ahv1.ListAccountHealthResponse{}); got != codes.InvalidArgument {
		t.Errorf("unknown state filter: %s", got)
	}
}

func TestListAccountHealthFiltersAndPages(t *testing.T) {
	e := start(t, nil)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	accounts := []struct{ id, user, status, code string }{
		{"acc-1", "alice", "connected", ""},
		{"acc-2", "alice", "error", "auth_required"},
		{"acc-3", "bob", "error", "auth_required"},
		{"acc-4", "bob", "error", "platform_unavailable"},
		{"acc-5", "carol", "error", "expired_credentials"},
	}
	for _, a := range accounts {
		e.deliver(updatedBody(a.id, a.user, a.status, a.code, at))
	}
	ids := func(resp *ahv1.ListAccountHealthResponse) string {
		var out []string
		for _, a := range resp.GetAccounts() {
			out = append(out, a.GetAccountId())
		}
		return strings.Join(out, ",")
	}
	disconnected := ahv1.HealthState_HEALTH_STATE_DISCONNECTED
	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) {
			cases := []struct {
				name string
				req  *ahv1.ListAccountHealthRequest
				want string
			}{
				{"all", &ahv1.ListAccountHealthRequest{}, "acc-1,acc-2,acc-3,acc-4,acc-5"},
				{"by user", &ahv1.ListAccountHealthRequest{UserId: "bob"}, "acc-3,acc-4"},
				{"by state", &ahv1.ListAccountHealthRequest{States: []ahv1.HealthState{disconnected}}, "acc-2,acc-3,acc-5"},
				{"by code", &ahv1.ListAccountHealthRequest{ErrorCodes: []string{"auth_required", "platform_unavailable"}}, "acc-2,acc-3,acc-4"},
				{"combined", &ahv1.ListAccountHealthRequest{UserId: "bob", States: []ahv1.HealthState{disconnected}}, "acc-3"},
				{"no match", &ahv1.ListAccountHealthRequest{UserId: "nobody"}, ""},
			}
			for _, c := range cases {
				resp := &ahv1.ListAccountHealthResponse{}
				if code := r.call(e, "ListAccountHealth", c.req, resp); code != codes.OK {
					t.Fatalf("%s: %s", c.name, code)
				}
				if got := ids(resp); got != c.want {
					t.Errorf("%s: %s, want %s", c.name, got, c.want)
				}
			}
			// Paging two at a time visits every account once, in order.
			var seen []string
			token := ""
			for range 10 {
				resp := &ahv1.ListAccountHealthResponse{}
				if code := r.call(e, "ListAccountHealth", &ahv1.ListAccountHealthRequest{PageSize: 2, PageToken: token}, resp); code != codes.OK {
					t.Fatalf("page: %s", code)
				}
				if got := ids(resp); got != "" {
					seen = append(seen, got)
				}
				if token = resp.GetNextPageToken(); token == "" {
					break
				}
			}
			if got := strings.Join(seen, ","); got != "acc-1,acc-2,acc-3,acc-4,acc-5" {
				t.Errorf("paged = %s", got)
			}
		})
	}
}

// TestListAccountHealthByStateSince: ordered by the time each account
// entered its state, either way, in pages; a token only continues its
// own order, and an unknown order is refused naming the field.
func TestListAccountHealthByStateSince(t *testing.T) {
	e := start(t, nil)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	// Each enters its state when received: in this order.
	for _, id := range []string{"acc-c", "acc-a", "acc-d", "acc-b"} {
		e.deliver(updatedBody(id, "user", "error", "auth_required", at))
	}
	e.deliver(updatedBody("acc-a", "user", "connected", "", at.Add(time.Minute))) // now the newest in its state
	asc, desc := ahv1.AccountOrder_ACCOUNT_ORDER_STATE_SINCE_ASC, ahv1.AccountOrder_ACCOUNT_ORDER_STATE_SINCE_DESC
	disconnected := ahv1.HealthState_HEALTH_STATE_DISCONNECTED
	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) {
			for _, c := range []struct {
				req  *ahv1.ListAccountHealthRequest
				want string
			}{
				{&ahv1.ListAccountHealthRequest{OrderBy: asc, PageSize: 3}, "acc-c,acc-d,acc-b,acc-a"},
				{&ahv1.ListAccountHealthRequest{OrderBy: desc, PageSize: 1}, "acc-a,acc-b,acc-d,acc-c"},
				{&ahv1.ListAccountHealthRequest{OrderBy: desc, PageSize: 2, States: []ahv1.HealthState{disconnected}}, "acc-b,acc-d,acc-c"},
			} {
				var seen []string
				for range 10 {
					resp := &ahv1.ListAccountHealthResponse{}
					if code := r.call(e, "ListAccountHealth", c.req, resp); code != codes.OK {
						t.Fatalf("%v: %s", c.req, code)
					}
					for _, a := range resp.GetAccounts() {
						seen = append(seen, a.GetAccountId())
					}
					if c.req.PageToken = resp.GetNextPageToken(); c.req.PageToken == "" {
						break
					}
				}
				if got := strings.Join(seen, ","); got != c.want {
					t.Errorf("%v: %s, want %s", c.req, got, c.want)
				}
			}
			first := &ahv1.ListAccountHealthResponse{}
			if code := r.call(e, "ListAccountHealth", &ahv1.ListAccountHealthRequest{OrderBy: asc, PageSize: 1}, first); code != codes.OK {
				t.Fatal(code)
			}
			other := &ahv1.ListAccountHealthRequest{OrderBy: desc, PageSize: 1, PageToken: first.GetNextPageToken()}
			if code := r.call(e, "ListAccountHealth", other, &ahv1.ListAccountHealthResponse{}); code != codes.InvalidArgument {
				t.Errorf("an ascending token used descending: %s, want InvalidArgument", code)
			}
		})
	}
	err := e.conn.Invoke(t.Context(), "/accounthealth.v1.AccountHealthService/ListAccountHealth", &ahv1.ListAccountHealthRequest{OrderBy: 9}, &ahv1.ListAccountHealthResponse{})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "order_by") {
		t.Errorf("an unknown order: %v, want InvalidArgument naming order_by", err)
	}
	res, err := http.Get("http://" + e.addrs.API + "/v1/accounts/health?orderBy=sideways")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if body, _ := io.ReadAll(res.Body); res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "STATE_SINCE_ASC") {
		t.Errorf("REST orderBy=sideways: %d %s, want 400 naming the orders", res.StatusCode, body)
	}
}
