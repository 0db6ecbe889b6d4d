package service_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/provider/providerfake"
	"github.com/accounthealth/accounthealth/server/refresh"
)

// An accounts.updated without the account object leaves the health
// unconfirmed; the service asks the provider and applies its answer.
func TestLeanUpdateIsConfirmedWithTheProvider(t *testing.T) {
	e, fake := withFake(t, nil)
	scanned := time.Now().Add(-time.Hour).UTC()
	if _, err := fake.AddAccount(providerfake.AccountSeed{ID: "acct", User: "user-acct", Status: "error", ErrorCode: "auth_required", ScannedAt: scanned}); err != nil {
		t.Fatal(err)
	}
	if r := e.deliver(leanBody("accounts.updated", "acct", "user-acct")); r.outcome != ahv1.DeliveryOutcome_DELIVERY_OUTCOME_UNCONFIRMED {
		t.Fatalf("outcome %s", r.outcome)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		h := e.getHealth(readers[0], "acct")
		if h.GetState() == ahv1.HealthState_HEALTH_STATE_DISCONNECTED && !h.GetUnconfirmed() {
			if h.GetErrorCode() != "auth_required" || h.GetLastSnapshot() == nil {
				t.Errorf("confirmed health = %v", h)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s unconfirmed=%v after 10s", h.GetState(), h.GetUnconfirmed())
		}
		time.Sleep(20 * time.Millisecond)
	}
	events := &ahv1.ListAccountEventsResponse{}
	if code := e.callGRPC("ListAccountEvents", &ahv1.ListAccountEventsRequest{AccountId: "acct"}, events); code != codes.OK {
		t.Fatal(code)
	}
	last := events.GetEvents()[len(events.GetEvents())-1]
	if last.GetSource() != "api" || last.GetActor() != refresh.Actor || last.GetTransition().GetKind() != ahv1.TransitionKind_TRANSITION_KIND_DISCONNECTED {
		t.Errorf("refresh entry = %v", last)
	}
}
