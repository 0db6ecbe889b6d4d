package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/internal/eventually"
)

// The whole system runs locally with no provider account: serve talks to
// fake-provider, which sends its signed webhooks back to serve.
func TestFakeProviderLocalRun(t *testing.T) {
	fakeAddr := freePort(t)
	s := serve(t, t.TempDir(), "ACCOUNTHEALTH_ARGYLE_API_URL=http://"+fakeAddr+"/v2",
		"ACCOUNTHEALTH_ARGYLE_API_KEY_ID=fake-key-id", "ACCOUNTHEALTH_ARGYLE_API_KEY_SECRET=fake-key-secret")

	out := newLogWatch()
	fake := exec.Command(binary, "fake-provider", "--addr", fakeAddr, "--webhook-url", "http://"+s.webhook+"/v1/webhooks/argyle")
	fake.Env = append(cleanEnv(), "ACCOUNTHEALTH_WEBHOOK_SECRET="+fixtureSecret)
	fake.Stdout, fake.Stderr = out, out
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Process.Kill(); _ = fake.Wait() })

	// Seed a failed-login account at the fake; its failure reaches serve as webhooks.
	fakeCall := func(method, path, body string) int {
		t.Helper()
		var code int
		eventually.Until(t, 10*time.Second, "the fake provider answers "+method+" "+path, func() (bool, string) {
			req, _ := http.NewRequest(method, "http://"+fakeAddr+path, strings.NewReader(body))
			req.SetBasicAuth("fake-key-id", "fake-key-secret")
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return false, fmt.Sprintf("%v\n%s", err, out.String())
			}
			res.Body.Close()
			code = res.StatusCode
			return true, ""
		})
		return code
	}
	if code := fakeCall(http.MethodPost, "/_fake/accounts", `{"id":"acct-1","user":"user-1","status":"connecting"}`); code >= 300 {
		t.Fatalf("seed: %d\n%s", code, out.String())
	}
	if code := fakeCall(http.MethodPost, "/_fake/accounts/acct-1/fail", `{"error_code":"invalid_credentials"}`); code >= 300 {
		t.Fatalf("fail: %d\n%s", code, out.String())
	}
	waitREST(t, s, "/v1/accounts/acct-1/health", "the failed login", func(b string) bool {
		return strings.Contains(b, "HEALTH_STATE_AUTH_FAILED")
	})

	req, _ := http.NewRequest(http.MethodDelete, "http://"+s.rest+"/v1/accounts/acct-1", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d\n%s", res.StatusCode, s.stderr)
	}
	// The fake's own accounts.removed arrives after ours and changes nothing.
	waitREST(t, s, "/v1/accounts/acct-1/events", "the fake's removal after ours", func(b string) bool {
		return strings.Contains(b, "DELIVERY_OUTCOME_AFTER_REMOVAL")
	})
	if !strings.Contains(s.restBody(t, "/v1/accounts/acct-1/health"), "HEALTH_STATE_REMOVED") {
		t.Error("account not removed")
	}
	if strings.Contains(s.stderr.String(), "fake-key-secret") {
		t.Error("the provider key secret appears in serve's log")
	}
	// The fake says how to point serve at it, key secret included (it is
	// the fake's own), and logs each request it serves.
	if o := out.String(); !strings.Contains(o, "--argyle-api-key-secret fake-key-secret") ||
		!strings.Contains(o, "msg=request method=POST path=/_fake/accounts/acct-1/fail") {
		t.Errorf("fake provider output:\n%s", o)
	}
}

func TestFakeProviderHelp(t *testing.T) {
	runCases(t, nil, []cliCase{{"help lists the control routes", []string{"fake-provider", "--help"}, exitOK, nil,
		[]string{"Control routes", "POST   /_fake/accounts/{id}/{action}", "DELETE /_fake/faults"}}})
}
