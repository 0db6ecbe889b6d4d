package service_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

// TestItemOutage: accounts of one item failing on the provider's side
// together start an outage: by its one ITEM_OUTAGE_BEGAN event every
// account of the item waits for the platform; the provider's report that
// the item is healthy ends it, with one ITEM_OUTAGE_ENDED event, after a
// REMEDY_RESTORED event for the account the user must fix. The other item
// is left alone.
func TestItemOutage(t *testing.T) {
	e := start(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // a bound on a hang, not a wait
	defer cancel()
	stream, err := ahv1.NewAccountHealthServiceClient(e.conn).StreamDisconnections(ctx, &ahv1.StreamDisconnectionsRequest{
		Items: []string{"item_a", "item_b"}, IncludeItemEvents: true, IncludeRecoveries: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil { // the opening heartbeat
		t.Fatal(err)
	}
	now := time.Now()
	for n := range 10 {
		e.deliver(onItem("item_a", fmt.Sprintf("a-%d", n), "connected", "", now.Add(-time.Hour)))
	}
	for n := range 3 {
		e.deliver(onItem("item_b", fmt.Sprintf("b-%d", n), "connected", "", now.Add(-time.Hour)))
	}
	e.deliver(onItem("item_a", "a-9", "error", "auth_required", now.Add(-time.Minute)))
	for n := range 6 {
		e.deliver(onItem("item_a", fmt.Sprintf("a-%d", n), "error", "platform_unavailable", now))
	}

	// until reads events up to the first of kind, counting each kind.
	counts := map[ahv1.TransitionKind]int{}
	until := func(kind ahv1.TransitionKind) *ahv1.DisconnectionEvent {
		t.Helper()
		for {
			msg, err := stream.Recv()
			if err != nil {
				t.Fatalf("waiting for %v: %v (seen %v)", kind, err, counts)
			}
			ev := msg.GetEvent()
			if ev == nil {
				continue
			}
			if ev.GetItem() != "item_a" {
				t.Errorf("an event of item %q: %v", ev.GetItem(), ev)
			}
			counts[ev.GetKind()]++
			if ev.GetKind() == kind {
				return ev
			}
		}
	}
	began := until(ahv1.TransitionKind_TRANSITION_KIND_ITEM_OUTAGE_BEGAN)
	if began.GetAccountId() != "" || counts[ahv1.TransitionKind_TRANSITION_KIND_DEGRADED] < 5 {
		t.Errorf("outage began: %v after %v; want an item-wide event after at least 5 degraded accounts (the threshold)", began, counts)
	}
	for _, acct := range []string{"a-9", "a-0"} {
		if r := e.getHealth(readers[0], acct).GetRemedy(); r.GetAction() != ahv1.RemedyAction_REMEDY_ACTION_WAIT || r.GetLink() != nil {
			t.Errorf("%s's remedy during the outage: %v, want to wait, without Link", acct, r)
		}
	}
	var item ahv1.GetItemHealthResponse
	if code := e.callGRPC("GetItemHealth", &ahv1.GetItemHealthRequest{Item: "item_b"}, &item); code != codes.OK || item.GetItemHealth().GetStatus() != ahv1.ItemStatus_ITEM_STATUS_HEALTHY {
		t.Errorf("item_b: %v, %v; want healthy", code, &item)
	}
	if r := e.getHealth(readers[0], "b-0").GetRemedy(); r.GetAction() != ahv1.RemedyAction_REMEDY_ACTION_NONE {
		t.Errorf("b-0's remedy: %v, want none", r)
	}

	e.deliver(itemsUpdatedBody("item_a", "healthy"))
	until(ahv1.TransitionKind_TRANSITION_KIND_ITEM_OUTAGE_ENDED)
	if counts[ahv1.TransitionKind_TRANSITION_KIND_ITEM_OUTAGE_BEGAN] != 1 || counts[ahv1.TransitionKind_TRANSITION_KIND_REMEDY_RESTORED] != 1 {
		t.Errorf("events by kind: %v; want one outage began and one remedy restored (a-9's)", counts)
	}
	if r := e.getHealth(readers[0], "a-9").GetRemedy(); r.GetAction() != ahv1.RemedyAction_REMEDY_ACTION_RECONNECT {
		t.Errorf("a-9's remedy after the outage: %v, want reconnect", r)
	}
}
