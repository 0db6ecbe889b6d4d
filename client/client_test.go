package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/accounthealth/accounthealth/client"
	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/auth"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/provider/providerfake"
	"github.com/accounthealth/accounthealth/server/service"
)

func TestNewTransport(t *testing.T) {
	cases := []struct {
		name   string
		target string
		opts   []client.Option
		err    string // part of New's error; empty: no error
	}{
		{"loopback plaintext with a token", "127.0.0.1:9090", []client.Option{client.WithToken("t")}, ""},
		{"localhost with a token", "localhost:9090", []client.Option{client.WithToken("t")}, ""},
		{"ipv6 loopback with a token", "[::1]:9090", []client.Option{client.WithToken("t")}, ""},
		{"dns scheme to loopback", "dns:///localhost:9090", []client.Option{client.WithToken("t")}, ""},
		{"unix socket with a token", "unix:///tmp/accounthealth.sock", []client.Option{client.WithToken("t")}, ""},
		{"remote defaults to TLS", "accounthealth.internal:443", []client.Option{client.WithToken("t")}, ""},
		{"remote plaintext without a token", "10.1.2.3:9090", []client.Option{client.WithInsecure()}, ""},
		{"remote plaintext with a token", "10.1.2.3:9090", []client.Option{client.WithInsecure(), client.WithToken("t")}, "refusing to send a token in plaintext to 10.1.2.3:9090"},
		{"remote dns plaintext with a token", "dns:///accounthealth.internal:9090", []client.Option{client.WithInsecure(), client.WithToken("t")}, "refusing"},
		{"TLS after insecure wins", "10.1.2.3:9090", []client.Option{client.WithInsecure(), client.WithTLS(nil), client.WithToken("t")}, ""},
		{"zero timeout", "127.0.0.1:9090", []client.Option{client.WithTimeout(0)}, "timeout must be positive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// New does not connect, so no call leaves this machine.
			cl, err := client.New(c.target, c.opts...)
			if c.err == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				cl.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("New error %v, want one containing %q", err, c.err)
			}
		})
	}
}

// fakeAPI answers from a script, to show what the client does with each
// answer: how often it calls, and what it sends.
type fakeAPI struct {
	ahv1.UnimplementedAccountHealthServiceServer
	// fail returns the error of the n-th call (from 1) of method, or nil.
	fail func(method string, n int) error
	// hold keeps every GetAccountHealth with a deadline until it passes.
	hold bool

	mu    sync.Mutex
	calls map[string]int
	md    metadata.MD // of the last call
	// left is the time the last call had before its deadline, when it had one.
	left        time.Duration
	hadDeadline bool
}

func (f *fakeAPI) call(ctx context.Context, method string) error {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[method]++
	n := f.calls[method]
	f.md, _ = metadata.FromIncomingContext(ctx)
	deadline, ok := ctx.Deadline()
	f.left, f.hadDeadline = time.Until(deadline), ok
	f.mu.Unlock()
	if f.fail != nil {
		return f.fail(method, n)
	}
	return nil
}

func (f *fakeAPI) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// deadline says whether the last call had a deadline and how long it had
// left when it reached the server.
func (f *fakeAPI) deadline() (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.left, f.hadDeadline
}

func (f *fakeAPI) metadata(key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.md.Get(key), ",")
}

func (f *fakeAPI) GetAccountHealth(ctx context.Context, req *ahv1.GetAccountHealthRequest) (*ahv1.GetAccountHealthResponse, error) {
	if err := f.call(ctx, "GetAccountHealth"); err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); ok && f.hold {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &ahv1.GetAccountHealthResponse{AccountHealth: &ahv1.AccountHealth{AccountId: req.GetAccountId()}}, nil
}

func (f *fakeAPI) DeleteFailedAccount(ctx context.Context, req *ahv1.DeleteFailedAccountRequest) (*ahv1.DeleteFailedAccountResponse, error) {
	if err := f.call(ctx, "DeleteFailedAccount"); err != nil {
		return nil, err
	}
	return &ahv1.DeleteFailedAccountResponse{Outcome: ahv1.DeletionOutcome_DELETION_OUTCOME_DELETED}, nil
}

func (f *fakeAPI) PurgeFailedAccounts(req *ahv1.PurgeFailedAccountsRequest, out ahv1.AccountHealthService_PurgeFailedAccountsServer) error {
	if err := f.call(out.Context(), "PurgeFailedAccounts"); err != nil {
		return err
	}
	for i, id := range []string{"a", "b", "c"} {
		r := &ahv1.PurgeResult{AccountId: id, Outcome: ahv1.DeletionOutcome_DELETION_OUTCOME_DELETED}
		if err := out.Send(&ahv1.PurgeFailedAccountsResponse{Result: r, Processed: int32(i + 1), Total: 3}); err != nil {
			return err
		}
	}
	return status.Error(codes.Unavailable, "cut short")
}

// serveFake serves api on a loopback port and returns its address.
func serveFake(t *testing.T, api *fakeAPI, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	ahv1.RegisterAccountHealthServiceServer(srv, api)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func dial(t *testing.T, target string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func withReason(code codes.Code, reason, msg string) error {
	st, _ := status.New(code, msg).WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: "accounthealth"})
	return st.Err()
}

// Calls are repeated on UNAVAILABLE only when a repeat is harmless.
func TestRetries(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "try again")
	cases := []struct {
		name    string
		retries int
		errs    []error // the answers before success
		call    func(context.Context, *client.Client) error
		method  string
		calls   int
		code    codes.Code
	}{
		{"read retried until it succeeds", 3, []error{unavailable, unavailable}, getHealth, "GetAccountHealth", 3, codes.OK},
		{"read gives up after the retries", 2, []error{unavailable, unavailable, unavailable}, getHealth, "GetAccountHealth", 3, codes.Unavailable},
		{"no retries", 0, []error{unavailable}, getHealth, "GetAccountHealth", 1, codes.Unavailable},
		{"other codes are final", 3, []error{status.Error(codes.Internal, "bug")}, getHealth, "GetAccountHealth", 1, codes.Internal},
		{"deletion is idempotent, so retried", 3, []error{withReason(codes.Unavailable, ahv1.ErrorReason_STORE_UNAVAILABLE.String(), "store")}, deleteFailed, "DeleteFailedAccount", 2, codes.OK},
		{"provider outage is not retried again", 3, []error{withReason(codes.Unavailable, ahv1.ErrorReason_PROVIDER_UNAVAILABLE.String(), "provider")}, deleteFailed, "DeleteFailedAccount", 1, codes.Unavailable},
		{"purge is never retried", 3, []error{unavailable}, purge, "PurgeFailedAccounts", 1, codes.Unavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			api := &fakeAPI{fail: func(_ string, n int) error {
				if n <= len(c.errs) {
					return c.errs[n-1]
				}
				return nil
			}}
			cl := dial(t, serveFake(t, api), client.WithRetries(c.retries))
			err := c.call(t.Context(), cl)
			if got := status.Code(err); got != c.code {
				t.Errorf("code %s (%v), want %s", got, err, c.code)
			}
			if got := api.count(c.method); got != c.calls {
				t.Errorf("%d calls, want %d", got, c.calls)
			}
		})
	}
}

func getHealth(ctx context.Context, c *client.Client) error {
	_, err := c.Health(ctx, "acct-1")
	return err
}

func deleteFailed(ctx context.Context, c *client.Client) error {
	_, err := c.DeleteFailed(ctx, "acct-1", client.DeleteOptions{})
	return err
}

func purge(ctx context.Context, c *client.Client) error {
	return c.PurgeFailed(ctx, client.PurgeOptions{OlderThan: time.Hour}, nil)
}

// The server sees the default deadline, or the caller's own instead, and
// a call held past it ends with DEADLINE_EXCEEDED.
func TestTimeout(t *testing.T) {
	// Long enough that a loaded machine delivers the call before it ends.
	const timeout = 2 * time.Second
	held := &fakeAPI{hold: true}
	cl := dial(t, serveFake(t, held), client.WithTimeout(timeout))
	if _, err := cl.Health(t.Context(), "acct-1"); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("default deadline: %v, want DeadlineExceeded", err)
	}
	if left, ok := held.deadline(); !ok || left > timeout {
		t.Errorf("the server saw a deadline %t, %s away; want the default, at most %s", ok, left, timeout)
	}

	api := &fakeAPI{}
	cl = dial(t, serveFake(t, api), client.WithTimeout(timeout))
	ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	if _, err := cl.Health(ctx, "acct-1"); err != nil {
		t.Errorf("with the caller's deadline: %v", err)
	}
	if left, ok := api.deadline(); !ok || left <= timeout {
		t.Errorf("the server saw a deadline %t, %s away; want the caller's, an hour", ok, left)
	}
}

// The token and user agent reach the server, over plaintext on loopback
// and over TLS.
func TestCredentials(t *testing.T) {
	cert, pool := testCert(t)
	cases := []struct {
		name string
		srv  []grpc.ServerOption
		opts []client.Option
	}{
		{"loopback plaintext", nil, nil},
		{"tls", []grpc.ServerOption{grpc.Creds(credentials.NewServerTLSFromCert(&cert))},
			[]client.Option{client.WithTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			api := &fakeAPI{}
			opts := append([]client.Option{client.WithToken("s3cret"), client.WithUserAgent("billing-sync/1.4")}, c.opts...)
			cl := dial(t, serveFake(t, api, c.srv...), opts...)
			if _, err := cl.Health(t.Context(), "acct-1"); err != nil {
				t.Fatal(err)
			}
			if got := api.metadata("authorization"); got != "Bearer s3cret" {
				t.Errorf("authorization %q", got)
			}
			if got := api.metadata("user-agent"); !strings.HasPrefix(got, "billing-sync/1.4") {
				t.Errorf("user-agent %q", got)
			}
		})
	}
}

// testCert borrows httptest's certificate for 127.0.0.1, and a pool that
// trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv.TLS.Certificates[0], pool
}

// Against a server that wants a token: refused without one, served with it,
// on unary calls and on the stream alike.
func TestTokenAuth(t *testing.T) {
	token, entry, err := auth.NewToken("billing-sync")
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.ParseTokens(strings.NewReader(entry), "test")
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, func(c *service.Config) { c.APITokens = tokens })
	s.mustDeliver(t, failedLogin("acct-1", "user-1", "invalid_credentials"))

	_, err = dial(t, s.target()).Health(t.Context(), "acct-1")
	var e *client.Error
	if !client.IsUnauthenticated(err) || !errors.As(err, &e) || e.Reason != ahv1.ErrorReason_UNAUTHENTICATED {
		t.Errorf("without a token: %v", err)
	}
	cl := dial(t, s.target(), client.WithToken(token))
	if _, err := cl.Health(t.Context(), "acct-1"); err != nil {
		t.Errorf("with the token: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	err = cl.Watch(ctx, client.WatchOptions{Since: time.Now().Add(-time.Hour)}, func(context.Context, *ahv1.DisconnectionEvent) error {
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("watching with the token: %v", err)
	}
}

func TestErrors(t *testing.T) {
	s := startServer(t)
	cl := dial(t, s.target())
	ctx := t.Context()

	_, err := cl.Health(ctx, "nobody")
	var e *client.Error
	if !errors.As(err, &e) || !client.IsNotFound(err) || e.Reason != ahv1.ErrorReason_NOT_FOUND || e.Method != "GetAccountHealth" {
		t.Errorf("unknown account: %#v", err)
	}
	if want := `accounthealth GetAccountHealth: NotFound: account "nobody" not found`; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q, want it to start with %q", err, want)
	}

	_, err = cl.ListHealth(ctx, client.ListOptions{PageSize: 1000})
	if !client.IsInvalidArgument(err) || !errors.As(err, &e) || !strings.HasPrefix(e.Message, "page_size: ") {
		t.Errorf("page size 1000: %v", err)
	}

	err = cl.PurgeFailed(ctx, client.PurgeOptions{OlderThan: time.Second}, nil)
	if !client.IsInvalidArgument(err) || !errors.As(err, &e) || e.Method != "PurgeFailedAccounts" {
		t.Errorf("purge older than 1s: %v", err)
	}

	down := dial(t, s.target(), client.WithRetries(1))
	if err := s.shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := down.Summary(ctx); !client.IsUnavailable(err) || !errors.As(err, &e) || e.Reason != ahv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		t.Errorf("server down: %v", err)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := cl.Summary(canceled); status.Code(err) != codes.Canceled {
		t.Errorf("canceled context: %v", err)
	}
}

func TestPaging(t *testing.T) {
	s := startServer(t)
	for i := range 5 {
		s.mustDeliver(t, failedLogin(fmt.Sprintf("acct-%d", i), "user-1", "invalid_credentials"))
	}
	s.mustDeliver(t, connected("acct-0", "user-1"))
	cl := dial(t, s.target())

	var ids []string
	for h, err := range cl.AllHealth(t.Context(), client.ListOptions{UserID: "user-1", PageSize: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, h.GetAccountId())
		if len(ids) == 4 {
			break // stopping early is fine
		}
	}
	if got := strings.Join(ids, ","); got != "acct-0,acct-1,acct-2,acct-3" {
		t.Errorf("accounts %s", got)
	}

	page, err := cl.ListHealth(t.Context(), client.ListOptions{States: []ahv1.HealthState{ahv1.HealthState_HEALTH_STATE_AUTH_FAILED}, PageSize: 3})
	if err != nil || len(page.GetAccounts()) != 3 || page.GetNextPageToken() == "" {
		t.Fatalf("first page: %v %v", page, err)
	}
	var rest []string
	for h, err := range cl.AllHealth(t.Context(), client.ListOptions{States: []ahv1.HealthState{ahv1.HealthState_HEALTH_STATE_AUTH_FAILED}, PageToken: page.GetNextPageToken()}) {
		if err != nil {
			t.Fatal(err)
		}
		rest = append(rest, h.GetAccountId())
	}
	if got := strings.Join(rest, ","); got != "acct-4" {
		t.Errorf("after the first page: %s", got)
	}

	var events []string
	for ev, err := range cl.AllEvents(t.Context(), "acct-0", client.PageOptions{PageSize: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev.GetEventType())
	}
	if got := strings.Join(events, ","); got != "accounts.failed,accounts.connected" {
		t.Errorf("events %s", got)
	}
	for _, err := range cl.AllEvents(t.Context(), "nobody", client.PageOptions{}) {
		if !client.IsNotFound(err) {
			t.Errorf("events of an unknown account: %v", err)
		}
	}
}

func TestDeleteFailed(t *testing.T) {
	fake := providerfake.New(providerfake.Options{})
	t.Cleanup(fake.Close)
	api := httptest.NewServer(fake.Handler())
	t.Cleanup(api.Close)
	s := startServer(t, func(c *service.Config) {
		c.Provider = provider.Config{BaseURL: api.URL + "/v2", KeyID: providerfake.DefaultKeyID, KeySecret: providerfake.DefaultKeySecret}
	})
	if _, err := fake.AddAccount(providerfake.AccountSeed{ID: "acct-1", User: "user-1", Status: "error", ErrorCode: "invalid_credentials"}); err != nil {
		t.Fatal(err)
	}
	s.mustDeliver(t, failedLogin("acct-1", "user-1", "invalid_credentials"), connected("acct-2", "user-1"))
	cl := dial(t, s.target())

	for i, want := range []ahv1.DeletionOutcome{ahv1.DeletionOutcome_DELETION_OUTCOME_DELETED, ahv1.DeletionOutcome_DELETION_OUTCOME_DELETED} {
		resp, err := cl.DeleteFailed(t.Context(), "acct-1", client.DeleteOptions{})
		if err != nil || resp.GetOutcome() != want || resp.GetAccountHealth().GetState() != ahv1.HealthState_HEALTH_STATE_REMOVED {
			t.Fatalf("call %d: %v %v", i+1, resp, err)
		}
	}
	if n := fake.DeleteCount("acct-1"); n != 1 {
		t.Errorf("the provider got %d deletions, want 1", n)
	}
	_, err := cl.DeleteFailed(t.Context(), "acct-2", client.DeleteOptions{Force: true})
	var e *client.Error
	if !client.IsFailedPrecondition(err) || !errors.As(err, &e) || e.Reason != ahv1.ErrorReason_ACCOUNT_NOT_DELETABLE {
		t.Errorf("deleting a healthy account: %v", err)
	}
}

func TestPurgeProgress(t *testing.T) {
	api := &fakeAPI{}
	cl := dial(t, serveFake(t, api))
	var got []string
	err := cl.PurgeFailed(t.Context(), client.PurgeOptions{OlderThan: time.Hour}, func(r *ahv1.PurgeFailedAccountsResponse) {
		got = append(got, fmt.Sprintf("%s %d/%d", r.GetResult().GetAccountId(), r.GetProcessed(), r.GetTotal()))
	})
	if !client.IsUnavailable(err) {
		t.Errorf("the stream's end: %v", err)
	}
	if strings.Join(got, ", ") != "a 1/3, b 2/3, c 3/3" {
		t.Errorf("progress %q", got)
	}
}
