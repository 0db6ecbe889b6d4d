package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/sqlite"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// Secrets of the shared fixtures: deliveries/ and recorded/ were signed with
// different ones, so configuring both also proves rotation.
const (
	fixtureSecret  = "fixture-secret-do-not-use"
	recordedSecret = "Webhook Secret"
)

var fixturesDir = filepath.Join("..", "..", "testdata", "fixtures")

// env is one running server on loopback ports with clients for both
// transports.
type env struct {
	t       testing.TB
	srv     *service.Server
	addrs   service.Addrs
	conn    *grpc.ClientConn
	webhook ahv1.WebhookServiceClient
	logs    *lockedLog
	stop    func() error // ends Run and returns its error
}

// start runs a server over st (a fresh SQLite store when nil), logging at
// info level into env.logs.
func start(t testing.TB, st store.Store, configure ...func(*service.Config)) *env {
	t.Helper()
	return startLogging(t, slog.LevelInfo, st, configure...)
}

// startLogging is start with a chosen log level.
func startLogging(t testing.TB, level slog.Level, st store.Store, configure ...func(*service.Config)) *env {
	t.Helper()
	if st == nil {
		st = openStore(t, t.TempDir())
	}
	cfg := service.DefaultConfig()
	cfg.WebhookAddr, cfg.GRPCAddr, cfg.APIAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.WebhookSecrets = []string{fixtureSecret, recordedSecret}
	cfg.ShutdownTimeout = 5 * time.Second
	// The shared fixtures were scanned in the autumn of 2026: at the
	// default age the sweeper would judge them stale part-way through a
	// story, on its own schedule. Tests of freshness set the age they test.
	cfg.StaleAfter = 100 * 365 * 24 * time.Hour
	for _, c := range configure {
		c(&cfg)
	}
	logs := &lockedLog{}
	srv, err := service.New(cfg, st, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level})))
	if err != nil {
		st.Close()
		t.Fatalf("service.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var stopped bool
	var runErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			runErr = <-done
		}
		return runErr
	}
	t.Cleanup(func() { _ = stop() })

	conn, err := grpc.NewClient(srv.Addrs().GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &env{
		t: t, srv: srv, addrs: srv.Addrs(), logs: logs, stop: stop,
		conn:    conn,
		webhook: ahv1.NewWebhookServiceClient(conn),
	}
}

func openStore(t testing.TB, dir string) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), dir, store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return st
}

// lockedLog collects the server's log lines while a test reads them.
type lockedLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{} // closed and replaced at each write
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.written != nil {
		close(l.written)
		l.written = nil
	}
	return l.buf.Write(p)
}

// waitLog waits until the server logged a line containing s.
func (e *env) waitLog(t *testing.T, s string) {
	t.Helper()
	guard := time.After(15 * time.Second)
	for {
		l := e.logs
		l.mu.Lock()
		found := bytes.Contains(l.buf.Bytes(), []byte(s))
		if l.written == nil {
			l.written = make(chan struct{})
		}
		written := l.written
		l.mu.Unlock()
		if found {
			return
		}
		select {
		case <-written:
		case <-guard:
			t.Fatalf("the server did not log %q in 15s:\n%s", s, e.logs.String())
		}
	}
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// reply is a webhook answer in transport-neutral terms.
type reply struct {
	code     codes.Code // gRPC code, or the one the HTTP status stands for
	http     int        // HTTP status; 0 over gRPC
	outcome  ahv1.DeliveryOutcome
	sequence int64
	account  string
	message  string
	reason   ahv1.ErrorReason // of an error
}

// transport delivers one webhook body with a signature header value.
type transport struct {
	name string
	send func(e *env, body []byte, signature string) reply
}

var transports = []transport{
	{"http", (*env).postHTTP},
	{"grpc", (*env).postGRPC},
}

func (e *env) postHTTP(body []byte, signature string) reply {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+e.addrs.Webhook+service.WebhookPath, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set(webhook.SignatureHeader, signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("POST webhook: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{http: resp.StatusCode}
	if resp.StatusCode != http.StatusOK {
		r.code, r.message, r.reason = e.restFailure(resp.StatusCode, raw)
		return r
	}
	var ok ahv1.ReceiveArgyleWebhookResponse
	if err := protojson.Unmarshal(raw, &ok); err != nil {
		e.t.Fatalf("decode webhook response %q: %v", raw, err)
	}
	r.outcome, r.sequence, r.account = ok.GetOutcome(), ok.GetSequence(), ok.GetAccountId()
	return r
}

func (e *env) postGRPC(body []byte, signature string) reply {
	e.t.Helper()
	resp, err := e.webhook.ReceiveArgyleWebhook(e.t.Context(), &ahv1.ReceiveArgyleWebhookRequest{Payload: body, Signature: signature})
	st := status.Convert(err)
	return reply{code: st.Code(), message: st.Message(), reason: reasonOf(st.Details()),
		outcome: resp.GetOutcome(), sequence: resp.GetSequence(), account: resp.GetAccountId()}
}

// restError reads an HTTP error body, a google.rpc.Status as JSON, and
// checks that the HTTP status is the one its code stands for.
func (e *env) restError(httpStatus int, raw []byte) (codes.Code, string) {
	e.t.Helper()
	code, msg, _ := e.restFailure(httpStatus, raw)
	return code, msg
}

// restFailure is restError with the error's reason.
func (e *env) restFailure(httpStatus int, raw []byte) (codes.Code, string, ahv1.ErrorReason) {
	e.t.Helper()
	var st statuspb.Status
	if err := protojson.Unmarshal(raw, &st); err != nil {
		e.t.Fatalf("HTTP %d error body is not a google.rpc.Status: %q: %v", httpStatus, raw, err)
	}
	var details []any
	for _, d := range st.GetDetails() {
		if m, err := d.UnmarshalNew(); err == nil {
			details = append(details, m)
		}
	}
	code, reason := codes.Code(st.GetCode()), reasonOf(details)
	want := runtime.HTTPStatusFromCode(code)
	switch reason {
	case ahv1.ErrorReason_DELIVERY_TOO_LARGE:
		want = http.StatusRequestEntityTooLarge
	case ahv1.ErrorReason_METHOD_NOT_ALLOWED:
		want = http.StatusMethodNotAllowed
	}
	if httpStatus != want {
		e.t.Errorf("HTTP status %d for %s, want %d", httpStatus, code, want)
	}
	return code, st.GetMessage(), reason
}

// reasonOf finds the service's reason among a status's details.
func reasonOf(details []any) ahv1.ErrorReason {
	for _, d := range details {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == "accounthealth" {
			return ahv1.ErrorReason(ahv1.ErrorReason_value[info.GetReason()])
		}
	}
	return ahv1.ErrorReason_ERROR_REASON_UNSPECIFIED
}

// deliver sends a signed body over HTTP and fails the test unless accepted.
func (e *env) deliver(body []byte) reply {
	e.t.Helper()
	r := e.postHTTP(body, webhook.Sign(fixtureSecret, body))
	if r.http != http.StatusOK {
		e.t.Fatalf("delivery refused: %d %s", r.http, r.message)
	}
	return r
}

// reader reads through one transport: gRPC or the REST gateway.
type reader struct {
	name string
	// call runs the RPC named by method with req into resp and returns the
	// status code.
	call func(e *env, method string, req, resp proto.Message) codes.Code
}

var readers = []reader{
	{"grpc", (*env).callGRPC},
	{"rest", (*env).callREST},
}

// callGRPC invokes the method by its full name, as any generic client would.
func (e *env) callGRPC(method string, req, resp proto.Message) codes.Code {
	e.t.Helper()
	err := e.conn.Invoke(e.t.Context(), "/accounthealth.v1.AccountHealthService/"+method, req, resp)
	return status.Code(err)
}

// callREST maps each method to its HTTP rule (proto/.../http_rules.yaml).
func (e *env) callREST(method string, req, resp proto.Message) codes.Code {
	e.t.Helper()
	base := "http://" + e.addrs.API
	var u string
	q := url.Values{}
	switch r := req.(type) {
	case *ahv1.GetAccountHealthRequest:
		u = base + "/v1/accounts/" + url.PathEscape(r.GetAccountId()) + "/health"
	case *ahv1.ListAccountHealthRequest:
		u, q = base+"/v1/accounts/health", listHealthQuery(r)
	case *ahv1.GetItemHealthRequest:
		u = base + "/v1/items/" + url.PathEscape(r.GetItem()) + "/health"
	case *ahv1.ListItemHealthRequest:
		u = base + "/v1/items/health"
		for _, s := range r.GetStatuses() {
			q.Add("statuses", s.String())
		}
		if r.GetPageSize() != 0 {
			q.Set("pageSize", itoa(int(r.GetPageSize())))
		}
		if r.GetPageToken() != "" {
			q.Set("pageToken", r.GetPageToken())
		}
	case *ahv1.GetHealthSummaryRequest:
		u = base + "/v1/health/summary"
	case *ahv1.ListAccountEventsRequest:
		u = base + "/v1/accounts/" + url.PathEscape(r.GetAccountId()) + "/events"
		if r.GetPageSize() != 0 {
			q.Set("pageSize", itoa(int(r.GetPageSize())))
		}
		if r.GetPageToken() != "" {
			q.Set("pageToken", r.GetPageToken())
		}
	case *ahv1.CountTransitionsRequest:
		u = base + "/v1/transitions:count"
		if r.GetStartTime() != nil {
			q.Set("startTime", r.GetStartTime().AsTime().Format(time.RFC3339Nano))
		}
		if r.GetEndTime() != nil {
			q.Set("endTime", r.GetEndTime().AsTime().Format(time.RFC3339Nano))
		}
		if r.GetBucketWidth() != nil {
			q.Set("bucketWidth", r.GetBucketWidth().AsDuration().String())
		}
	default:
		e.t.Fatalf("no REST route for %s", method)
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	res, err := http.Get(u)
	if err != nil {
		e.t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		code, _ := e.restError(res.StatusCode, raw)
		return code
	}
	if err := protojson.Unmarshal(raw, resp); err != nil {
		e.t.Fatalf("decode %s response %q: %v", method, raw, err)
	}
	return codes.OK
}

// listHealthQuery is r's REST query, enums by their short names where the
// CLI and the dashboard send those.
func listHealthQuery(r *ahv1.ListAccountHealthRequest) url.Values {
	q := url.Values{}
	if r.GetUserId() != "" {
		q.Set("userId", r.GetUserId())
	}
	if r.GetItem() != "" {
		q.Set("item", r.GetItem())
	}
	for _, s := range r.GetStates() {
		q.Add("states", s.String())
	}
	for _, c := range r.GetErrorCodes() {
		q.Add("errorCodes", c)
	}
	for _, f := range r.GetFreshness() {
		// The short lower-case name, as the CLI's flag takes it.
		q.Add("freshness", strings.ToLower(strings.TrimPrefix(f.String(), "FRESHNESS_STATUS_")))
	}
	if r.GetPageSize() != 0 {
		q.Set("pageSize", itoa(int(r.GetPageSize())))
	}
	if r.GetPageToken() != "" {
		q.Set("pageToken", r.GetPageToken())
	}
	if r.GetOrderBy() != ahv1.AccountOrder_ACCOUNT_ORDER_UNSPECIFIED {
		// The short lower-case name, as the dashboard sends it.
		q.Set("orderBy", strings.ToLower(strings.TrimPrefix(r.GetOrderBy().String(), "ACCOUNT_ORDER_")))
	}
	return q
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// getHealth reads one account through r and fails unless it exists.
func (e *env) getHealth(r reader, accountID string) *ahv1.AccountHealth {
	e.t.Helper()
	resp := &ahv1.GetAccountHealthResponse{}
	if code := r.call(e, "GetAccountHealth", &ahv1.GetAccountHealthRequest{AccountId: accountID}, resp); code != codes.OK {
		e.t.Fatalf("%s GetAccountHealth(%s) = %s", r.name, accountID, code)
	}
	return resp.GetAccountHealth()
}

func readFixture(t *testing.T, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{fixturesDir}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var errAlwaysUnavailable = errors.New("disk on fire")

// failingStore refuses every commit, as a store whose disk is gone would.
type failingStore struct{ store.Store }

func (failingStore) Ingest(context.Context, []store.Delivery) ([]store.Result, error) {
	return nil, errAlwaysUnavailable
}
