package service_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// Every path that handles a secret, a signature, a token or an account
// snapshot runs with debug logging; none of them may appear in the log.
func TestLogsHoldNoSecrets(t *testing.T) {
	ts, tokens := tokensFor(t, "support-tool")
	e, fake := withFakeLogging(t, slog.LevelDebug, nil, func(c *service.Config) { c.APITokens = ts })
	seed(t, e, fake, "acct", failedBody("acct"))
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tokens["support-tool"])

	// Deliveries: accepted with a snapshot, refused for a wrong signature,
	// malformed, a lean one that makes the service ask the provider.
	snapshot := updatedBody("acct-2", "user-2", "error", "auth_required", time.Now())
	goodSig := webhook.Sign(fixtureSecret, snapshot)
	wrongSig := webhook.Sign("a-guess", snapshot)
	e.postHTTP(snapshot, goodSig)
	e.postHTTP(snapshot, wrongSig)
	e.postGRPC([]byte(`{"event": 1}`), webhook.Sign(fixtureSecret, []byte(`{"event": 1}`)))
	e.deliver(leanBody("accounts.updated", "acct", "user-acct"))

	// Calls with a right and a wrong token, over gRPC and REST; a stream; a deletion.
	_ = e.conn.Invoke(ctx, "/accounthealth.v1.AccountHealthService/GetAccountHealth", &ahv1.GetAccountHealthRequest{AccountId: "acct-2"}, &ahv1.GetAccountHealthResponse{})
	bearer(e, tokens["support-tool"]+"wrong")("GetHealthSummary")
	restGet(t, http.DefaultClient, "http://"+e.addrs.API+"/v1/accounts/acct-2/health", tokens["support-tool"])
	restGet(t, http.DefaultClient, "http://"+e.addrs.API+"/v1/accounts/acct-2/health", "not-a-token")
	stream, err := ahv1.NewAccountHealthServiceClient(e.conn).StreamDisconnections(ctx, &ahv1.StreamDisconnectionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if _, err := ahv1.NewAccountHealthServiceClient(e.conn).DeleteFailedAccount(ctx, &ahv1.DeleteFailedAccountRequest{AccountId: "acct"}); err != nil {
		t.Fatal(err)
	}
	fake.WaitDeliveries()
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}

	logs := e.logs.String()
	if !strings.Contains(logs, "webhook accepted") || !strings.Contains(logs, "level=DEBUG") {
		t.Fatalf("the log does not show the traffic; the test proves nothing:\n%s", logs)
	}
	for what, secret := range map[string]string{
		"webhook secret":         fixtureSecret,
		"second webhook secret":  recordedSecret,
		"provider key secret":    fakeKeySecret,
		"API token":              tokens["support-tool"],
		"a valid signature":      goodSig,
		"a wrong signature":      wrongSig,
		"the account snapshot":   `"employers":["Acme"]`,
		"the snapshot's message": "error auth_required",
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %s (%q)", what, secret)
		}
	}
}

// Streams get a request id and a log line like unary calls: the caller's
// id comes back in the header and names the stream's "rpc done" line.
func TestStreamRequestIDAndLog(t *testing.T) {
	e := startLogging(t, slog.LevelDebug, nil)
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(t.Context(), "x-request-id", "stream-1"))
	stream, err := ahv1.NewAccountHealthServiceClient(e.conn).StreamDisconnections(ctx, &ahv1.StreamDisconnectionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	md, err := stream.Header()
	if err != nil || len(md.Get("x-request-id")) != 1 || md.Get("x-request-id")[0] != "stream-1" {
		t.Errorf("stream header %v %v, want x-request-id stream-1", md, err)
	}
	cancel()
	e.waitLog(t, "method=/accounthealth.v1.AccountHealthService/StreamDisconnections code=Canceled")
	for line := range strings.Lines(e.logs.String()) {
		if strings.Contains(line, "StreamDisconnections code=Canceled") && !strings.Contains(line, "request_id=stream-1") {
			t.Errorf("the stream's log line has not its request id: %s", line)
		}
	}
}
