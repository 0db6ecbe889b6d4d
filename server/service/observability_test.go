package service_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/internal/eventually"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// scrape reads /metrics on the API listener: each sample's value under its
// name and labels as exposed, e.g. `x_total{reason="malformed"}`.
func (e *env) scrape() map[string]float64 {
	e.t.Helper()
	res, err := http.Get("http://" + e.addrs.API + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("GET /metrics: %d", res.StatusCode)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if line == "" || line[0] == '#' || i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			e.t.Fatalf("metrics line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples
}

// waitMetric waits until a sample has the wanted value.
func (e *env) waitMetric(name string, want float64) {
	e.t.Helper()
	eventually.Until(e.t, 5*time.Second, fmt.Sprintf("%s = %g", name, want), func() (bool, string) {
		got := e.scrape()[name]
		return got == want, fmt.Sprint(got)
	})
}

const subscribers = "accounthealth_stream_subscribers"

func TestMetricsFollowTraffic(t *testing.T) {
	e := start(t, nil, func(c *service.Config) { c.MetricsAccountsMaxAge = 0; c.MaxBodyBytes = 4096 })
	if got := e.scrape(); got["accounthealth_webhook_deliveries_received_total"] != 0 || got[subscribers] != 0 || got["go_goroutines"] == 0 {
		t.Fatalf("a fresh server reports received %g, subscribers %g, goroutines %g",
			got["accounthealth_webhook_deliveries_received_total"], got[subscribers], got["go_goroutines"])
	}

	w := e.watchGRPC(&ahv1.StreamDisconnectionsRequest{})
	if got := e.scrape()[subscribers]; got != 1 {
		t.Errorf("%s = %g with one stream open, want 1", subscribers, got)
	}
	failed, added := failedBody("a1"), leanBody("accounts.added", "a2", "u2")
	e.deliver(failed)
	e.deliver(added)
	e.deliver(failed) // a redelivery
	// Refused over both transports: each counted once, although HTTP
	// deliveries pass through the in-process gRPC server.
	for _, tr := range transports {
		tr.send(e, added, "")
		tr.send(e, added, webhook.Sign("not-the-secret", added))
	}
	if r := e.postHTTP(make([]byte, 5000), ""); r.http != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized delivery: %d", r.http)
	}
	w.events(t, 1)
	w.cancel()
	<-w.done
	e.waitMetric(subscribers, 0)

	got := e.scrape()
	for name, want := range map[string]float64{
		"accounthealth_webhook_deliveries_received_total":                             8,
		`accounthealth_webhook_deliveries_accepted_total{outcome="APPLIED"}`:          2,
		`accounthealth_webhook_deliveries_accepted_total{outcome="DUPLICATE"}`:        1,
		`accounthealth_webhook_deliveries_rejected_total{reason="missing_signature"}`: 2,
		`accounthealth_webhook_deliveries_rejected_total{reason="invalid_signature"}`: 2,
		`accounthealth_webhook_deliveries_rejected_total{reason="too_large"}`:         1,
		"accounthealth_webhook_intake_seconds_count":                                  3,
		"accounthealth_store_commit_batch_size_sum":                                   3,
		`accounthealth_transitions_total{kind="AUTH_FAILED"}`:                         1,
		`accounthealth_accounts{state="AUTH_FAILED"}`:                                 1,
		`accounthealth_accounts{state="CONNECTING"}`:                                  1,
		`accounthealth_accounts{state="HEALTHY"}`:                                     0,
		"accounthealth_stream_events_sent_total":                                      1,
		"accounthealth_stream_lag_changes_count":                                      1,
	} {
		if got[name] != want {
			t.Errorf("%s = %g, want %g", name, got[name], want)
		}
	}
	for _, name := range []string{"accounthealth_store_commit_batch_size_count", "accounthealth_store_commit_seconds_count"} {
		if n := got[name]; n < 1 || n > 3 {
			t.Errorf("%s = %g, want 1 to 3 commits for 3 deliveries", name, n)
		}
	}
}

func TestMetricsCountProviderCalls(t *testing.T) {
	e, fake := withFake(t, nil)
	seed(t, e, fake, "known", failedBody("known"))
	e.deliver(failedBody("unknown-there")) // the provider never heard of it
	for _, id := range []string{"known", "unknown-there"} {
		if _, code, msg := deleteCalls[0].call(e, id, false, false); code != codes.OK {
			t.Fatalf("delete %s: %s %s", id, code, msg)
		}
	}
	got := e.scrape()
	for name, want := range map[string]float64{
		`accounthealth_provider_requests_total{method="DELETE",outcome="ok"}`:        1,
		`accounthealth_provider_requests_total{method="DELETE",outcome="not_found"}`: 1,
		`accounthealth_provider_request_seconds_count{method="DELETE"}`:              2,
	} {
		if got[name] != want {
			t.Errorf("%s = %g, want %g", name, got[name], want)
		}
	}
}

// pingStore fails its Ping while down, as a store whose database is gone.
type pingStore struct {
	store.Store
	down atomic.Bool
}

func (s *pingStore) Ping(ctx context.Context) error {
	if s.down.Load() {
		return errAlwaysUnavailable
	}
	return s.Store.Ping(ctx)
}

// healthNames are the names grpc.health.v1 answers for: the server and
// each service.
var healthNames = []string{"", "accounthealth.v1.AccountHealthService", "accounthealth.v1.WebhookService"}

// probes says what every readiness probe answers: /readyz on both HTTP
// listeners, and grpc.health.v1 for each of healthNames.
func (e *env) probes() []string {
	e.t.Helper()
	var out []string
	for _, addr := range []string{e.addrs.Webhook, e.addrs.API} {
		code, body := restGet(e.t, http.DefaultClient, "http://"+addr+"/readyz", "")
		if strings.Contains(body, errAlwaysUnavailable.Error()) {
			e.t.Errorf("/readyz tells the store's error: %s", body)
		}
		out = append(out, fmt.Sprintf("%s %d", addr, code))
	}
	hc := healthpb.NewHealthClient(e.conn)
	for _, name := range healthNames {
		res, err := hc.Check(e.t.Context(), &healthpb.HealthCheckRequest{Service: name})
		if err != nil {
			e.t.Fatalf("health check %q: %v", name, err)
		}
		out = append(out, fmt.Sprintf("%q %s", name, res.GetStatus()))
	}
	return out
}

// waitProbes waits until every probe answers httpCode and status.
func (e *env) waitProbes(httpCode int, status healthpb.HealthCheckResponse_ServingStatus) {
	e.t.Helper()
	want := []string{fmt.Sprintf("%s %d", e.addrs.Webhook, httpCode), fmt.Sprintf("%s %d", e.addrs.API, httpCode)}
	for _, name := range healthNames {
		want = append(want, fmt.Sprintf("%q %s", name, status))
	}
	eventually.Until(e.t, 5*time.Second, fmt.Sprintf("probes %q", want), func() (bool, string) {
		got := e.probes()
		return slices.Equal(got, want), fmt.Sprintf("%q", got)
	})
}

// Readiness follows the store: load balancers stop sending traffic while
// it is gone and resume when it is back; liveness stays up throughout.
func TestReadinessFollowsTheStore(t *testing.T) {
	st := &pingStore{Store: openStore(t, t.TempDir())}
	e := start(t, st, func(c *service.Config) { c.HealthCheckInterval = 20 * time.Millisecond })
	e.waitProbes(http.StatusOK, healthpb.HealthCheckResponse_SERVING)

	st.down.Store(true)
	e.waitProbes(http.StatusServiceUnavailable, healthpb.HealthCheckResponse_NOT_SERVING)
	res, err := http.Get("http://" + e.addrs.Webhook + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if code, msg := e.restError(res.StatusCode, raw); code != codes.Unavailable || !strings.Contains(msg, "store") {
		t.Errorf("/readyz while the store is gone: %s %q", code, msg)
	}
	if code, _ := restGet(t, http.DefaultClient, "http://"+e.addrs.Webhook+"/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz while the store is gone: %d, want 200 (the process is alive)", code)
	}
	if !strings.Contains(e.logs.String(), errAlwaysUnavailable.Error()) {
		t.Error("the store's error is not in the log")
	}

	st.down.Store(false)
	e.waitProbes(http.StatusOK, healthpb.HealthCheckResponse_SERVING)
}

// The OpenAPI document is served on the API listener, authenticated like
// the API, and describes the webhook route and the error reasons.
func TestOpenAPIServed(t *testing.T) {
	ts, tokens := tokensFor(t, "docs")
	token := tokens["docs"]
	e := start(t, nil, func(c *service.Config) { c.APITokens = ts })
	url := "http://" + e.addrs.API + "/openapi.json"
	if code, _ := restGet(t, http.DefaultClient, url, ""); code != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", code)
	}
	code, body := restGet(t, http.DefaultClient, url, token)
	var doc struct {
		Swagger     string
		Paths       map[string]any
		Definitions map[string]any
	}
	if err := json.Unmarshal([]byte(body), &doc); code != http.StatusOK || err != nil {
		t.Fatalf("GET /openapi.json: %d %v", code, err)
	}
	for _, p := range []string{"/v1/webhooks/argyle", "/v1/accounts/{accountId}/health", "/v1/accounts:sync"} {
		if doc.Paths[p] == nil {
			t.Errorf("no path %s", p)
		}
	}
	if doc.Definitions["v1ErrorReason"] == nil {
		t.Error("no v1ErrorReason definition")
	}
	if code, _ := restGet(t, http.DefaultClient, "http://"+e.addrs.Webhook+"/openapi.json", ""); code != http.StatusNotFound {
		t.Errorf("the webhook listener serves it: %d, want 404", code)
	}
}

// /metrics names the running build.
func TestBuildInfoMetric(t *testing.T) {
	e := start(t, nil)
	for name, v := range e.scrape() {
		if strings.HasPrefix(name, "accounthealth_build_info{") && strings.Contains(name, `go_version="go1.`) && v == 1 {
			return
		}
	}
	t.Error("no accounthealth_build_info series")
}
