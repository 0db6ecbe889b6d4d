package service_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/accounthealth/accounthealth"
	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/store"
)

// bigDelivery is an account event with an error in data (withError), an
// account object (withResource), or both; its sizes are in bytes: the
// error message in data, the one in the object's connection, and the
// object's employer name.
type bigDelivery struct {
	event, account          string
	dataMsg, connMsg, pad   int
	at                      time.Time
	withResource, withError bool
}

func (d bigDelivery) body() []byte {
	data := map[string]any{"account": d.account, "user": "user-" + d.account}
	if d.withError {
		data["error_code"], data["error_message"] = "invalid_credentials", strings.Repeat("d", d.dataMsg)
	}
	if d.withResource {
		data["resource"] = map[string]any{
			"id": d.account, "user": "user-" + d.account, "updated_at": d.at.Format(time.RFC3339Nano),
			"employers": []string{strings.Repeat("e", d.pad)},
			"connection": map[string]any{
				"status": "error", "error_code": "auth_required", "error_message": strings.Repeat("c", d.connMsg),
				"updated_at": d.at.Format(time.RFC3339Nano),
			},
		}
	}
	b, err := json.Marshal(map[string]any{"event": d.event, "name": "accounthealth", "data": data})
	if err != nil {
		panic(err)
	}
	return b
}

// TestLargeDeliveriesPaged is the reproduction: five deliveries with
// 1 MB error messages broke the default page, and 30 KB messages pages of
// 200, with "received message larger than max" as a 429. Now records keep
// a cut message, pages end early by bytes with a next page token, and
// every page reads over REST and over gRPC with gRPC's default 4 MiB
// receive limit; together the pages return every account, and every
// event, once.
func TestLargeDeliveriesPaged(t *testing.T) {
	for _, s := range storeKinds {
		t.Run(s.name, func(t *testing.T) { testLargeDeliveriesPaged(t, s.open(t)) })
	}
}

func testLargeDeliveriesPaged(t *testing.T, st store.Store) {
	e := start(t, st)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	const mb = 1_000_000
	var want []string
	deliver := func(d bigDelivery) {
		e.deliver(d.body())
		if !slices.Contains(want, d.account) {
			want = append(want, d.account)
		}
	}
	// Five accounts.failed with 1 MB messages in data, and five
	// accounts.updated with 1 MB messages in the account object, which
	// the snapshot keeps.
	for i := range 5 {
		deliver(bigDelivery{event: "accounts.failed", account: fmt.Sprintf("a-data-%d", i), dataMsg: mb, withError: true, at: at})
		deliver(bigDelivery{event: "accounts.updated", account: fmt.Sprintf("b-conn-%d", i), connMsg: mb, withResource: true, at: at})
	}
	// 200 accounts with 30 KB messages in both.
	for i := range 200 {
		deliver(bigDelivery{event: "accounts.failed", account: fmt.Sprintf("c-30kb-%03d", i), dataMsg: 30_000, connMsg: 30_000,
			withError: true, withResource: true, at: at})
	}
	// One account's timeline of six 900 KB deliveries.
	timeline := "d-timeline"
	for i := range 6 {
		deliver(bigDelivery{event: "accounts.updated", account: timeline, pad: 900_000, withResource: true, at: at.Add(time.Duration(i) * time.Minute)})
	}

	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) {
			for _, size := range []int32{0, 200, store.MaxPageSize} {
				var got []string
				pages := 0
				req := &ahv1.ListAccountHealthRequest{PageSize: size}
				for {
					resp := &ahv1.ListAccountHealthResponse{}
					if code := r.call(e, "ListAccountHealth", req, resp); code != codes.OK {
						t.Fatalf("ListAccountHealth(page size %d, page %d): %s", size, pages+1, code)
					}
					pages++
					for _, a := range resp.GetAccounts() {
						got = append(got, a.GetAccountId())
						if n := len(a.GetErrorMessage()); n > health.MaxMessageBytes+200 {
							t.Errorf("%s: error message of %d bytes, want it cut to about %d", a.GetAccountId(), n, health.MaxMessageBytes)
						}
					}
					if resp.GetNextPageToken() == "" {
						break
					}
					if len(resp.GetAccounts()) == 0 {
						t.Fatalf("ListAccountHealth(page size %d): page %d is empty but has a next page token", size, pages)
					}
					req.PageToken = resp.GetNextPageToken()
				}
				if !slices.Equal(got, slices.Sorted(slices.Values(want))) {
					t.Errorf("ListAccountHealth(page size %d): %d accounts in %d pages, want each of %d once, in order", size, len(got), pages, len(want))
				}
				// 205 accounts: the default page of 50 holds at most one
				// of 1 MB; 30 KB accounts fill 1 MiB with about 17.
				if minPages := 10; pages < minPages {
					t.Errorf("ListAccountHealth(page size %d): %d pages, want at least %d, ended by bytes", size, pages, minPages)
				}
			}

			var seqs []int64
			pages := 0
			req := &ahv1.ListAccountEventsRequest{AccountId: timeline, PageSize: store.MaxPageSize}
			for {
				resp := &ahv1.ListAccountEventsResponse{}
				if code := r.call(e, "ListAccountEvents", req, resp); code != codes.OK {
					t.Fatalf("ListAccountEvents(page %d): %s", pages+1, code)
				}
				pages++
				for _, ev := range resp.GetEvents() {
					seqs = append(seqs, ev.GetSequence())
				}
				if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
					break
				}
			}
			// Two 900 KB deliveries pass 1 MiB: one to a page.
			if len(seqs) != 6 || pages != 6 || !slices.IsSorted(seqs) || len(slices.Compact(slices.Clone(seqs))) != 6 {
				t.Errorf("ListAccountEvents: sequences %v in %d pages, want 6 increasing ones, one to a page", seqs, pages)
			}
		})
	}
}

// TestMaxBodyBytesBounded: serve takes a delivery cap up to the one whose
// responses gRPC can still frame, and refuses a larger one by name.
func TestMaxBodyBytesBounded(t *testing.T) {
	cfg := service.DefaultConfig()
	cfg.WebhookSecrets = []string{fixtureSecret}
	cfg.MaxBodyBytes = accounthealth.MaxBodyBytesLimit
	if err := cfg.Validate(); err != nil {
		t.Fatalf("max-body-bytes at the limit: %v", err)
	}
	cfg.MaxBodyBytes++
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "max-body-bytes: 16777217 is too large") {
		t.Errorf("max-body-bytes above the limit: %v, want it refused by name", err)
	}
}
