package service_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// The webhook route holds at most 16 bodies of the largest size at once,
// across all requests, the gRPC listener's included: a delivery beyond
// that waits a little for room, then is refused before its body is read,
// UNAVAILABLE with a Retry-After (the sender retries), and the route takes
// deliveries again as soon as a held body is released.
func TestWebhookBodiesInFlightBounded(t *testing.T) {
	const maxBody = 4096
	e := start(t, nil, func(c *service.Config) { c.MaxBodyBytes = maxBody })
	url := "http://" + e.addrs.Webhook + service.WebhookPath
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}

	// Each held request announces a cap-sized body and sends only its
	// first byte: the server holds its room from the headers on, and asks
	// for the body (100 Continue) only after it holds it, so the write of
	// the first byte returns once the room is taken.
	type held struct {
		body *io.PipeWriter
		code chan int
	}
	var holders []held
	for range 16 {
		r, w := io.Pipe()
		req, err := http.NewRequest(http.MethodPost, url, r)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = maxBody
		req.Header.Set("Expect", "100-continue")
		h := held{body: w, code: make(chan int, 1)}
		go func() {
			res, err := client.Do(req)
			if err != nil {
				h.code <- 0
				return
			}
			res.Body.Close()
			h.code <- res.StatusCode
		}()
		if _, err := w.Write([]byte("{")); err != nil {
			t.Fatal(err)
		}
		holders = append(holders, h)
	}

	body := leanBody("accounts.added", "after-the-flood", "u")
	post := func() (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
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
	holders[0].body.CloseWithError(fmt.Errorf("sender gone"))
	if got := <-holders[0].code; got == http.StatusOK {
		t.Fatalf("a cut-off body was accepted")
	}
	if res, raw := post(); res.StatusCode != http.StatusOK {
		t.Fatalf("after a held body was released: %d %s", res.StatusCode, raw)
	}
	for _, h := range holders[1:] {
		h.body.CloseWithError(fmt.Errorf("sender gone"))
		<-h.code
	}
}
