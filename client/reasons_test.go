package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/accounthealth/accounthealth/client"
	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/auth"
	"github.com/accounthealth/accounthealth/server/service"
)

// TestErrorReasons calls each failing case over gRPC, through the client,
// and over REST, and branches on the reason both give.
func TestErrorReasons(t *testing.T) {
	token, entry, err := auth.NewToken("reasons-test")
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.ParseTokens(strings.NewReader(entry), "test")
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, func(c *service.Config) { c.APITokens = tokens })
	s.mustDeliver(t, failedLogin("acct-failed", "user-1", "invalid_credentials"), connected("acct-ok", "user-1"))
	cl := dial(t, s.target(), client.WithToken(token))
	anonymous := dial(t, s.target())

	cases := []struct {
		name       string
		call       func(context.Context) error
		method     string // the same call over REST
		path       string
		noToken    bool
		want       ahv1.ErrorReason
		httpStatus int
	}{
		{"unknown account", func(ctx context.Context) error { _, err := cl.Health(ctx, "nobody"); return err },
			http.MethodGet, "/v1/accounts/nobody/health", false, ahv1.ErrorReason_NOT_FOUND, http.StatusNotFound},
		{"page too large", func(ctx context.Context) error {
			_, err := cl.ListHealth(ctx, client.ListOptions{PageSize: 1000})
			return err
		},
			http.MethodGet, "/v1/accounts/health?page_size=1000", false, ahv1.ErrorReason_INVALID_ARGUMENT, http.StatusBadRequest},
		{"healthy account deleted", func(ctx context.Context) error {
			_, err := cl.DeleteFailed(ctx, "acct-ok", client.DeleteOptions{})
			return err
		},
			http.MethodDelete, "/v1/accounts/acct-ok", false, ahv1.ErrorReason_ACCOUNT_NOT_DELETABLE, http.StatusBadRequest},
		{"no provider to delete at", func(ctx context.Context) error {
			_, err := cl.DeleteFailed(ctx, "acct-failed", client.DeleteOptions{})
			return err
		},
			http.MethodDelete, "/v1/accounts/acct-failed", false, ahv1.ErrorReason_PROVIDER_NOT_CONFIGURED, http.StatusBadRequest},
		{"no token", func(ctx context.Context) error { _, err := anonymous.Summary(ctx); return err },
			http.MethodGet, "/v1/health/summary", true, ahv1.ErrorReason_UNAUTHENTICATED, http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e *client.Error
			if err := c.call(t.Context()); !errors.As(err, &e) {
				t.Fatalf("gRPC: %v, want a *client.Error", err)
			}
			if got := branch(e.Reason); e.Reason != c.want || got == "" {
				t.Errorf("gRPC: reason %s (%s), want %s; error %v", e.Reason, got, c.want, e)
			}
			bearer := token
			if c.noToken {
				bearer = ""
			}
			status, reason := restCall(t, s.api, c.method, c.path, bearer)
			if reason != c.want || status != c.httpStatus {
				t.Errorf("REST: %d %s, want %d %s", status, reason, c.httpStatus, c.want)
			}
		})
	}
}

// branch is what a caller does with a reason: one action per reason.
func branch(r ahv1.ErrorReason) string {
	switch r {
	case ahv1.ErrorReason_NOT_FOUND:
		return "check the account id"
	case ahv1.ErrorReason_INVALID_ARGUMENT:
		return "fix the request"
	case ahv1.ErrorReason_ACCOUNT_NOT_DELETABLE:
		return "leave the account"
	case ahv1.ErrorReason_PROVIDER_NOT_CONFIGURED:
		return "configure the provider"
	case ahv1.ErrorReason_UNAUTHENTICATED:
		return "send a token"
	}
	return ""
}

// restCall makes one REST call and returns its HTTP status and the reason
// of its error body (a google.rpc.Status as JSON).
func restCall(t *testing.T, addr, method, path, token string) (int, ahv1.ErrorReason) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var st statuspb.Status
	if err := protojson.Unmarshal(body, &st); err != nil {
		t.Fatalf("REST error body %s: %v", body, err)
	}
	for _, d := range st.GetDetails() {
		var info errdetails.ErrorInfo
		if d.UnmarshalTo(&info) == nil && info.GetDomain() == "accounthealth" {
			return res.StatusCode, ahv1.ErrorReason(ahv1.ErrorReason_value[info.GetReason()])
		}
	}
	return res.StatusCode, ahv1.ErrorReason_ERROR_REASON_UNSPECIFIED
}
