package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/health"
)

// onItemJSON is updatedJSON with the account object on item.
func onItemJSON(item, account, status, code string, at time.Time) []byte {
	return withFields(updatedJSON(account, "user-"+account, status, code, at), `"item":"`+item+`"`)
}

// withFields adds fields to the account object of a delivery made by
// updatedJSON, e.g. `"availability":{"paystubs":{"status":"sync_failed"}}`.
func withFields(delivery []byte, fields string) []byte {
	return bytes.Replace(delivery, []byte(`"resource":{`), []byte(`"resource":{`+fields+`,`), 1)
}

// TestWebhooksItemsSync: 70 items in use make three items.updated
// subscriptions (30, 30, 10), and running again changes nothing; an item
// whose accounts are all removed is not subscribed to, nor are the other
// subscriptions touched.
func TestWebhooksItemsSync(t *testing.T) {
	p := startProvider(t, nil)
	s := serve(t, t.TempDir())
	now := time.Now()
	for n := range 70 {
		if code := s.post(t, onItemJSON(fmt.Sprintf("item_%09d", n), fmt.Sprintf("acct-%d", n), "connected", "", now)); code != 200 {
			t.Fatalf("delivery %d: %d", n, code)
		}
	}
	s.post(t, onItemJSON("item_gone", "acct-gone", "connected", "", now))
	s.post(t, []byte(`{"event":"accounts.removed","name":"t","data":{"account":"acct-gone","user":"user-acct-gone"}}`))
	p.webhooks(t, exitOK, nil, "create", "--url", hooksURL)

	sync := []string{"items", "sync", "--url", hooksURL, "--server", s.grpc}
	stdout, _ := p.webhooks(t, exitOK, nil, sync...)
	if !strings.Contains(stdout, "70 items in use, in 3 items.updated subscriptions: 0 kept, 3 created, 0 deleted") {
		t.Errorf("first sync said:\n%s", stdout)
	}
	itemSubs := func() (ids []string, sizes []int) {
		listed := map[string]bool{}
		for _, w := range p.subscriptions(t) {
			if !slices.Equal(w.Events, []string{health.EventItemsUpdated}) {
				continue
			}
			ids, sizes = append(ids, w.ID), append(sizes, len(w.Config.Items))
			for _, it := range w.Config.Items {
				if listed[it] || it == "item_gone" {
					t.Errorf("item %s listed twice, or though unused", it)
				}
				listed[it] = true
			}
		}
		slices.Sort(sizes)
		return ids, sizes
	}
	ids, sizes := itemSubs()
	if fmt.Sprint(sizes) != "[10 30 30]" || len(p.subscriptions(t)) != 4 {
		t.Fatalf("items.updated subscriptions of %v items, %d in all; want 10, 30 and 30 beside the account one", sizes, len(p.subscriptions(t)))
	}

	stdout, _ = p.webhooks(t, exitOK, nil, sync...)
	if !strings.Contains(stdout, "70 items in use, in 3 items.updated subscriptions: 3 kept, 0 created, 0 deleted") {
		t.Errorf("second sync said:\n%s", stdout)
	}
	if again, _ := itemSubs(); !slices.Equal(again, ids) {
		t.Errorf("the second sync changed the subscriptions: %v, then %v", ids, again)
	}
}

// TestItemOutageEndToEnd: through the binary, six accounts of one item
// failing on the platform's side together make one ITEM_OUTAGE_BEGAN
// event, by which the item's accounts wait (health get says so), and the
// provider's report of the item healthy one ITEM_OUTAGE_ENDED, after the
// logged-out account's REMEDY_RESTORED; the other item's accounts are
// left alone.
func TestItemOutageEndToEnd(t *testing.T) {
	s := serve(t, t.TempDir())
	conn, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), streamWait) // a bound on a hang, not a wait
	defer cancel()
	stream, err := ahv1.NewAccountHealthServiceClient(conn).StreamDisconnections(ctx, &ahv1.StreamDisconnectionsRequest{IncludeItemEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil { // the opening heartbeat
		t.Fatal(err)
	}
	now := time.Now()
	for n := range 8 {
		s.post(t, onItemJSON("item_down", fmt.Sprintf("down-%d", n), "connected", "", now.Add(-time.Hour)))
		s.post(t, onItemJSON("item_fine", fmt.Sprintf("fine-%d", n), "connected", "", now.Add(-time.Hour)))
	}
	s.post(t, onItemJSON("item_down", "down-7", "error", "auth_required", now.Add(-time.Minute)))
	s.post(t, onItemJSON("item_fine", "fine-7", "error", "auth_required", now.Add(-time.Minute)))
	for n := range 6 {
		s.post(t, onItemJSON("item_down", fmt.Sprintf("down-%d", n), "error", "platform_unavailable", now))
	}

	counts := map[string]int{} // by kind and item
	until := func(kind ahv1.TransitionKind) {
		t.Helper()
		for {
			msg, err := stream.Recv()
			if err != nil {
				t.Fatalf("waiting for %v: %v (seen %v)", kind, err, counts)
			}
			if ev := msg.GetEvent(); ev != nil {
				counts[enumName(ev.GetKind())+" "+ev.GetItem()]++
				if ev.GetKind() == kind {
					return
				}
			}
		}
	}
	until(ahv1.TransitionKind_TRANSITION_KIND_ITEM_OUTAGE_BEGAN)
	getEnv := []string{"ACCOUNTHEALTH_SERVER=" + s.grpc}
	if code, out, errOut := runBinary(t, getEnv, "health", "get", "down-7"); code != exitOK || !strings.Contains(out, "WAIT: The account's payroll platform (item_down) has an outage") {
		t.Errorf("health get down-7 during the outage: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runBinary(t, getEnv, "health", "get", "fine-7"); code != exitOK || !strings.Contains(out, "RECONNECT") {
		t.Errorf("health get fine-7, of the other item: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := runBinary(t, getEnv, "items", "list")
	if lines := strings.Split(out, "\n"); code != exitOK || len(lines) < 3 || !strings.HasPrefix(lines[1], "item_down  SUSPECTED_OUTAGE") || !strings.HasPrefix(lines[2], "item_fine  HEALTHY") {
		t.Errorf("items list during the outage: exit %d\n%s%s", code, out, errOut)
	}

	s.post(t, []byte(`{"event":"items.updated","name":"items","data":{"item":"item_down","name":"Down Payroll","status":"healthy","status_details":""}}`))
	until(ahv1.TransitionKind_TRANSITION_KIND_ITEM_OUTAGE_ENDED)
	want := map[string]int{
		"DISCONNECTED item_down": 1, "DISCONNECTED item_fine": 1, "DEGRADED item_down": 6,
		"ITEM_OUTAGE_BEGAN item_down": 1, "REMEDY_RESTORED item_down": 1, "ITEM_OUTAGE_ENDED item_down": 1,
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("events by kind and item: %v, want %v", counts, want)
	}
	if code, out, _ := runBinary(t, getEnv, "health", "get", "down-7"); code != exitOK || !strings.Contains(out, "RECONNECT") {
		t.Errorf("health get down-7 after the outage:\n%s", out)
	}
}
