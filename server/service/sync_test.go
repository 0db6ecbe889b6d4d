package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/provider/providerfake"
	"github.com/accounthealth/accounthealth/server/refresh"
	"github.com/accounthealth/accounthealth/server/service"
)

// seedFake adds n accounts to the fake: a third connected, a third
// disconnected, a third connecting.
func seedFake(t testing.TB, fake *providerfake.Fake, n int) map[string]ahv1.HealthState {
	t.Helper()
	want := map[string]ahv1.HealthState{}
	scanned := time.Now().Add(-time.Hour)
	for i := range n {
		s := providerfake.AccountSeed{ID: fmt.Sprintf("acct-%05d", i), User: fmt.Sprintf("user-%d", i%700), ScannedAt: scanned}
		switch i % 3 {
		case 0:
			s.Status, want[s.ID] = "connected", ahv1.HealthState_HEALTH_STATE_HEALTHY
		case 1:
			s.Status, s.ErrorCode, want[s.ID] = "error", "auth_required", ahv1.HealthState_HEALTH_STATE_DISCONNECTED
		default:
			s.Status, s.ScannedAt, want[s.ID] = "connecting", time.Time{}, ahv1.HealthState_HEALTH_STATE_CONNECTING
		}
		if _, err := fake.AddAccount(s); err != nil {
			t.Fatal(err)
		}
	}
	return want
}

// syncAccounts runs SyncAccounts over gRPC; stopAfter > 0 cancels the call
// after the first progress message that has seen that many accounts.
func syncAccounts(e *env, restart bool, stopAfter int) ([]*ahv1.SyncAccountsResponse, error) {
	ctx, cancel := context.WithCancel(e.t.Context())
	defer cancel()
	stream, err := ahv1.NewAccountHealthServiceClient(e.conn).SyncAccounts(ctx, &ahv1.SyncAccountsRequest{Restart: restart})
	if err != nil {
		return nil, err
	}
	var got []*ahv1.SyncAccountsResponse
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		if got = append(got, msg); stopAfter > 0 && msg.GetSeen() >= int64(stopAfter) {
			cancel()
		}
	}
}

func TestSyncAccountsBackfillsAndResumes(t *testing.T) {
	e, fake := withFake(t, nil, func(c *service.Config) { c.SyncOnStart = false })
	want := seedFake(t, fake, 10000)

	// Progress may repeat a page's count (a retry under load), so the
	// interruption is by accounts seen, not by messages.
	part, err := syncAccounts(e, false, 2000)
	if len(part) == 0 {
		t.Fatalf("interrupted backfill: no progress: %v", err)
	}
	stopped := part[len(part)-1]
	if status.Code(err) != codes.Canceled || stopped.GetSeen() < 2000 || stopped.GetSeen() >= 10000 || stopped.GetDone() {
		t.Fatalf("interrupted backfill: %v, %d messages, last %v", err, len(part), stopped)
	}
	rest, err := syncAccounts(e, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	last := rest[len(rest)-1]
	if !last.GetDone() || last.GetSeen() != 10000 || last.GetPages() != 50 {
		t.Fatalf("resumed backfill ended with %v", last)
	}
	if first := rest[0]; first.GetSeen() <= stopped.GetSeen() || first.GetPages() <= stopped.GetPages() {
		t.Errorf("the resumed backfill began again: %v", first)
	}
	sum := &ahv1.GetHealthSummaryResponse{}
	if code := e.callGRPC("GetHealthSummary", &ahv1.GetHealthSummaryRequest{}, sum); code != codes.OK || sum.GetTotal() != 10000 {
		t.Fatalf("summary %s %v", code, sum)
	}
	for id, state := range want {
		if got := e.getHealth(readers[0], id); got.GetState() != state {
			t.Fatalf("%s: %s, want %s", id, got.GetState(), state)
		}
	}
	// Finished: a plain call answers the final state at once.
	again, err := syncAccounts(e, false, 0)
	if err != nil || len(again) != 1 || !again[0].GetDone() {
		t.Errorf("after done: %v %v", again, err)
	}
}

func TestSyncOnStart(t *testing.T) {
	since := timestamppb.Now()
	fake := providerfake.New(providerfake.Options{KeyID: "fake-key", KeySecret: fakeKeySecret})
	t.Cleanup(fake.Close)
	seedFake(t, fake, 30)
	api := httptest.NewServer(fake.Handler())
	t.Cleanup(api.Close)
	e := start(t, nil, func(c *service.Config) {
		c.Provider = provider.Config{BaseURL: api.URL + "/v2", KeyID: "fake-key", KeySecret: fakeKeySecret}
	})
	// The stream shows the ten disconnections the backfill found.
	w := e.watchGRPC(&ahv1.StreamDisconnectionsRequest{Start: &ahv1.StreamDisconnectionsRequest_Since{Since: since}})
	if evs := w.events(t, 10); len(evs) != 10 {
		t.Fatalf("%d events", len(evs))
	}
	e.waitLog(t, "backfill done")
}

// A change the provider made without its webhook is repaired by the next
// reconciliation round.
func TestReconcileRepairsALostUpdate(t *testing.T) {
	e, fake := withFake(t, nil, func(c *service.Config) {
		c.SyncOnStart, c.ReconcileInterval, c.ReconcileMaxAge = false, 50*time.Millisecond, time.Millisecond
	})
	if _, err := fake.AddAccount(providerfake.AccountSeed{ID: "acct", User: "u", Status: "connected", ScannedAt: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e.deliver(updatedBody("acct", "u", "connected", "", time.Now().Add(-time.Hour)))
	w := e.watchGRPC(&ahv1.StreamDisconnectionsRequest{})
	if err := fake.Disconnect("acct", "auth_required", providerfake.Silently()); err != nil {
		t.Fatal(err)
	}
	ev := w.events(t, 1)[0]
	if ev.GetAccountId() != "acct" || ev.GetKind() != ahv1.TransitionKind_TRANSITION_KIND_DISCONNECTED || ev.GetErrorCode() != "auth_required" {
		t.Errorf("event %v", ev)
	}
	events := &ahv1.ListAccountEventsResponse{}
	if code := e.callGRPC("ListAccountEvents", &ahv1.ListAccountEventsRequest{AccountId: "acct"}, events); code != codes.OK {
		t.Fatal(code)
	}
	if last := events.GetEvents()[len(events.GetEvents())-1]; last.GetActor() != refresh.Actor {
		t.Errorf("repairing entry %v", last)
	}
}

// A lean accounts.failed leaves the account unconfirmed; fetching it
// tells the truth: here the login did succeed in the end.
func TestLeanFailureIsConfirmed(t *testing.T) {
	e, fake := withFake(t, nil, func(c *service.Config) {
		c.SyncOnStart, c.ReconcileInterval, c.ReconcileMaxAge = false, 50*time.Millisecond, 24*time.Hour
	})
	if _, err := fake.AddAccount(providerfake.AccountSeed{ID: "acct", User: "u", Status: "connected", ScannedAt: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e.deliver(updatedBody("acct", "u", "connected", "", time.Now().Add(-2*time.Hour)))
	w := e.watchGRPC(&ahv1.StreamDisconnectionsRequest{IncludeRecoveries: true})
	lean := []byte(`{"event":"accounts.failed","name":"t","data":{"account":"acct","user":"u","error_code":"invalid_credentials"}}`)
	if r := e.deliver(lean); r.outcome != ahv1.DeliveryOutcome_DELIVERY_OUTCOME_APPLIED {
		t.Fatalf("lean failure %v", r.outcome)
	}
	evs := w.events(t, 2)
	if evs[0].GetKind() != ahv1.TransitionKind_TRANSITION_KIND_AUTH_FAILED || evs[1].GetKind() != ahv1.TransitionKind_TRANSITION_KIND_RECOVERED {
		t.Errorf("events %s, want the failure then the recovery the fetch found", kinds(evs))
	}
	if h := e.getHealth(readers[0], "acct"); h.GetUnconfirmed() || h.GetState() != ahv1.HealthState_HEALTH_STATE_HEALTHY {
		t.Errorf("health %v", h)
	}
}

// An outage pauses reconciliation; it resumes by itself.
func TestReconcileResumesAfterAnOutage(t *testing.T) {
	e, fake := withFake(t, nil, func(c *service.Config) {
		c.SyncOnStart, c.ReconcileInterval, c.ReconcileMaxAge = false, 50*time.Millisecond, time.Millisecond
	})
	if _, err := fake.AddAccount(providerfake.AccountSeed{ID: "acct", User: "u", Status: "connected", ScannedAt: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e.deliver(updatedBody("acct", "u", "connected", "", time.Now().Add(-time.Hour)))
	fake.AddFault(providerfake.Fault{Route: "GET /v2/accounts/{id}", Status: 503})
	w := e.watchGRPC(&ahv1.StreamDisconnectionsRequest{})
	if err := fake.Disconnect("acct", "auth_required", providerfake.Silently()); err != nil {
		t.Fatal(err)
	}
	e.waitLog(t, "reconciliation paused")
	fake.ClearFaults()
	if ev := w.events(t, 1)[0]; ev.GetKind() != ahv1.TransitionKind_TRANSITION_KIND_DISCONNECTED {
		t.Errorf("event %v", ev)
	}
	e.waitLog(t, "reconciliation resumed")
}

// A fetch never overrides a newer webhook snapshot, however the two race.
func TestReconcileNeverOverridesANewerSnapshot(t *testing.T) {
	e, fake := withFake(t, nil, func(c *service.Config) { c.SyncOnStart = false })
	old := time.Now().Add(-time.Hour)
	if _, err := fake.AddAccount(providerfake.AccountSeed{ID: "acct", User: "u", Status: "error", ErrorCode: "auth_required",
		UpdatedAt: old, ConnectionUpdatedAt: old, CreatedAt: old, ScannedAt: old}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 20 {
			e.deliver(updatedBody("acct", "u", "connected", "", old.Add(time.Duration(i+1)*time.Minute)))
		}
	})
	wg.Go(func() {
		for range 20 {
			resp := &ahv1.RefreshAccountHealthResponse{}
			if code, _ := accountCalls[0].call(e, "RefreshAccountHealth", "", "acct", resp); code != codes.OK {
				t.Errorf("refresh: %s", code)
			}
		}
	})
	wg.Wait()
	h := e.getHealth(readers[0], "acct")
	newest := old.Add(20 * time.Minute)
	if h.GetState() != ahv1.HealthState_HEALTH_STATE_HEALTHY || h.GetLastSnapshotAt().AsTime().Sub(newest).Abs() > time.Millisecond {
		t.Errorf("final health %s, snapshot at %v; want the newest webhook's", h.GetState(), h.GetLastSnapshotAt().AsTime())
	}
}
