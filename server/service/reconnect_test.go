package service_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/provider/providerfake"
	"github.com/accounthealth/accounthealth/server/reconnect"
	"github.com/accounthealth/accounthealth/server/service"
)

// accountCall is one call of an account RPC, over gRPC or REST (POST
// /v1/accounts/{id}:verb), with the code and reason it got.
type accountCall struct {
	name string
	call func(e *env, method, verb, accountID string, resp proto.Message) (codes.Code, ahv1.ErrorReason)
}

var accountCalls = []accountCall{
	{"grpc", func(e *env, method, _, accountID string, resp proto.Message) (codes.Code, ahv1.ErrorReason) {
		e.t.Helper()
		req := map[string]proto.Message{
			"RefreshAccountHealth": &ahv1.RefreshAccountHealthRequest{AccountId: accountID},
			"GetReconnectLink":     &ahv1.GetReconnectLinkRequest{AccountId: accountID},
			"ResendInvite":         &ahv1.ResendInviteRequest{AccountId: accountID},
		}[method]
		err := e.conn.Invoke(e.t.Context(), "/accounthealth.v1.AccountHealthService/"+method, req, resp)
		st := status.Convert(err)
		details := make([]any, 0, len(st.Details()))
		details = append(details, st.Details()...)
		return st.Code(), reasonOf(details)
	}},
	{"rest", func(e *env, _, verb, accountID string, resp proto.Message) (codes.Code, ahv1.ErrorReason) {
		e.t.Helper()
		u := "http://" + e.addrs.API + "/v1/accounts/" + url.PathEscape(accountID) + ":" + verb
		res, err := http.Post(u, "application/json", bytes.NewReader([]byte("{}")))
		if err != nil {
			e.t.Fatalf("POST %s: %v", u, err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			code, _, reason := e.restFailure(res.StatusCode, raw)
			return code, reason
		}
		if err := protojson.Unmarshal(raw, resp); err != nil {
			e.t.Fatalf("decode %q: %v", raw, err)
		}
		return codes.OK, ahv1.ErrorReason_ERROR_REASON_UNSPECIFIED
	}},
}

func TestRefreshAccountHealth(t *testing.T) {
	e, fake := withFake(t, nil)
	for _, s := range []providerfake.AccountSeed{
		{ID: "known", User: "u1", Status: "error", ErrorCode: "auth_required", ScannedAt: time.Now().Add(-time.Hour)},
		{ID: "only-there", User: "u2", Status: "connected", ScannedAt: time.Now().Add(-time.Hour)},
	} {
		if _, err := fake.AddAccount(s); err != nil {
			t.Fatal(err)
		}
	}
	e.deliver(leanBody("accounts.added", "known", "u1"))
	e.deliver(leanBody("accounts.added", "gone-there", "u3"))

	for _, c := range accountCalls {
		t.Run(c.name, func(t *testing.T) {
			refresh := func(id string) (*ahv1.RefreshAccountHealthResponse, codes.Code, ahv1.ErrorReason) {
				resp := &ahv1.RefreshAccountHealthResponse{}
				code, reason := c.call(e, "RefreshAccountHealth", "refresh", id, resp)
				return resp, code, reason
			}
			resp, code, _ := refresh("known")
			h := resp.GetAccountHealth()
			if code != codes.OK || h.GetState() != ahv1.HealthState_HEALTH_STATE_DISCONNECTED || h.GetErrorCode() != "auth_required" ||
				h.GetUnconfirmed() || h.GetConfirmedAt() == nil || h.GetLastSnapshot() == nil {
				t.Errorf("known account: %s %v", code, resp)
			}
			if resp, code, _ := refresh("only-there"); code != codes.OK || resp.GetAccountHealth().GetState() != ahv1.HealthState_HEALTH_STATE_HEALTHY {
				t.Errorf("an account only the provider knew: %s %v", code, resp)
			}
			if resp, code, _ := refresh("gone-there"); code != codes.OK || resp.GetAccountHealth().GetState() != ahv1.HealthState_HEALTH_STATE_REMOVED {
				t.Errorf("an account the provider no longer has: %s %v", code, resp)
			}
			if _, code, reason := refresh("nobody"); code != codes.NotFound || reason != ahv1.ErrorReason_NOT_FOUND {
				t.Errorf("an account neither knows: %s %s", code, reason)
			}
			fake.AddFault(providerfake.Fault{Route: "GET /v2/accounts/{id}", Status: 503})
			defer fake.ClearFaults()
			if _, code, reason := refresh("known"); code != codes.Unavailable || reason != ahv1.ErrorReason_PROVIDER_UNAVAILABLE {
				t.Errorf("provider down: %s %s", code, reason)
			}
		})
	}
}

func TestAccountCallsWithoutProvider(t *testing.T) {
	e := start(t, nil)
	e.deliver(failedBody("acct"))
	for _, c := range accountCalls {
		for method, verb := range map[string]string{"RefreshAccountHealth": "refresh", "GetReconnectLink": "reconnectLink", "ResendInvite": "resendInvite"} {
			var resp ahv1.RefreshAccountHealthResponse
			if code, reason := c.call(e, method, verb, "acct", &resp); code != codes.FailedPrecondition || reason != ahv1.ErrorReason_PROVIDER_NOT_CONFIGURED {
				t.Errorf("%s %s: %s %s, want FAILED_PRECONDITION PROVIDER_NOT_CONFIGURED", c.name, method, code, reason)
			}
		}
	}
}

func TestGetReconnectLink(t *testing.T) {
	e, fake := withFake(t, nil)
	seed(t, e, fake, "failed", failedBody("failed"))
	seed(t, e, fake, "disconnected", updatedBody("disconnected", "user-disconnected", "error", "auth_required", time.Now().Add(-time.Minute)))
	seed(t, e, fake, "healthy", updatedBody("healthy", "user-healthy", "connected", "", time.Now().Add(-time.Minute)))
	seed(t, e, fake, "removed", failedBody("removed"), leanBody("accounts.removed", "removed", "user-removed"))
	seed(t, e, fake, "connecting", leanBody("accounts.added", "connecting", "user-connecting"))
	seed(t, e, fake, "degraded", updatedBody("degraded", "user-degraded", "connected", "", time.Now().Add(-2*time.Minute)),
		updatedBody("degraded", "user-degraded", "error", "system_error", time.Now().Add(-time.Minute)))
	invite, err := fake.AddInvite(providerfake.InviteSeed{User: "user-disconnected", CreatedAt: time.Now().Add(-48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range accountCalls {
		t.Run(c.name, func(t *testing.T) {
			link := func(id string) (*ahv1.GetReconnectLinkResponse, codes.Code, ahv1.ErrorReason) {
				resp := &ahv1.GetReconnectLinkResponse{}
				code, reason := c.call(e, "GetReconnectLink", "reconnectLink", id, resp)
				return resp, code, reason
			}
			for id, want := range map[string]ahv1.RemedyAction{"failed": ahv1.RemedyAction_REMEDY_ACTION_RETRY_LOGIN, "disconnected": ahv1.RemedyAction_REMEDY_ACTION_RECONNECT} {
				resp, code, _ := link(id)
				exp := resp.GetUserTokenExpiresAt().AsTime()
				if code != codes.OK || resp.GetUserToken() == "" || resp.GetRemedy().GetAction() != want ||
					resp.GetLinkParameters()["userToken"] != resp.GetUserToken() || resp.GetLinkParameters()["accountId"] != id ||
					exp.Before(time.Now().Add(50*time.Minute)) || exp.After(time.Now().Add(61*time.Minute)) {
					t.Errorf("%s: %s %v", id, code, resp)
				}
				if strings.Contains(e.logs.String(), resp.GetUserToken()) {
					t.Errorf("%s: the user token appears in the log", id)
				}
				wantURL := map[string]string{"disconnected": invite.URL}[id]
				if resp.GetInviteUrl() != wantURL {
					t.Errorf("%s: invite url %q, want %q", id, resp.GetInviteUrl(), wantURL)
				}
			}
			for _, id := range []string{"healthy", "removed", "connecting", "degraded"} {
				if _, code, reason := link(id); code != codes.FailedPrecondition || reason != ahv1.ErrorReason_ACCOUNT_NOT_RECONNECTABLE {
					t.Errorf("%s: %s %s, want FAILED_PRECONDITION ACCOUNT_NOT_RECONNECTABLE", id, code, reason)
				}
			}
			if _, code, _ := link("nobody"); code != codes.NotFound {
				t.Errorf("unknown account: %s", code)
			}
		})
	}
}

// Calls for one user at once share one token request.
func TestGetReconnectLinkSharesTheTokenRequest(t *testing.T) {
	e, fake := withFake(t, nil)
	seed(t, e, fake, "acct", failedBody("acct"))
	fake.AddFault(providerfake.Fault{Route: "POST /v2/user-tokens", Latency: 200 * time.Millisecond, Times: 1})
	var wg sync.WaitGroup
	tokens := make([]string, 8)
	for i := range tokens {
		wg.Go(func() {
			resp := &ahv1.GetReconnectLinkResponse{}
			if code, _ := accountCalls[0].call(e, "GetReconnectLink", "", "acct", resp); code != codes.OK {
				t.Errorf("call %d: %s", i, code)
			}
			tokens[i] = resp.GetUserToken()
		})
	}
	wg.Wait()
	if n := fake.UserTokenRequests("user-acct"); n != 1 {
		t.Errorf("%d token requests for 8 calls, want 1", n)
	}
	for _, tok := range tokens[1:] {
		if tok != tokens[0] {
			t.Errorf("calls got different tokens")
		}
	}
}

func TestResendInvite(t *testing.T) {
	e, fake := withFake(t, nil, func(c *service.Config) { c.InviteResendInterval = time.Hour })
	seed(t, e, fake, "invited", failedBody("invited"))
	seed(t, e, fake, "uninvited", failedBody("uninvited"))
	seed(t, e, fake, "revoked", failedBody("revoked"))
	long := time.Now().Add(-72 * time.Hour)
	original, err := fake.AddInvite(providerfake.InviteSeed{User: "user-invited", CreatedAt: long})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fake.AddInvite(providerfake.InviteSeed{User: "user-revoked", Status: "revoked", CreatedAt: long}); err != nil {
		t.Fatal(err)
	}
	resend := func(c accountCall, id string) (*ahv1.ResendInviteResponse, codes.Code, ahv1.ErrorReason) {
		resp := &ahv1.ResendInviteResponse{}
		code, reason := c.call(e, "ResendInvite", "resendInvite", id, resp)
		return resp, code, reason
	}
	resp, code, _ := resend(accountCalls[0], "invited")
	if code != codes.OK || resp.GetInviteId() != original.ID || resp.GetUserId() != "user-invited" ||
		!resp.GetNextResendAt().AsTime().After(time.Now().Add(50*time.Minute)) {
		t.Fatalf("first re-send: %s %v", code, resp)
	}
	for _, c := range accountCalls {
		if _, code, reason := resend(c, "invited"); code != codes.ResourceExhausted || reason != ahv1.ErrorReason_INVITE_RESENT_RECENTLY {
			t.Errorf("%s: again within the interval: %s %s", c.name, code, reason)
		}
		if _, code, reason := resend(c, "uninvited"); code != codes.FailedPrecondition || reason != ahv1.ErrorReason_NO_INVITE {
			t.Errorf("%s: user without invite: %s %s", c.name, code, reason)
		}
		if _, code, reason := resend(c, "revoked"); code != codes.FailedPrecondition || reason != ahv1.ErrorReason_INVITE_REVOKED {
			t.Errorf("%s: revoked invite: %s %s", c.name, code, reason)
		}
	}
	if n := fake.ResendCount(original.ID); n != 1 {
		t.Errorf("the invite was re-sent %d times, want 1", n)
	}
	if n := len(fake.Invites()); n != 2 {
		t.Errorf("the provider holds %d invites, want the 2 seeded: none created", n)
	}
	events := &ahv1.ListAccountEventsResponse{}
	if code := e.callGRPC("ListAccountEvents", &ahv1.ListAccountEventsRequest{AccountId: "invited"}, events); code != codes.OK {
		t.Fatal(code)
	}
	last := events.GetEvents()[len(events.GetEvents())-1]
	if last.GetEventType() != reconnect.ResendAction || last.GetSource() != "api" || last.GetActor() == "" {
		t.Errorf("audit entry = %v", last)
	}
}
