package service_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// With an allow-list, only deliveries from the listed sources are taken;
// behind a trusted proxy the sender is read from X-Forwarded-For.
func TestWebhookSourceAllowList(t *testing.T) {
	post := func(e *env, forwardedFor string) int {
		body := leanBody("accounts.added", "a1", "u1")
		req, _ := http.NewRequest(http.MethodPost, "http://"+e.addrs.Webhook+service.WebhookPath, bytes.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, webhook.Sign(fixtureSecret, body))
		if forwardedFor != "" {
			req.Header.Set("X-Forwarded-For", forwardedFor)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	direct := start(t, nil, func(c *service.Config) { c.WebhookAllowSources = []string{"argyle"} })
	if got := post(direct, ""); got != http.StatusForbidden {
		t.Errorf("from loopback, provider-only allow-list: %d, want 403", got)
	}
	if got := post(direct, "34.27.251.226"); got != http.StatusForbidden {
		t.Errorf("forged X-Forwarded-For without a trusted proxy: %d, want 403", got)
	}

	proxied := start(t, nil, func(c *service.Config) {
		c.WebhookAllowSources, c.TrustedProxies = []string{"argyle"}, []string{"127.0.0.1"}
	})
	if got := post(proxied, "34.27.251.226"); got != http.StatusOK {
		t.Errorf("through a trusted proxy from the provider: %d, want 200", got)
	}
	if got := post(proxied, "34.27.251.226, 203.0.113.9"); got != http.StatusForbidden {
		t.Errorf("through a trusted proxy from elsewhere: %d, want 403", got)
	}

	open := start(t, nil)
	if got := post(open, ""); got != http.StatusOK {
		t.Errorf("no allow-list: %d, want 200", got)
	}
}
