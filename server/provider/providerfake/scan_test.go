package providerfake_test

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/provider/providerfake"
)

// freshness is what an account object says of its data's freshness.
type freshness struct {
	UpdatedAt time.Time  `json:"updated_at"`
	ScannedAt *time.Time `json:"scanned_at"`
	// Availability is each dataset's status, "" when null.
	Availability   map[string]*struct{ Status string } `json:"availability"`
	OngoingRefresh struct{ Status string }             `json:"ongoing_refresh"`
}

func freshnessOf(t *testing.T, raw []byte) freshness {
	t.Helper()
	var f freshness
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	return f
}

// statuses lists the datasets by status, each list sorted: "synced" ->
// [...]; null datasets under "null".
func (f freshness) statuses() map[string][]string {
	out := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(f.Availability)) {
		status := "null"
		if d := f.Availability[name]; d != nil {
			status = d.Status
		}
		out[status] = append(out[status], name)
	}
	return out
}

var (
	countedAndPlain = []string{"deposit_destinations", "gigs", "identities", "payroll_documents", "paystubs", "ratings", "shifts", "vehicles"}
	offeredButPay   = []string{"deposit_destinations", "gigs", "identities", "payroll_documents", "ratings", "shifts", "vehicles"}
)

// Seeds say ongoing_refresh and failed datasets, and the objects served,
// listed and delivered show them; by default refresh follows the
// connection.
func TestFreshnessSeedsShowInTheObjects(t *testing.T) {
	url, got := receiver(t)
	e := start(t, providerfake.Options{WebhookURL: url, IncludeResource: true})
	weekAgo := time.Now().Add(-7 * 24 * time.Hour)
	stale := e.add(t, providerfake.AccountSeed{User: "u1", ScannedAt: weekAgo, OngoingRefresh: "disabled",
		FailedDatasets: []string{"paystubs", "user_forms"}})
	e.add(t, providerfake.AccountSeed{User: "u1", ScannedAt: weekAgo})
	e.add(t, providerfake.AccountSeed{User: "u1", Status: "error", ErrorCode: "invalid_mfa"})

	a, err := e.client.GetAccount(t.Context(), stale.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"synced": offeredButPay, "sync_failed": {"paystubs", "user_forms"}, "null": {"user_uploads"}}
	f := freshnessOf(t, a.Raw)
	if f.OngoingRefresh.Status != "disabled" || !maps.EqualFunc(f.statuses(), want, slices.Equal) ||
		f.ScannedAt == nil || !f.ScannedAt.Equal(stale.ScannedAt) {
		t.Errorf("served refresh %s, datasets %v, scanned %v; want disabled, %v, %v", f.OngoingRefresh.Status, f.statuses(), f.ScannedAt, want, stale.ScannedAt)
	}
	listed, err := e.client.ListAccounts(t.Context(), provider.ListAccountsParams{User: "u1"})
	if err != nil || len(listed.Accounts) != 3 {
		t.Fatalf("listed %+v, %v", listed, err)
	}
	for i, wantRefresh := range []string{"disabled", "enabled", "idle"} {
		if got := freshnessOf(t, listed.Accounts[i].Raw).OngoingRefresh.Status; got != wantRefresh {
			t.Errorf("listed account %d: ongoing_refresh %s, want %s", i, got, wantRefresh)
		}
	}
	if f := freshnessOf(t, listed.Accounts[1].Raw); !slices.Equal(f.statuses()["synced"], countedAndPlain) {
		t.Errorf("a seed without failed datasets: %v", f.statuses())
	}

	// A change keeps them: the provider does not re-enable refresh on a logout.
	mustDo(t, e.fake.Disconnect(stale.ID, ""))
	d := next(t, got)
	if f := freshnessOf(t, d.Data.Resource); d.Event != "accounts.updated" || f.OngoingRefresh.Status != "disabled" || f.Availability["paystubs"].Status != "sync_failed" {
		t.Errorf("%s delivered refresh %s, datasets %v", d.Event, f.OngoingRefresh.Status, f.statuses())
	}
	if s := e.fake.Accounts()[0]; s.OngoingRefresh != "disabled" || !slices.Equal(s.FailedDatasets, []string{"paystubs", "user_forms"}) {
		t.Errorf("Accounts() = %+v", s)
	}
}

// Seeds no object can show are refused with 400, naming the field.
func TestFreshnessSeedsRefused(t *testing.T) {
	e := start(t, providerfake.Options{})
	for body, problem := range map[string]string{
		`{"scanned_at":"2026-01-02T03:04:05Z","failed_datasets":["paystubs","payslips"]}`: `unknown dataset \"payslips\"`,
		`{"failed_datasets":["paystubs"]}`:                                                "needs scanned_at",
	} {
		status, got := e.authed(t, "POST", "/_fake/accounts", body)
		if status != http.StatusBadRequest || !strings.Contains(got, `{"failed_datasets":["`) || !strings.Contains(got, problem) {
			t.Errorf("seed %s: %d %s; want 400 naming failed_datasets: %s", body, status, got, problem)
		}
	}
	var field *providerfake.FieldError
	if _, err := e.fake.AddAccount(providerfake.AccountSeed{ScannedAt: time.Now(), FailedDatasets: []string{""}}); !errors.As(err, &field) || field.Field != "failed_datasets" {
		t.Errorf("AddAccount with an empty dataset name: %v", err)
	}
	if n := len(e.fake.Accounts()); n != 0 {
		t.Errorf("%d accounts added from refused seeds", n)
	}
}

// A periodic scan sends what the provider does: the datasets in_progress,
// then scanned_at at the clock and each dataset's outcome, updated_at
// advancing even on a clock that stands still.
func TestScanSendsTheProvidersDeliveries(t *testing.T) {
	url, got := receiver(t)
	fixed := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	e := start(t, providerfake.Options{
		WebhookURL: url, WebhookSecret: webhookSecret, IncludeResource: true,
		Clock: func() time.Time { return fixed },
	})
	weekAgo := fixed.Add(-7 * 24 * time.Hour)
	a := e.add(t, providerfake.AccountSeed{ScannedAt: weekAgo, CreatedAt: weekAgo})
	var last time.Time
	expect := func(scanned time.Time, refresh string, want map[string][]string) {
		t.Helper()
		d := verified(t, got, webhookSecret)
		f := freshnessOf(t, d.Data.Resource)
		if d.Event != "accounts.updated" || d.Data.Account != a.ID || f.ScannedAt == nil || !f.ScannedAt.Equal(scanned) ||
			f.OngoingRefresh.Status != refresh || !maps.EqualFunc(f.statuses(), want, slices.Equal) {
			t.Errorf("got %s scanned %v, refresh %s, datasets %v; want accounts.updated scanned %v, refresh %s, datasets %v",
				d.Event, f.ScannedAt, f.OngoingRefresh.Status, f.statuses(), scanned, refresh, want)
		}
		if !f.UpdatedAt.After(last) {
			t.Errorf("updated_at %v, not after %v", f.UpdatedAt, last)
		}
		last = f.UpdatedAt
	}
	inProgress := map[string][]string{"in_progress": countedAndPlain, "null": {"user_forms", "user_uploads"}}
	synced := map[string][]string{"synced": countedAndPlain, "null": {"user_forms", "user_uploads"}}

	mustDo(t, e.fake.Scan(a.ID, providerfake.ScanResult{FailedDatasets: []string{"paystubs"}}))
	expect(weekAgo, "enabled", inProgress)
	expect(fixed, "enabled", map[string][]string{"synced": offeredButPay, "sync_failed": {"paystubs"}, "null": {"user_forms", "user_uploads"}})

	// Over the control route, with the next scan syncing them and
	// disabling refresh from then on.
	path := "/_fake/accounts/" + a.ID + "/scan"
	if status, body := e.authed(t, "POST", path, `{"ongoing_refresh":"disabled"}`); status != http.StatusNoContent {
		t.Fatalf("scan: %d %s", status, body)
	}
	// The clock stands still, so this scan happens 2µs later, after the
	// last one's end.
	expect(fixed, "enabled", inProgress)
	expect(fixed.Add(2*time.Microsecond), "disabled", synced)
	if status, body := e.authed(t, "POST", path, ""); status != http.StatusNoContent {
		t.Fatalf("scan without a body: %d %s", status, body)
	}
	e.fake.WaitDeliveries()
	if n := len(got); n != 2 {
		t.Errorf("a scan without a body delivered %d, want 2", n)
	}
}

// A scan refuses what the provider would not do, and its deliveries are
// dropped as other changes' are.
func TestScanRefusalsAndDrops(t *testing.T) {
	url, got := receiver(t)
	e := start(t, providerfake.Options{WebhookURL: url})
	a := e.add(t, providerfake.AccountSeed{})
	gone := e.add(t, providerfake.AccountSeed{Status: "error", ErrorCode: "auth_required"})
	path := "/_fake/accounts/" + a.ID + "/scan"
	cases := []struct {
		path, body string
		status     int
		has        string
	}{
		{path, `{"failed_datasets":["payslips"]}`, http.StatusBadRequest, `{"failed_datasets":["unknown dataset \"payslips\"`},
		{path, `{"error_code":"auth_required"}`, http.StatusBadRequest, "unknown field"},
		{"/_fake/accounts/nope/scan", "", http.StatusNotFound, "no such account"},
		{"/_fake/accounts/" + gone.ID + "/scan", "", http.StatusConflict, "not connected"},
		{path, `{"silently":true}`, http.StatusNoContent, ""},
	}
	for _, c := range cases {
		if status, body := e.authed(t, "POST", c.path, c.body); status != c.status || !strings.Contains(body, c.has) {
			t.Errorf("%s %s: %d %s; want %d with %s", c.path, c.body, status, body, c.status, c.has)
		}
	}
	if events := drain(e, got); len(events) != 0 {
		t.Errorf("refused and silent scans delivered %v", events)
	}
	if s := e.fake.Accounts()[0]; s.ScannedAt.IsZero() {
		t.Error("a silent scan left scanned_at null")
	}
	mustDo(t, e.fake.Scan(a.ID, providerfake.ScanResult{}, providerfake.Dropping("accounts.updated")))
	if events := drain(e, got); len(events) != 0 {
		t.Errorf("a scan dropping accounts.updated delivered %v", events)
	}
	if err := e.fake.Scan(gone.ID, providerfake.ScanResult{}); !errors.Is(err, providerfake.ErrNotConnected) {
		t.Errorf("Scan of an account in error: %v", err)
	}
}
