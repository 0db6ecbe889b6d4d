package service_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// heldBody is a delivery whose sender announced contentLength bytes and
// sent only the first: the server holds room for it from then on.
type heldBody struct {
	body *io.PipeWriter
	code chan int // the answer's status, 0 for none
}

var errSenderGone = errors.New("sender gone")

// holdBody starts such a delivery. The server asks for the body (100
// Continue) only once it holds room for its buffer, so the write of the
// first byte returns once the room is taken; holdBody fails the test if the
// server answers instead.
func (e *env) holdBody(client *http.Client, contentLength int64) heldBody {
	e.t.Helper()
	r, w := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, "http://"+e.addrs.Webhook+service.WebhookPath, r)
	if err != nil {
		e.t.Fatal(err)
	}
	req.ContentLength = contentLength
	req.Header.Set("Expect", "100-continue")
	h := heldBody{body: w, code: make(chan int, 1)}
	go func() {
		res, err := client.Do(req)
		if err != nil {
			h.code <- 0
			return
		}
		res.Body.Close()
		w.CloseWithError(errSenderGone) // an answer without 100 Continue: the write must not wait
		h.code <- res.StatusCode
	}()
	if _, err := w.Write([]byte("{")); err != nil {
		e.t.Fatalf("the server answered %d before reading a body of %d bytes", <-h.code, contentLength)
	}
	return h
}

// release ends a held delivery unfinished and returns its answer.
func (h heldBody) release() int {
	h.body.CloseWithError(errSenderGone)
	return <-h.code
}

// expectContinue is a client that waits for the server's 100 Continue
// before sending a body, as long as the test needs.
func expectContinue() *http.Client {
	return &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
}

// The webhook route holds at most 16 bodies of the largest size at once,
// across all requests, the gRPC listener's included: a delivery beyond
// that waits a little for room, then is refused, UNAVAILABLE with a
// Retry-After (the sender retries), and the route takes deliveries again as
// soon as a held body is released.
func TestWebhookBodiesInFlightBounded(t *testing.T) {
	const maxBody = 4096
	e := start(t, nil, func(c *service.Config) { c.MaxBodyBytes = maxBody })
	client := expectContinue()
	var holders []heldBody
	for range 16 {
		holders = append(holders, e.holdBody(client, maxBody))
	}

	body := leanBody("accounts.added", "after-the-flood", "u")
	post := func() (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+e.addrs.Webhook+service.WebhookPath, bytes.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, webhook.Sign(fixtureSecret, body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return res, raw
	}
	res, raw := post()
	code, msg, reason := e.restFailure(res.StatusCode, raw)
	if res.StatusCode != http.StatusServiceUnavailable || reason != ahv1.ErrorReason_INTAKE_BUSY || res.Header.Get("Retry-After") == "" {
		t.Fatalf("a delivery beyond the budget: %d %s %v %q, Retry-After %q; want 503 UNAVAILABLE INTAKE_BUSY with a Retry-After",
			res.StatusCode, code, reason, msg, res.Header.Get("Retry-After"))
	}
	// The gRPC listener's deliveries share the budget.
	if r := e.postGRPC(body, webhook.Sign(fixtureSecret, body)); r.code != codes.Unavailable || r.reason != ahv1.ErrorReason_INTAKE_BUSY {
		t.Fatalf("a gRPC delivery beyond the budget: %s %v %q; want UNAVAILABLE INTAKE_BUSY", r.code, r.reason, r.message)
	}

	// One held sender gives up: its room is free again.
	if got := holders[0].release(); got == http.StatusOK {
		t.Fatalf("a cut-off body was accepted")
	}
	if res, raw := post(); res.StatusCode != http.StatusOK {
		t.Fatalf("after a held body was released: %d %s", res.StatusCode, raw)
	}
	for _, h := range holders[1:] {
		h.release()
	}
}

// A sender that announces a large body and sends it slowly holds room only
// for what it sent, not for what it announced: twice as many of them as
// the budget has bodies of the cap do not keep a delivery out.
func TestWebhookSlowSendersHoldWhatTheySent(t *testing.T) {
	e := start(t, nil)
	client := expectContinue()
	var holders []heldBody
	for range 32 {
		holders = append(holders, e.holdBody(client, int64(service.DefaultConfig().MaxBodyBytes)))
	}
	e.deliver(leanBody("accounts.added", "beside-slow-senders", "u"))
	for _, h := range holders {
		h.release()
	}
}
