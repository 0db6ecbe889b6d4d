package service_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/service"
)

// scannedBody is an accounts.updated of a connected account, scanned at
// scannedAt, with ongoing refresh refresh and availability datasets (a
// JSON object's members).
func scannedBody(account string, scannedAt time.Time, refresh, datasets string, at time.Time) []byte {
	ts := at.UTC().Format(time.RFC3339Nano)
	return fmt.Appendf(nil, `{"event":"accounts.updated","name":"test","data":{"account":%q,"user":"user-f","resource":{"id":%q,"user":"user-f",`+
		`"item":"item_1","updated_at":%q,"scanned_at":%q,"connection":{"status":"connected","error_code":null,"error_message":null,"updated_at":%q},`+
		`"availability":{%s},"ongoing_refresh":{"status":%q}}}}`,
		account, account, ts, scannedAt.UTC().Format(time.RFC3339Nano), ts, datasets, refresh)
}

const syncedPaystubs = `"paystubs":{"status":"synced"}`

// TestFreshness: through the API, a HEALTHY account whose datasets fail
// to sync, whose refresh is disabled, or that the provider has not
// scanned for longer than --stale-after keeps its state and tells its
// freshness on reads, lists, the summary and, when asked for, the stream;
// a later scan that syncs makes it fresh again.
func TestFreshness(t *testing.T) {
	// The sweeper's interval is long: the commit of acc-old's week-old
	// scan wakes it.
	e := start(t, nil, func(c *service.Config) {
		c.StaleAfter, c.StaleSweepInterval, c.MetricsAccountsMaxAge = 72*time.Hour, time.Hour, 0
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a bound on a hang, not a wait
	defer cancel()
	stream, err := ahv1.NewAccountHealthServiceClient(e.conn).StreamDisconnections(ctx, &ahv1.StreamDisconnectionsRequest{IncludeFreshnessEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil { // the opening heartbeat
		t.Fatal(err)
	}
	now := time.Now()
	for _, acc := range []string{"acc-fresh", "acc-failed", "acc-off"} {
		e.deliver(scannedBody(acc, now, "enabled", syncedPaystubs, now.Add(-time.Minute)))
	}
	e.deliver(scannedBody("acc-old", now.Add(-100*time.Hour), "enabled", syncedPaystubs, now.Add(-time.Minute)))
	e.deliver(updatedBody("acc-down", "user-f", "error", "auth_required", now))
	e.deliver(scannedBody("acc-failed", now, "enabled", `"paystubs":{"status":"sync_failed"},"identities":{"status":"synced"}`, now))
	e.deliver(scannedBody("acc-off", now, "disabled", syncedPaystubs, now))

	lost := map[string]*ahv1.DisconnectionEvent{}
	for len(lost) < 3 {
		ev := nextEvent(t, stream)
		switch {
		case ev.GetAccountId() == "acc-down" && ev.GetKind() == ahv1.TransitionKind_TRANSITION_KIND_DISCONNECTED:
			// The disconnection kinds come with freshness events.
		case ev.GetKind() != ahv1.TransitionKind_TRANSITION_KIND_FRESHNESS_LOST || ev.GetState() != ahv1.HealthState_HEALTH_STATE_HEALTHY:
			t.Fatalf("event %v; want FRESHNESS_LOST events of HEALTHY accounts", ev)
		default:
			lost[ev.GetAccountId()] = ev
		}
	}
	for acc, want := range map[string]ahv1.FreshnessStatus{
		"acc-failed": ahv1.FreshnessStatus_FRESHNESS_STATUS_SYNC_FAILED,
		"acc-off":    ahv1.FreshnessStatus_FRESHNESS_STATUS_REFRESH_DISABLED,
		"acc-old":    ahv1.FreshnessStatus_FRESHNESS_STATUS_STALE,
	} {
		if ev := lost[acc]; ev.GetFreshness() != want || ev.GetPreviousFreshness() != ahv1.FreshnessStatus_FRESHNESS_STATUS_FRESH {
			t.Errorf("%s: event %v, want FRESH -> %v", acc, ev, want)
		}
	}
	if got := lost["acc-failed"].GetFailedDatasets(); !slices.Equal(got, []string{"paystubs"}) {
		t.Errorf("acc-failed's event names datasets %v, want [paystubs]", got)
	}
	checkFreshnessReads(t, e, now)
	// The sweeper judged acc-old; the others' verdicts came with their deliveries.
	e.waitMetric("accounthealth_freshness_judged_stale_total", 1)
	for f, n := range map[string]float64{"FRESH": 1, "STALE": 1, "REFRESH_DISABLED": 1, "SYNC_FAILED": 1} {
		e.waitMetric(`accounthealth_healthy_accounts{freshness="`+f+`"}`, n)
	}

	e.deliver(scannedBody("acc-failed", now.Add(time.Minute), "enabled", `"paystubs":{"status":"synced"}`, now.Add(time.Minute)))
	if ev := nextEvent(t, stream); ev.GetKind() != ahv1.TransitionKind_TRANSITION_KIND_FRESHNESS_RESTORED || ev.GetAccountId() != "acc-failed" ||
		ev.GetFreshness() != ahv1.FreshnessStatus_FRESHNESS_STATUS_FRESH || ev.GetPreviousFreshness() != ahv1.FreshnessStatus_FRESHNESS_STATUS_SYNC_FAILED {
		t.Fatalf("after the datasets synced: %v, want acc-failed's FRESHNESS_RESTORED", ev)
	}
}

// nextEvent reads the stream up to its next event.
func nextEvent(t *testing.T, stream ahv1.AccountHealthService_StreamDisconnectionsClient) *ahv1.DisconnectionEvent {
	t.Helper()
	for {
		msg, err := stream.Recv()
		if err != nil {
			t.Fatalf("waiting for an event: %v", err)
		}
		if ev := msg.GetEvent(); ev != nil {
			return ev
		}
	}
}

// checkFreshnessReads checks what TestFreshness's accounts read as, over
// gRPC and REST.
func checkFreshnessReads(t *testing.T, e *env, now time.Time) {
	t.Helper()
	for _, r := range readers {
		failed := e.getHealth(r, "acc-failed")
		f := failed.GetFreshness()
		if failed.GetState() != ahv1.HealthState_HEALTH_STATE_HEALTHY || f.GetStatus() != ahv1.FreshnessStatus_FRESHNESS_STATUS_SYNC_FAILED ||
			!slices.Equal(f.GetFailedDatasets(), []string{"paystubs"}) || f.GetMessage() == "" || f.GetSince() == nil || f.GetFreshAsOf() == nil {
			t.Errorf("%s: acc-failed reads %v", r.name, failed)
		}
		old := e.getHealth(r, "acc-old").GetFreshness()
		if since := now.Add(-100 * time.Hour).Add(72 * time.Hour); old.GetStatus() != ahv1.FreshnessStatus_FRESHNESS_STATUS_STALE ||
			old.GetSince().AsTime().Sub(since).Abs() > time.Millisecond || old.GetFreshAsOf() != nil {
			t.Errorf("%s: acc-old's freshness %v, want STALE since %v", r.name, old, since)
		}
		if off := e.getHealth(r, "acc-off").GetFreshness(); off.GetStatus() != ahv1.FreshnessStatus_FRESHNESS_STATUS_REFRESH_DISABLED || !off.GetRefreshDisabled() {
			t.Errorf("%s: acc-off's freshness %v", r.name, off)
		}
		if down := e.getHealth(r, "acc-down"); down.GetFreshness() != nil {
			t.Errorf("%s: a DISCONNECTED account tells a freshness: %v", r.name, down.GetFreshness())
		}
		list := &ahv1.ListAccountHealthResponse{}
		req := &ahv1.ListAccountHealthRequest{Freshness: []ahv1.FreshnessStatus{ahv1.FreshnessStatus_FRESHNESS_STATUS_STALE, ahv1.FreshnessStatus_FRESHNESS_STATUS_SYNC_FAILED}}
		if code := r.call(e, "ListAccountHealth", req, list); code != codes.OK {
			t.Fatalf("%s: ListAccountHealth by freshness: %s", r.name, code)
		}
		var ids []string
		for _, a := range list.GetAccounts() {
			ids = append(ids, a.GetAccountId())
		}
		if got := strings.Join(ids, ","); got != "acc-failed,acc-old" {
			t.Errorf("%s: by freshness STALE, SYNC_FAILED: %s", r.name, got)
		}
		sum := &ahv1.GetHealthSummaryResponse{}
		if code := r.call(e, "GetHealthSummary", &ahv1.GetHealthSummaryRequest{}, sum); code != codes.OK {
			t.Fatalf("%s: GetHealthSummary: %s", r.name, code)
		}
		var counts []string
		for _, c := range sum.GetByFreshness() {
			counts = append(counts, fmt.Sprintf("%s=%d", strings.TrimPrefix(c.GetStatus().String(), "FRESHNESS_STATUS_"), c.GetCount()))
		}
		if got := strings.Join(counts, " "); got != "FRESH=1 STALE=1 REFRESH_DISABLED=1 SYNC_FAILED=1" {
			t.Errorf("%s: summary by freshness %s", r.name, got)
		}
	}
}

// TestFreshnessFilterRefused: a freshness filter value that is none is
// refused naming the field, over gRPC and REST.
func TestFreshnessFilterRefused(t *testing.T) {
	e := start(t, nil)
	for _, f := range []ahv1.FreshnessStatus{ahv1.FreshnessStatus_FRESHNESS_STATUS_UNSPECIFIED, 99} {
		err := e.conn.Invoke(t.Context(), "/accounthealth.v1.AccountHealthService/ListAccountHealth",
			&ahv1.ListAccountHealthRequest{Freshness: []ahv1.FreshnessStatus{f}}, &ahv1.ListAccountHealthResponse{})
		if !strings.Contains(fmt.Sprint(err), "freshness") || !strings.Contains(fmt.Sprint(err), "InvalidArgument") {
			t.Errorf("freshness %v: %v, want InvalidArgument naming freshness", f, err)
		}
	}
	res, err := http.Get("http://" + e.addrs.API + "/v1/accounts/health?freshness=old")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if code, msg, _ := e.restFailure(res.StatusCode, raw); code != codes.InvalidArgument || !strings.Contains(msg, `freshness: "old" is not one of FRESH, STALE, REFRESH_DISABLED, SYNC_FAILED`) {
		t.Errorf("freshness=old: %s %q", code, msg)
	}
}

// A stale-after age under an hour and a sweep interval that is not
// positive are refused, naming the setting; the defaults pass.
func TestFreshnessSettingsValidated(t *testing.T) {
	cfg := service.DefaultConfig()
	cfg.AllowUnsignedWebhooks = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	cfg.StaleAfter, cfg.StaleSweepInterval = 30*time.Minute, 0
	err := cfg.Validate()
	for _, name := range []string{"stale-after: 30m0s is too short", "stale-sweep-interval: must be positive"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Validate() = %v, want an error saying %q", err, name)
		}
	}
}
