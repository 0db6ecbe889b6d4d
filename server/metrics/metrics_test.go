package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// counter is a store.Summary that counts its calls and fails while down.
type counter struct {
	calls atomic.Int32
	down  atomic.Bool
}

func (c *counter) summary(context.Context) (store.Summary, error) {
	c.calls.Add(1)
	if c.down.Load() {
		return store.Summary{}, errors.New("database gone")
	}
	return store.Summary{Total: 2, ByState: map[health.State]int{health.StateHealthy: 2}}, nil
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestAccountsAreCountedAtMostOncePerMaxAge(t *testing.T) {
	c := &counter{}
	m := New(c.summary, time.Hour, slog.New(slog.DiscardHandler))
	for range 3 {
		out := scrape(t, m)
		for _, want := range []string{`accounthealth_accounts{state="HEALTHY"} 2`, `accounthealth_accounts{state="AUTH_FAILED"} 0`} {
			if !strings.Contains(out, want) {
				t.Errorf("scrape lacks %s", want)
			}
		}
	}
	if n := c.calls.Load(); n != 1 {
		t.Errorf("%d store queries for 3 scrapes within max age, want 1", n)
	}
}

// A store that cannot count leaves the accounts out, not the whole scrape:
// in an outage the other metrics matter most.
func TestAccountsFailureKeepsTheOtherMetrics(t *testing.T) {
	c := &counter{}
	c.down.Store(true)
	var logs strings.Builder
	m := New(c.summary, 0, slog.New(slog.NewTextHandler(&logs, nil)))
	m.DeliveryReceived()
	out := scrape(t, m)
	if strings.Contains(out, "accounthealth_accounts{") {
		t.Error("accounts reported although the store could not count them")
	}
	for _, want := range []string{"accounthealth_webhook_deliveries_received_total 1", "go_goroutines", "promhttp_metric_handler_errors_total"} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if !strings.Contains(logs.String(), "database gone") {
		t.Errorf("the failure is not logged: %q", logs.String())
	}
	c.down.Store(false)
	if out := scrape(t, m); !strings.Contains(out, `accounthealth_accounts{state="HEALTHY"} 2`) {
		t.Error("accounts not reported once the store answers again (max age 0)")
	}
}
