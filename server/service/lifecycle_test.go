package service_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// A store that cannot commit makes the sender retry (503), and the cause
// stays in our log, not in the answer.
func TestStoreUnavailableAsksForRetry(t *testing.T) {
	e := start(t, failingStore{openStore(t, t.TempDir())})
	body := leanBody("accounts.added", "a1", "u1")
	for _, tr := range transports {
		got := tr.send(e, body, webhook.Sign(fixtureSecret, body))
		if got.code != codes.Unavailable || (tr.name == "http" && got.http != http.StatusServiceUnavailable) {
			t.Errorf("%s: %s %d, want UNAVAILABLE/503", tr.name, got.code, got.http)
		}
		if strings.Contains(got.message, errAlwaysUnavailable.Error()) {
			t.Errorf("%s: the store's error leaked to the sender: %q", tr.name, got.message)
		}
	}
	if !strings.Contains(e.logs.String(), errAlwaysUnavailable.Error()) {
		t.Error("the store's error is not in the log")
	}
}

func TestRefusesToStartWithoutSecret(t *testing.T) {
	cfg := service.DefaultConfig()
	cfg.WebhookSecrets = nil
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "webhook-secret") {
		t.Fatalf("Validate() = %v, want an error naming webhook-secret", err)
	}
	cfg.AllowUnsignedWebhooks = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("with --allow-unsigned-webhooks: %v", err)
	}
}

// With unsigned deliveries allowed and a secret set, a delivery without a
// signature is accepted but a wrong signature is still refused.
func TestAllowUnsigned(t *testing.T) {
	e := start(t, nil, func(c *service.Config) { c.AllowUnsignedWebhooks = true })
	body := leanBody("accounts.added", "a1", "u1")
	if got := e.postHTTP(body, ""); got.http != http.StatusOK {
		t.Errorf("unsigned: %d %s", got.http, got.message)
	}
	if got := e.postHTTP(leanBody("accounts.added", "a2", "u1"), webhook.Sign("wrong", body)); got.http != http.StatusUnauthorized {
		t.Errorf("wrongly signed: %d, want 401", got.http)
	}
}

// The internet-facing listener answers the webhook route and the probes
// only: no API, no metrics.
func TestWebhookListenerServesNothingElse(t *testing.T) {
	e := start(t, nil)
	e.deliver(leanBody("accounts.added", "a1", "u1"))
	for _, path := range []string{"/v1/accounts/a1/health", "/v1/accounts/health", "/v1/health/summary", "/v1/accounts/a1/events", "/metrics", "/"} {
		res, err := http.Get("http://" + e.addrs.Webhook + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s on the webhook listener: %d, want 404", path, res.StatusCode)
		}
	}
	for _, probe := range []string{"/healthz", "/readyz"} {
		if code, _ := restGet(t, http.DefaultClient, "http://"+e.addrs.Webhook+probe, ""); code != http.StatusOK {
			t.Errorf("%s: %d", probe, code)
		}
	}
}

// Generic clients find the API by reflection, and health checks pass.
func TestReflectionAndHealthCheck(t *testing.T) {
	e := start(t, nil)
	stream, err := reflectionpb.NewServerReflectionClient(e.conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"accounthealth.v1.AccountHealthService", "accounthealth.v1.WebhookService", "grpc.health.v1.Health"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
	hc, err := healthpb.NewHealthClient(e.conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check: %v %v", hc.GetStatus(), err)
	}
}

// Deliveries keep arriving while the server shuts down: every one that was
// acknowledged is in the store after a restart.
func TestShutdownLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	e := start(t, openStore(t, dir))
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
		// busy closes once deliveries are being acknowledged, so that the
		// shutdown starts in the middle of the traffic.
		busy = make(chan struct{})
	)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("acct-%d-%d", w, i)
				body := leanBody("accounts.added", id, "u")
				req, _ := http.NewRequest(http.MethodPost, "http://"+e.addrs.Webhook+service.WebhookPath, strings.NewReader(string(body)))
				req.Header.Set(webhook.SignatureHeader, webhook.Sign(fixtureSecret, body))
				res, err := client.Do(req)
				if err != nil {
					continue // refused while shutting down: not acknowledged
				}
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					mu.Lock()
					acked = append(acked, id)
					if len(acked) == 50 {
						close(busy)
					}
					mu.Unlock()
				}
			}
		}()
	}
	<-busy
	if err := e.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	cancel()
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no delivery was acknowledged before shutdown")
	}

	st := openStore(t, dir)
	defer st.Close()
	for _, id := range acked {
		if _, err := st.GetHealth(t.Context(), id); err != nil {
			t.Fatalf("acknowledged %s is missing after restart: %v", id, err)
		}
	}
	t.Logf("%d deliveries acknowledged during shutdown, all present after restart", len(acked))
}
