package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/accounthealth/accounthealth/server/webhook"
)

// The README's "Send a signed delivery by hand" works as written: the body
// it signs, POSTed to the webhook route, answers the line it shows, and the
// REST read shows the health it shows.
func TestReadmeRESTExamples(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	body := regexp.MustCompile(`(?m)^body='(.*)'$`).FindStringSubmatch(readme)
	answer := regexp.MustCompile(`(?m)^# (\{"event":.*\})$`).FindStringSubmatch(readme)
	secret := regexp.MustCompile(`openssl dgst -sha512 -hmac '([^']+)'`).FindStringSubmatch(readme)
	if body == nil || answer == nil || secret == nil {
		t.Fatal("README.md: the signed-delivery example is not where this test looks for it")
	}
	s := serve(t, t.TempDir(), "ACCOUNTHEALTH_WEBHOOK_SECRET="+secret[1])
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.webhook+"/v1/webhooks/argyle", strings.NewReader(body[1]))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(secret[1], []byte(body[1])))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var compact bytes.Buffer
	if err := json.Compact(&compact, got); err != nil || compact.String() != answer[1] {
		t.Errorf("webhook answered %d %s, the README shows %s", res.StatusCode, got, answer[1])
	}
	health := s.restBody(t, "/v1/accounts/acc-1/health")
	for _, want := range []string{`"accountId":"acc-1"`, `"state":"HEALTH_STATE_AUTH_FAILED"`, `"errorCode":"invalid_mfa"`, `"action":"REMEDY_ACTION_RETRY_MFA"`} {
		if !strings.Contains(strings.ReplaceAll(health, " ", ""), want) {
			t.Errorf("health %s does not show %s, as the README says", health, want)
		}
	}
}
