package service_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/service"
)

// Both HTTP listeners answer a known path's wrong method with 405, the
// methods it takes in Allow, and the service's error shape; HEAD as GET
// without a body; OPTIONS with Allow; and an unknown path with 404 whatever
// the method.
func TestHTTPMethods(t *testing.T) {
	e := start(t, nil)
	e.deliver(leanBody("accounts.added", "a1", "u1"))
	webhookURL, apiURL := "http://"+e.addrs.Webhook, "http://"+e.addrs.API
	cases := []struct {
		name, method, url string
		status            int
		allow             string
	}{
		{"GET of the webhook route", http.MethodGet, webhookURL + service.WebhookPath, 405, "POST"},
		{"PUT of the webhook route", http.MethodPut, webhookURL + service.WebhookPath, 405, "POST"},
		{"DELETE of the webhook route", http.MethodDelete, webhookURL + service.WebhookPath, 405, "POST"},
		{"HEAD of the webhook route", http.MethodHead, webhookURL + service.WebhookPath, 405, "POST"},
		{"OPTIONS of the webhook route", http.MethodOptions, webhookURL + service.WebhookPath, 204, "POST"},
		{"POST of a probe", http.MethodPost, webhookURL + "/readyz", 405, "GET, HEAD"},
		{"HEAD of a probe", http.MethodHead, webhookURL + "/readyz", 200, ""},
		{"an API path on the webhook listener", http.MethodDelete, webhookURL + "/v1/accounts/a1", 404, ""},
		{"OPTIONS of an unknown path", http.MethodOptions, webhookURL + "/metrics", 404, ""},
		{"POST of a read", http.MethodPost, apiURL + "/v1/accounts/a1/health", 405, "GET, HEAD"},
		{"PATCH of an account", http.MethodPatch, apiURL + "/v1/accounts/a1", 405, "DELETE"},
		{"DELETE of the metrics", http.MethodDelete, apiURL + "/metrics", 405, "GET, HEAD"},
		{"HEAD of a read", http.MethodHead, apiURL + "/v1/accounts/a1/health", 200, ""},
		{"OPTIONS of a read", http.MethodOptions, apiURL + "/v1/accounts/a1/health", 204, "GET, HEAD"},
		{"the webhook route on the API listener", http.MethodPost, apiURL + service.WebhookPath, 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, c.url, nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != c.status || res.Header.Get("Allow") != c.allow {
				t.Fatalf("%s: %d, Allow %q; want %d, Allow %q (body %s)", c.method, res.StatusCode, res.Header.Get("Allow"), c.status, c.allow, body)
			}
			switch {
			case c.method == http.MethodHead || c.status == http.StatusNoContent:
				if len(body) != 0 {
					t.Errorf("%s answered with a body: %q", c.method, body)
				}
			case c.status == http.StatusMethodNotAllowed:
				_, msg, reason := e.restFailure(res.StatusCode, body)
				if reason != ahv1.ErrorReason_METHOD_NOT_ALLOWED || !strings.Contains(msg, "this path takes "+c.allow) {
					t.Errorf("reason %s, message %q; want METHOD_NOT_ALLOWED naming %s", reason, msg, c.allow)
				}
			}
		})
	}
}
