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
	w := e.watchGRPC(&ahv1.StreamDisconnectionsRequest{})
	if r := e.deliver(leanBody("accounts.updated", "acct", "user-acct")); r.outcome != ahv1.DeliveryOutcome_DELIVERY_OUTCOME_UNCONFIRMED {
		t.Fatalf("outcome %s", r.outcome)
	}
	// The fetch's answer disconnects the account: the stream tells.
	if ev := w.events(t, 1)[0]; ev.GetKind() != ahv1.TransitionKind_TRANSITION_KIND_DISCONNECTED {
		t.Fatalf("event %v", ev)
	}
	h := e.getHealth(readers[0], "acct")
	if h.GetUnconfirmed() || h.GetErrorCode() != "auth_required" || h.GetLastSnapshot() == nil {
		t.Errorf("confirmed health = %v", h)
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
