package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/internal/eventually"
)

// simulateEnds is the health each scenario of `all` ends in, and the
// freshness of those that end HEALTHY.
var simulateEnds = []struct {
	scenario, state, code string
	minFailures           int
	freshness             string
}{
	{"connect", "HEALTHY", "", 0, "FRESH"},
	{"failed-login", "AUTH_FAILED", "invalid_credentials", 1, ""},
	{"wrong-mfa", "AUTH_FAILED", "invalid_mfa", 1, ""},
	{"mfa-timeout", "AUTH_FAILED", "mfa_timeout", 1, ""},
	{"repeated-reauth-failure", "AUTH_FAILED", "invalid_credentials", 2, ""},
	{"disconnect", "DISCONNECTED", "auth_required", 0, ""},
	{"expired-credentials", "DISCONNECTED", "expired_credentials", 0, ""},
	{"provider-outage", "HEALTHY", "", 0, "FRESH"},
	{"reconnect", "HEALTHY", "", 0, "FRESH"},
	{"revoke", "REMOVED", "", 0, ""},
	{"refresh-disabled", "HEALTHY", "", 0, "REFRESH_DISABLED"},
	{"sync-failed", "HEALTHY", "", 0, "FRESH"},
	{"stale", "HEALTHY", "", 0, "STALE"}, // once the sweeper has looked
}

// simulate, run through the binary against a served binary, leaves each
// scenario's account in the state its story ends in, keeps up a steady
// load, and says why when the server refuses its deliveries.
func TestSimulate(t *testing.T) {
	// The sweeper's interval is long: the commit of the stale scenario's
	// week-old scan wakes it.
	s := serve(t, t.TempDir(), "ACCOUNTHEALTH_STALE_SWEEP_INTERVAL=1h")
	url := "http://" + s.webhook
	// The variable serve reads too; of its two secrets the last one signs.
	env := []string{"ACCOUNTHEALTH_WEBHOOK_SECRET=old-secret," + fixtureSecret}

	t.Run("every scenario ends in its state", func(t *testing.T) { scenariosEnd(t, s, url, env) })

	t.Run("load", func(t *testing.T) {
		code, stdout, stderr := runBinary(t, env, "simulate", "--webhook-url", url, "--accounts", "20", "--rate", "100", "--duration", "2s")
		if code != exitOK || !strings.Contains(stderr, " ok ") || !strings.Contains(stderr, "sent ") || !strings.Contains(stderr, " 0 refused, 0 failed") {
			t.Errorf("exit code %d\n%s%s", code, stdout, stderr)
		}
	})

	cases := []struct {
		name   string
		env    []string
		args   []string
		code   int
		output []string // parts of stdout+stderr
	}{
		{"list", nil, []string{"--list"}, exitOK, []string{"repeated-reauth-failure", "refresh-disabled", "sync-failed", "stale "}},
		{"help lists scenarios", nil, []string{"--help"}, exitOK, []string{"provider-outage"}},
		{"wrong secret", nil, []string{"--webhook-secret", "not-the-secret", "connect"}, exitError,
			[]string{"3 of 3 deliveries were not accepted", "401: Unauthenticated: invalid signature", "check --webhook-secret matches"}},
		{"unsigned", nil, []string{"--unsigned", "connect"}, exitError, []string{"--allow-unsigned-webhooks"}},
		{"unknown scenario", env, []string{"connect", "frobnicate"}, exitUsage, []string{`unknown scenario "frobnicate": want one of all, connect,`}},
		{"no secret", nil, []string{"connect"}, exitUsage, []string{"webhook-secret: required"}},
		{"nothing to do", env, nil, exitUsage, []string{"name a scenario"}},
		{"load without rate", env, []string{"--accounts", "3"}, exitUsage, []string{"rate"}},
		{"bad fraction from env", append([]string{"ACCOUNTHEALTH_DUPLICATES=2"}, env...), []string{"connect"}, exitUsage, []string{"duplicates: 2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"simulate", "--webhook-url", url}, c.args...)
			code, stdout, stderr := runBinary(t, c.env, args...)
			if code != c.code {
				t.Errorf("exit code %d, want %d\n%s%s", code, c.code, stdout, stderr)
			}
			for _, want := range c.output {
				if !strings.Contains(stdout+stderr, want) {
					t.Errorf("output does not contain %q:\n%s%s", want, stdout, stderr)
				}
			}
		})
	}
}

// scenariosEnd plays `all` against s and checks each scenario's account
// ends as simulateEnds says.
func scenariosEnd(t *testing.T, s *server, url string, env []string) {
	code, stdout, stderr := runBinary(t, env, "simulate", "--webhook-url", url, "-o", "json", "all")
	if code != exitOK {
		t.Fatalf("exit code %d\n%s%s", code, stdout, stderr)
	}
	accounts := map[string]string{} // scenario -> account
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var r struct {
			Scenario, Account, Outcome string
			Status                     int
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Status != 200 || r.Outcome != "APPLIED" {
			t.Fatalf("result %q: %v", line, err)
		}
		accounts[r.Scenario] = r.Account
	}
	if len(accounts) != len(simulateEnds) {
		t.Errorf("%d scenarios played, want %d", len(accounts), len(simulateEnds))
	}
	var listed map[string]simulatedAccount
	eventually.Until(t, 30*time.Second, "the stale scenario's account is judged stale", func() (bool, string) {
		listed = listSimulated(t, s)
		a := listed[accounts["stale"]]
		return a.Freshness.Status == "FRESHNESS_STATUS_STALE", fmt.Sprintf("%+v", a)
	})
	for _, c := range simulateEnds {
		a, ok := listed[accounts[c.scenario]]
		if !ok {
			t.Errorf("%s: account %q not listed", c.scenario, accounts[c.scenario])
			continue
		}
		if a.State != "HEALTH_STATE_"+c.state || a.ErrorCode != c.code || a.ConsecutiveFailures < c.minFailures {
			t.Errorf("%s: %s %q after %d failures, want %s %q after at least %d",
				c.scenario, a.State, a.ErrorCode, a.ConsecutiveFailures, c.state, c.code, c.minFailures)
		}
		want := "" // not HEALTHY: no freshness
		if c.freshness != "" {
			want = "FRESHNESS_STATUS_" + c.freshness
		}
		if a.Freshness.Status != want {
			t.Errorf("%s: freshness %q, want %q", c.scenario, a.Freshness.Status, want)
		}
	}
}

// simulatedAccount is what scenariosEnd reads of an account.
type simulatedAccount struct {
	AccountID           string `json:"accountId"`
	State               string
	ErrorCode           string
	ConsecutiveFailures int
	Freshness           struct{ Status string }
}

// listSimulated lists s's accounts by id.
func listSimulated(t *testing.T, s *server) map[string]simulatedAccount {
	t.Helper()
	var list struct{ Accounts []simulatedAccount }
	if err := json.Unmarshal([]byte(s.restBody(t, "/v1/accounts/health?pageSize=100")), &list); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]simulatedAccount, len(list.Accounts))
	for _, a := range list.Accounts {
		out[a.AccountID] = a
	}
	return out
}
