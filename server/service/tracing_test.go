package service_test

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/internal/eventually"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// A delivery's trace runs from the webhook route through the gRPC call and
// the intake steps to the commit, continuing the sender's trace; each
// stream event sent is a span naming the same log entry.
func TestTracesFromWebhookToStream(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	e := start(t, nil, func(c *service.Config) { c.TracerProvider = tp })
	w := e.watchGRPC(&ahv1.StreamDisconnectionsRequest{})

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	body := updatedBody("acct", "u", "error", "auth_required", time.Now())
	req, _ := http.NewRequest(http.MethodPost, "http://"+e.addrs.Webhook+service.WebhookPath, bytes.NewReader(body))
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(fixtureSecret, body))
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	ev := w.events(t, 1)[0]

	var byName map[string]sdktrace.ReadOnlySpan
	eventually.Until(t, 5*time.Second, "the stream's span ends", func() (bool, string) {
		byName = map[string]sdktrace.ReadOnlySpan{}
		for _, s := range rec.Ended() {
			byName[s.Name()] = s
		}
		return byName["stream.send"] != nil, fmt.Sprint(keys(byName))
	})
	for _, name := range []string{"POST /v1/webhooks/argyle", "accounthealth.v1.WebhookService/ReceiveArgyleWebhook", "intake.verify", "intake.decode", "intake.commit"} {
		s := byName[name]
		if s == nil {
			t.Errorf("no span %q (have %v)", name, keys(byName))
			continue
		}
		if got := s.SpanContext().TraceID().String(); got != traceID {
			t.Errorf("span %q is in trace %s, want the sender's %s", name, got, traceID)
		}
	}
	entry := func(s sdktrace.ReadOnlySpan) int64 {
		for _, a := range s.Attributes() {
			if a.Key == "accounthealth.entry_seq" {
				return a.Value.AsInt64()
			}
		}
		return -1
	}
	commit, send := byName["intake.commit"], byName["stream.send"]
	if commit == nil || send == nil || entry(commit) != ev.GetDelivery().GetSequence() || entry(send) != entry(commit) {
		t.Errorf("the commit and stream spans do not name the same log entry as the event (%d)", ev.GetDelivery().GetSequence())
	}
}

func keys(m map[string]sdktrace.ReadOnlySpan) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
