package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/accounthealth/accounthealth/client"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
)

// paddedJSON is an accounts.updated whose account object, in error, ends
// with a "pad" field: the JSON text pad, whole.
func paddedJSON(account, pad string) []byte {
	return fmt.Appendf(nil, `{"event":"accounts.updated","name":"cli-test","data":{"account":%q,"user":"user-1","resource":{"id":%q,`+
		`"updated_at":"2026-11-01T09:00:00Z","connection":{"status":"error","error_code":"auth_required","error_message":"Log in again.",`+
		`"updated_at":"2026-11-01T09:00:00Z"},"pad":%s}}}`, account, account, pad)
}

// TestLargeDeliveriesReadable: whatever deliveries the binary accepts, its
// records and timelines read through REST, the Go client and the CLI, on
// SQLite and PostgreSQL, at the default --max-body-bytes and a raised one.
// The largest delivery is one whose record and event are larger than
// gRPC's default 4 MiB receive limit: at the default cap, an array of
// zeros, which grows 5.5 times as a google.protobuf.Struct; at 8 MiB, text.
// Beside it, deliveries whose account objects hold 1 MB messages, more
// than a page of 50 takes, so pages end early.
func TestLargeDeliveriesReadable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     func(t *testing.T) []string
		largest string // the largest delivery's pad
	}{
		{"sqlite, default cap", func(*testing.T) []string { return nil }, "[" + strings.Repeat("0,", 510_000) + "0]"},
		{"postgres, default cap", func(t *testing.T) []string { return []string{"ACCOUNTHEALTH_DATABASE_URL=" + pgtest.URL(t)} },
			"[" + strings.Repeat("0,", 510_000) + "0]"},
		{"sqlite, 8 MiB cap", func(*testing.T) []string { return []string{"ACCOUNTHEALTH_MAX_BODY_BYTES=8388608"} },
			`"` + strings.Repeat("p", 8_000_000) + `"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := serve(t, t.TempDir(), tc.env(t)...)
			const largest = "acct-largest"
			s.deliver(t, paddedJSON(largest, tc.largest))
			ids := []string{largest}
			for i := range 5 {
				id := fmt.Sprintf("acct-mb-%d", i)
				s.deliver(t, paddedJSON(id, `"`+strings.Repeat("m", 1_000_000)+`"`))
				ids = append(ids, id)
			}

			// REST.
			if body := s.restBody(t, "/v1/accounts/"+largest+"/health"); len(body) < len(tc.largest) {
				t.Errorf("REST health of %s: %d bytes, less than its account object", largest, len(body))
			}
			if body := s.restBody(t, "/v1/accounts/"+largest+"/events"); len(body) < len(tc.largest) {
				t.Errorf("REST events of %s: %d bytes, less than its delivery", largest, len(body))
			}
			var pages []string
			for path := "/v1/accounts/health"; ; {
				var page struct {
					Accounts []struct {
						AccountID string `json:"accountId"`
					}
					NextPageToken string
				}
				if err := json.Unmarshal([]byte(s.restBody(t, path)), &page); err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				for _, a := range page.Accounts {
					pages = append(pages, a.AccountID)
				}
				if page.NextPageToken == "" {
					break
				}
				path = "/v1/accounts/health?pageToken=" + page.NextPageToken
			}
			if strings.Join(pages, ",") != strings.Join(ids, ",") {
				t.Errorf("REST pages: %v, want %v", pages, ids)
			}

			// The Go client.
			c, err := client.New(s.grpc)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var listed []string
			for a, err := range c.AllHealth(t.Context(), client.ListOptions{}) {
				if err != nil {
					t.Fatalf("client AllHealth: %v", err)
				}
				listed = append(listed, a.GetAccountId())
				if a.GetAccountId() == largest && proto.Size(a) <= 4<<20 {
					t.Errorf("the largest record is %d bytes, not above gRPC's default limit: the test proves nothing", proto.Size(a))
				}
			}
			if strings.Join(listed, ",") != strings.Join(ids, ",") {
				t.Errorf("client AllHealth: %v, want %v", listed, ids)
			}
			for ev, err := range c.AllEvents(t.Context(), largest, client.PageOptions{}) {
				if err != nil {
					t.Fatalf("client AllEvents: %v", err)
				}
				if proto.Size(ev) <= 4<<20 {
					t.Errorf("the largest event is %d bytes, not above gRPC's default limit", proto.Size(ev))
				}
			}

			// The CLI: the default page ends early, with the next token.
			env := []string{"ACCOUNTHEALTH_SERVER=" + s.grpc}
			runCases(t, env, []cliCase{
				{"list", []string{"health", "list"}, exitOK, []string{largest}, []string{"more accounts: --page-token "}},
				{"list all", []string{"health", "list", "--all"}, exitOK, ids, nil},
				{"events", []string{"events", largest}, exitOK, []string{"accounts.updated  APPLIED"}, nil},
			})
			if code, stdout, stderr := runBinary(t, env, "health", "get", "-o", "json", largest); code != exitOK || len(stdout) < len(tc.largest) {
				t.Errorf("health get -o json %s: exit %d, %d bytes, want the whole record\n%s", largest, code, len(stdout), stderr)
			}
		})
	}
}
