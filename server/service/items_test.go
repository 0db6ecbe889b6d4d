package service_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

// onItem is updatedBody with the account object on item.
func onItem(item, account, status, code string, at time.Time) []byte {
	return bytes.Replace(updatedBody(account, "user-"+account, status, code, at), []byte(`"item":"item_1"`), []byte(`"item":"`+item+`"`), 1)
}

func itemsUpdatedBody(item, status string) []byte {
	return fmt.Appendf(nil, `{"event":"items.updated","name":"items-1","data":{"item":%q,"name":"Platform %s","status":%q,"status_details":"Next update in 1 h","features":{}}}`,
		item, item, status)
}

// TestItemHealth: six accounts of one platform failing on the provider's
// side together make it a suspected outage; another platform's report of
// issues shows as issues; both through gRPC and REST, worst first.
func TestItemHealth(t *testing.T) {
	e := start(t, nil)
	now := time.Now()
	for n := range 10 {
		e.deliver(onItem("item_a", fmt.Sprintf("a-%d", n), "connected", "", now.Add(-time.Hour)))
	}
	for n := range 3 {
		e.deliver(onItem("item_b", fmt.Sprintf("b-%d", n), "connected", "", now.Add(-time.Hour)))
	}
	for n := range 6 {
		e.deliver(onItem("item_a", fmt.Sprintf("a-%d", n), "error", "platform_unavailable", now))
	}
	e.deliver(itemsUpdatedBody("item_b", "issues"))

	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) {
			var got ahv1.GetItemHealthResponse
			if code := r.call(e, "GetItemHealth", &ahv1.GetItemHealthRequest{Item: "item_a"}, &got); code != codes.OK {
				t.Fatalf("GetItemHealth: %v", code)
			}
			a := got.GetItemHealth()
			if a.GetStatus() != ahv1.ItemStatus_ITEM_STATUS_SUSPECTED_OUTAGE || a.GetAccounts() != 10 || a.GetRecentFailures() != 6 || a.GetReported() != nil {
				t.Errorf("item_a = %v; want a suspected outage of 10 accounts, 6 failing", a)
			}
			if c := a.GetByState()[ahv1.HealthState_HEALTH_STATE_DEGRADED-1]; c.GetState() != ahv1.HealthState_HEALTH_STATE_DEGRADED || c.GetCount() != 6 {
				t.Errorf("item_a's degraded accounts: %v, want 6", c)
			}

			var list ahv1.ListItemHealthResponse
			if code := r.call(e, "ListItemHealth", &ahv1.ListItemHealthRequest{PageSize: 1}, &list); code != codes.OK || len(list.GetItems()) != 1 || list.GetNextPageToken() == "" {
				t.Fatalf("ListItemHealth page 1: %v, %v", code, &list)
			}
			first := list.GetItems()[0]
			if code := r.call(e, "ListItemHealth", &ahv1.ListItemHealthRequest{PageSize: 1, PageToken: list.GetNextPageToken()}, &list); code != codes.OK || len(list.GetItems()) != 1 {
				t.Fatalf("ListItemHealth page 2: %v, %v", code, &list)
			}
			second := list.GetItems()[0]
			if first.GetItem() != "item_a" || second.GetItem() != "item_b" || second.GetStatus() != ahv1.ItemStatus_ITEM_STATUS_ISSUES ||
				second.GetReported().GetStatus() != "issues" || second.GetReported().GetName() != "Platform item_b" {
				t.Errorf("ListItemHealth = %v, %v; want item_a's outage, then item_b's reported issues", first, second)
			}
			if list.GetNextPageToken() != "" {
				t.Errorf("a third page after two items")
			}

			var outages ahv1.ListItemHealthResponse
			req := &ahv1.ListItemHealthRequest{Statuses: []ahv1.ItemStatus{ahv1.ItemStatus_ITEM_STATUS_SUSPECTED_OUTAGE, ahv1.ItemStatus_ITEM_STATUS_OUTAGE}}
			if code := r.call(e, "ListItemHealth", req, &outages); code != codes.OK || len(outages.GetItems()) != 1 || outages.GetItems()[0].GetItem() != "item_a" {
				t.Errorf("ListItemHealth of outages: %v, %v", code, &outages)
			}

			var accounts ahv1.ListAccountHealthResponse
			if code := r.call(e, "ListAccountHealth", &ahv1.ListAccountHealthRequest{Item: "item_b"}, &accounts); code != codes.OK || len(accounts.GetAccounts()) != 3 {
				t.Fatalf("ListAccountHealth of item_b: %v, %d accounts", code, len(accounts.GetAccounts()))
			}
			for _, acct := range accounts.GetAccounts() {
				if acct.GetItem() != "item_b" {
					t.Errorf("account %s of item_b is on %q", acct.GetAccountId(), acct.GetItem())
				}
			}

			if code := r.call(e, "GetItemHealth", &ahv1.GetItemHealthRequest{Item: "item_unknown"}, &ahv1.GetItemHealthResponse{}); code != codes.NotFound {
				t.Errorf("GetItemHealth of an unknown item = %v, want NotFound", code)
			}
			for _, req := range []*ahv1.ListItemHealthRequest{{PageToken: "junk"}, {PageSize: 501}} {
				if code := r.call(e, "ListItemHealth", req, &ahv1.ListItemHealthResponse{}); code != codes.InvalidArgument {
					t.Errorf("ListItemHealth(%v) = %v, want InvalidArgument", req, code)
				}
			}
		})
	}
}
