package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/jsonstruct"
)

var received = time.Date(2026, 11, 12, 5, 0, 18, 0, time.UTC)

func TestDecodeDeliveries(t *testing.T) {
	const (
		account1 = "0190a1e3-0a4f-7c12-8e55-6b2d9f0c1a11"
		account2 = "0190a1e3-2b7e-7d03-a1c4-3e8f5a6b7c22"
		user     = "0190a1e2-5c3d-7b41-9f2e-1d7c3a4b5e60"

		msgInvalidMFA   = "This user did not provide the correct multi-factor authentication response."
		msgAuthRequired = "The payroll system logged the session out; the user must reconnect."
		msgExpired      = "The payroll system requires the user to reset their password."
		msgPlatform     = "The payroll platform is currently unavailable."
	)
	// snap builds the expected snapshot; an empty timestamp is zero.
	snap := func(status, code, msg, connUpdated, updated, scanned string) *health.Snapshot {
		ts := func(s string) time.Time {
			if s == "" {
				return time.Time{}
			}
			return mustTime(t, s)
		}
		return &health.Snapshot{
			ConnectionStatus:       status,
			ConnectionErrorCode:    code,
			ConnectionErrorMessage: msg,
			ConnectionUpdatedAt:    ts(connUpdated),
			UpdatedAt:              ts(updated),
			ScannedAt:              ts(scanned),
			Item:                   "item_000041078", // every fixture's account is on it
		}
	}
	recordedSnap := snap("connected", "", "",
		"2025-06-22T04:22:30.458877Z", "2025-06-22T04:22:34.111398Z", "2025-06-22T04:22:33.752978Z")
	recordedSnap.Item = "item_000029932"
	tests := []struct {
		file string
		name string // the subscription's name
		want health.Delivery
	}{
		{"deliveries/01_accounts_added.json", "health-added", health.Delivery{
			Event: "accounts.added", AccountID: account1, UserID: user,
		}},
		{"deliveries/02_accounts_connected_with_resource.json", "health-connected", health.Delivery{
			Event: "accounts.connected", AccountID: account1, UserID: user,
			Snapshot: snap("connected", "", "",
				"2026-10-05T14:02:11.381204Z", "2026-10-05T14:02:12.004511Z", "2026-10-05T14:01:40.552013Z"),
		}},
		{"deliveries/03_accounts_failed_invalid_mfa_with_resource.json", "health-failed", health.Delivery{
			Event: "accounts.failed", AccountID: account2, UserID: user,
			ErrorCode: "invalid_mfa", ErrorMessage: msgInvalidMFA,
			Snapshot: snap("error", "invalid_mfa", msgInvalidMFA,
				"2026-10-06T08:30:51.220319Z", "2026-10-06T08:30:51.901122Z", ""),
		}},
		{"deliveries/04_accounts_failed_mfa_timeout_no_resource.json", "health-failed-lean", health.Delivery{
			Event: "accounts.failed", AccountID: account2, UserID: user,
			ErrorCode: "mfa_timeout", ErrorMessage: "The multi-factor authentication request timed out.",
		}},
		{"deliveries/05_accounts_updated_auth_required.json", "health-updated", health.Delivery{
			Event: "accounts.updated", AccountID: account1, UserID: user,
			ErrorCode: "auth_required", ErrorMessage: msgAuthRequired,
			Snapshot: snap("error", "auth_required", msgAuthRequired,
				"2026-11-02T03:12:45.118762Z", "2026-11-02T03:12:45.774410Z", "2026-11-01T21:05:09.330027Z"),
		}},
		{"deliveries/06_accounts_updated_expired_credentials.json", "health-updated", health.Delivery{
			Event: "accounts.updated", AccountID: account1, UserID: user,
			ErrorCode: "expired_credentials", ErrorMessage: msgExpired,
			Snapshot: snap("error", "expired_credentials", msgExpired,
				"2026-11-09T11:40:02.004417Z", "2026-11-09T11:40:02.662085Z", "2026-11-08T22:14:57.812560Z"),
		}},
		{"deliveries/07_accounts_updated_reconnected.json", "health-updated", health.Delivery{
			Event: "accounts.updated", AccountID: account1, UserID: user,
			Snapshot: snap("connected", "", "",
				"2026-11-10T16:20:33.540981Z", "2026-11-10T16:21:04.118337Z", "2026-11-10T16:21:01.007215Z"),
		}},
		{"deliveries/08_accounts_updated_platform_unavailable.json", "health-updated", health.Delivery{
			Event: "accounts.updated", AccountID: account1, UserID: user,
			ErrorCode: "platform_unavailable", ErrorMessage: msgPlatform,
			Snapshot: snap("error", "platform_unavailable", msgPlatform,
				"2026-11-12T05:00:17.392240Z", "2026-11-12T05:00:17.950123Z", "2026-11-11T23:48:30.661902Z"),
		}},
		{"deliveries/09_accounts_updated_no_resource.json", "health-updated-lean", health.Delivery{
			Event: "accounts.updated", AccountID: account1, UserID: user,
		}},
		{"deliveries/10_accounts_removed.json", "health-removed", health.Delivery{
			Event: "accounts.removed", AccountID: account1, UserID: user,
		}},
		// The resource is a user object, not a snapshot; its id is not an
		// account id.
		{"deliveries/11_users_fully_synced.json", "health-users", health.Delivery{
			Event: "users.fully_synced", UserID: user,
		}},
		{"deliveries/12_paystubs_added_unrelated.json", "health-paystubs", health.Delivery{
			Event: "paystubs.added", AccountID: account1, UserID: user,
		}},
		{"recorded/accounts_updated_1.json", "tdooner-e2e-include-resource", health.Delivery{
			Event:     "accounts.updated",
			AccountID: "019795df-8ff4-7e82-fff1-65a22e55ac0f",
			UserID:    "019795df-86d1-be83-1338-314da2cfe660",
			Snapshot:  recordedSnap,
		}},
	}
	if n := len(fixtureFiles(t, "deliveries/*.json")); n != len(tests)-1 {
		t.Fatalf("%d files in deliveries/, %d expected by this test", n, len(tests)-1)
	}
	for _, tt := range tests {
		t.Run(path.Base(tt.file), func(t *testing.T) {
			body := readFixture(t, tt.file)
			env, err := Decode(body, received)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if env.Event != tt.want.Event || env.Name != tt.name {
				t.Errorf("Event, Name = %q, %q; want %q, %q", env.Event, env.Name, tt.want.Event, tt.name)
			}
			tt.want.ReceivedAt = received
			if tt.want.Snapshot != nil {
				s := *tt.want.Snapshot
				s.RefreshStatus, s.Datasets = refreshOf(t, body)
				tt.want.Snapshot = &s
			}
			checkDelivery(t, body, env.Delivery, tt.want)
		})
	}
}

func TestDecodeRecorded(t *testing.T) {
	events := recordedEvents(t)
	for _, file := range fixtureFiles(t, "recorded/*.json") {
		if strings.HasPrefix(path.Base(file), "account_object_") {
			continue // API responses, not deliveries: TestDecodeAccountObjects
		}
		t.Run(path.Base(file), func(t *testing.T) {
			want, ok := events[file]
			if !ok {
				t.Fatal("missing from MANIFEST.tsv")
			}
			env, err := Decode(readFixture(t, file), received)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			d := env.Delivery
			if env.Event != want || d.Event != want {
				t.Errorf("Event = %q, Delivery.Event = %q, want %q", env.Event, d.Event, want)
			}
			if env.Name == "" || d.UserID == "" {
				t.Errorf("Name = %q, UserID = %q, want both set", env.Name, d.UserID)
			}
			if isUserEvent := strings.HasPrefix(want, "users."); (d.AccountID == "") != isUserEvent {
				t.Errorf("AccountID = %q for %s", d.AccountID, want)
			}
			// Every recorded accounts.updated came from an include_resource
			// subscription of a connected sandbox account.
			if hasSnapshot := d.Snapshot != nil; hasSnapshot != (want == health.EventAccountsUpdated) {
				t.Fatalf("Snapshot present = %v for %s", hasSnapshot, want)
			}
			if s := d.Snapshot; s != nil && (s.ConnectionStatus != health.ConnectionConnected || s.UpdatedAt.IsZero() || s.ConnectionUpdatedAt.IsZero()) {
				t.Errorf("Snapshot = %s", describeSnapshot(s))
			}
		})
	}
}

// TestDecodeAccountObjects carries each recorded account object as the
// resource of an accounts.updated delivery without data.account or
// data.user, and checks the snapshot against a strict decoding of it.
func TestDecodeAccountObjects(t *testing.T) {
	for _, file := range fixtureFiles(t, "recorded/account_object_*.json") {
		t.Run(path.Base(file), func(t *testing.T) {
			body := readFixture(t, file)
			if _, err := Decode(body, received); !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode of a bare API response = %v, want %v", err, ErrMalformed)
			}
			var list struct {
				Results []json.RawMessage `json:"results"`
			}
			if err := json.Unmarshal(body, &list); err != nil {
				t.Fatal(err)
			}
			objects := list.Results
			if objects == nil {
				objects = []json.RawMessage{bytes.TrimSpace(body)}
			}
			for _, obj := range objects {
				var o struct {
					ID         string     `json:"id"`
					User       string     `json:"user"`
					Item       string     `json:"item"`
					UpdatedAt  time.Time  `json:"updated_at"`
					ScannedAt  *time.Time `json:"scanned_at"`
					Connection struct {
						Status       string    `json:"status"`
						ErrorCode    *string   `json:"error_code"`
						ErrorMessage *string   `json:"error_message"`
						UpdatedAt    time.Time `json:"updated_at"`
					} `json:"connection"`
					OngoingRefresh struct {
						Status string `json:"status"`
					} `json:"ongoing_refresh"`
					Availability map[string]*fixtureDataset `json:"availability"`
				}
				if err := json.Unmarshal(obj, &o); err != nil {
					t.Fatal(err)
				}
				want := health.Delivery{
					Event:      health.EventAccountsUpdated,
					AccountID:  o.ID,
					UserID:     o.User,
					ReceivedAt: received,
					Snapshot: &health.Snapshot{
						ConnectionStatus:       o.Connection.Status,
						ConnectionErrorCode:    deref(o.Connection.ErrorCode),
						ConnectionErrorMessage: deref(o.Connection.ErrorMessage),
						ConnectionUpdatedAt:    o.Connection.UpdatedAt.UTC(),
						UpdatedAt:              o.UpdatedAt.UTC(),
						ScannedAt:              deref(o.ScannedAt).UTC(),
						Item:                   o.Item,
						RefreshStatus:          o.OngoingRefresh.Status,
						Raw:                    obj,
					},
				}
				want.Snapshot.Datasets = datasetsOf(o.Availability)
				want.ErrorCode, want.ErrorMessage = want.Snapshot.ConnectionErrorCode, want.Snapshot.ConnectionErrorMessage
				wrapped := []byte(`{"event": "accounts.updated", "data": {"resource": ` + string(obj) + "}}")
				env, err := Decode(wrapped, received)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				checkDelivery(t, wrapped, env.Delivery, want)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	const (
		connErr = `"connection": {"status": "error", "error_code": "auth_required", "error_message": "Reconnect.", "updated_at": "2026-11-02T03:12:45.118762Z"}`
		times   = `"updated_at": "2026-11-02T03:12:45.774410Z", "scanned_at": "2026-11-01T21:05:09.330027Z"`
	)
	connUpdated := mustTime(t, "2026-11-02T03:12:45.118762Z")
	updated := mustTime(t, "2026-11-02T03:12:45.774410Z")
	scanned := mustTime(t, "2026-11-01T21:05:09.330027Z")
	tests := []struct {
		name     string
		body     string
		wantName string
		want     health.Delivery // ReceivedAt is filled in
	}{
		{
			name: "minimal",
			body: `{"event": "accounts.added", "data": {"account": "a1"}}`,
			want: health.Delivery{Event: "accounts.added", AccountID: "a1"},
		},
		{
			name: "unknown event and fields everywhere",
			body: `{"event": "accounts.renamed", "id": 7, "name": "sub", "data": {"account": "a", "extra": [1, {"x": null}],
				"resource": {"id": "a", "future": {"deep": true}, "connection": {"status": "paused", "new_field": 1}}}, "trailer": null}`,
			wantName: "sub",
			want: health.Delivery{Event: "accounts.renamed", AccountID: "a", Snapshot: &health.Snapshot{
				ConnectionStatus: "paused",
				Raw:              []byte(`{"id": "a", "future": {"deep": true}, "connection": {"status": "paused", "new_field": 1}}`),
			}},
		},
		{
			name: "nulls read as absent",
			body: `{"event": "users.fully_synced", "name": null, "data": {"account": null, "user": null, "error_code": null, "error_message": null, "resource": null}}`,
			want: health.Delivery{Event: "users.fully_synced"},
		},
		{
			name: "data null",
			body: `{"event": "users.fully_synced", "data": null}`,
			want: health.Delivery{Event: "users.fully_synced"},
		},
		{
			name: "resource not an object",
			body: `{"event": "accounts.updated", "data": {"account": "a", "resource": ["a"]}}`,
			want: health.Delivery{Event: "accounts.updated", AccountID: "a"},
		},
		{
			name: "resource exact bytes: spacing and escapes kept",
			body: `{"event":"accounts.updated","data":{"resource" :  {"id" : "a\u0062c",` + "\n\t" + `"connection":{"status":"connected"}} }}`,
			want: health.Delivery{Event: "accounts.updated", AccountID: "abc", Snapshot: &health.Snapshot{
				ConnectionStatus: "connected",
				Raw:              []byte(`{"id" : "a\u0062c",` + "\n\t" + `"connection":{"status":"connected"}}`),
			}},
		},
		{
			name: "error code in data only, no resource",
			body: `{"event": "accounts.failed", "data": {"account": "a", "user": "u", "error_code": "invalid_credentials", "error_message": "Wrong password."}}`,
			want: health.Delivery{Event: "accounts.failed", AccountID: "a", UserID: "u", ErrorCode: "invalid_credentials", ErrorMessage: "Wrong password."},
		},
		{
			name: "error in resource.connection only",
			body: `{"event": "accounts.updated", "data": {"account": "a", "user": "u", "resource": {` + connErr + `, ` + times + `}}}`,
			want: health.Delivery{Event: "accounts.updated", AccountID: "a", UserID: "u", ErrorCode: "auth_required", ErrorMessage: "Reconnect.", Snapshot: &health.Snapshot{
				ConnectionStatus: "error", ConnectionErrorCode: "auth_required", ConnectionErrorMessage: "Reconnect.",
				ConnectionUpdatedAt: connUpdated, UpdatedAt: updated, ScannedAt: scanned,
				Raw: []byte(`{` + connErr + `, ` + times + `}`),
			}},
		},
		{
			name: "data error wins over the connection's",
			body: `{"event": "accounts.failed", "data": {"account": "a", "error_code": "invalid_mfa", "error_message": "", "resource": {` + connErr + `}}}`,
			want: health.Delivery{Event: "accounts.failed", AccountID: "a", ErrorCode: "invalid_mfa", ErrorMessage: "Reconnect.", Snapshot: &health.Snapshot{
				ConnectionStatus: "error", ConnectionErrorCode: "auth_required", ConnectionErrorMessage: "Reconnect.", ConnectionUpdatedAt: connUpdated,
				Raw: []byte(`{` + connErr + `}`),
			}},
		},
		{
			name: "ids from the resource when data lacks them",
			body: `{"event": "accounts.connected", "data": {"resource": {"id": "a", "user": "u"}}}`,
			want: health.Delivery{Event: "accounts.connected", AccountID: "a", UserID: "u", Snapshot: &health.Snapshot{
				Raw: []byte(`{"id": "a", "user": "u"}`),
			}},
		},
		{
			name: "non-account event: user from the resource, no account, no snapshot",
			body: `{"event": "users.fully_synced", "data": {"resource": {"id": "u", "user": "u2", "connection": {"error_code": "x"}}}}`,
			want: health.Delivery{Event: "users.fully_synced", UserID: "u2"},
		},
		{
			name: "timestamps that do not parse read as zero",
			body: `{"event": "accounts.updated", "data": {"account": "a1", "resource": {"updated_at": "2026-11-02 03:12:45", "scanned_at": 1762053165,
				"connection": {"status": "connected", "updated_at": "yesterday"}}}}`,
			want: health.Delivery{Event: "accounts.updated", AccountID: "a1", Snapshot: &health.Snapshot{
				ConnectionStatus: "connected",
				Raw: []byte(`{"updated_at": "2026-11-02 03:12:45", "scanned_at": 1762053165,
				"connection": {"status": "connected", "updated_at": "yesterday"}}`),
			}},
		},
		{
			name: "timestamps with offsets and without fractions, normalised to UTC",
			body: `{"event": "accounts.updated", "data": {"account": "a1", "resource": {"updated_at": "2026-11-02T05:12:45.774410+02:00", "scanned_at": "2026-11-01T21:05:09Z"}}}`,
			want: health.Delivery{Event: "accounts.updated", AccountID: "a1", Snapshot: &health.Snapshot{
				UpdatedAt: updated,
				ScannedAt: time.Date(2026, 11, 1, 21, 5, 9, 0, time.UTC),
				Raw:       []byte(`{"updated_at": "2026-11-02T05:12:45.774410+02:00", "scanned_at": "2026-11-01T21:05:09Z"}`),
			}},
		},
		{
			name: "resource values of the wrong type read as absent",
			body: `{"event": "accounts.updated", "data": {"account": "a", "resource": {"id": 1, "user": ["u"], "connection": {"status": 2, "error_code": {}, "error_message": true}}}}`,
			want: health.Delivery{Event: "accounts.updated", AccountID: "a", Snapshot: &health.Snapshot{
				Raw: []byte(`{"id": 1, "user": ["u"], "connection": {"status": 2, "error_code": {}, "error_message": true}}`),
			}},
		},
		{
			name: "connection not an object reads as absent",
			body: `{"event": "accounts.updated", "data": {"account": "a1", "resource": {"connection": "connected", ` + times + `}}}`,
			want: health.Delivery{Event: "accounts.updated", AccountID: "a1", Snapshot: &health.Snapshot{
				UpdatedAt: updated, ScannedAt: scanned,
				Raw: []byte(`{"connection": "connected", ` + times + `}`),
			}},
		},
		{
			// encoding/json decodes invalid UTF-8 and lone surrogates as
			// U+FFFD; protojson refuses them, so the snapshot is re-encoded.
			name: "lone surrogates and invalid UTF-8 read as U+FFFD",
			body: "{\"event\": \"accounts.failed\", \"data\": {\"account\": \"a\", \"error_code\": \"invalid_credentials\", \"error_message\": \"Caf\\udce9\", " +
				"\"resource\": {\"employers\": [\"Caf\xe9\"], \"connection\": {\"status\": \"error\", \"error_message\": \"Caf\\udce9 \\ud83d\\ude00\"}}}}",
			want: health.Delivery{Event: "accounts.failed", AccountID: "a", ErrorCode: "invalid_credentials", ErrorMessage: "Caf\uFFFD", Snapshot: &health.Snapshot{
				ConnectionStatus: "error", ConnectionErrorMessage: "Caf\uFFFD \U0001F600",
				Raw: []byte(`{"connection":{"error_message":"Caf` + "\uFFFD \U0001F600" + `","status":"error"},"employers":["Caf` + "\uFFFD" + `"]}`),
			}},
		},
		{
			// PostgreSQL's text type refuses NUL; the snapshot keeps it.
			name:     "NUL reads as U+FFFD",
			body:     `{"event": "accounts.failed\u0000", "name": "\u0000", "data": {"account": "a", "error_message": "x\u0000y", "resource": {"connection": {"status": "error\u0000"}}}}`,
			wantName: "\uFFFD",
			want: health.Delivery{Event: "accounts.failed\uFFFD", AccountID: "a", ErrorMessage: "x\uFFFDy", Snapshot: &health.Snapshot{
				ConnectionStatus: "error\uFFFD",
				Raw:              []byte(`{"connection": {"status": "error\u0000"}}`),
			}},
		},
		{
			// Only the ids used are read: data.account wins over the
			// object's id, and data.user over its user.
			name: "unused ids of the account object are not read",
			body: `{"event": "accounts.updated", "data": {"account": "a", "user": "u", "resource": {"id": "\udc00", "user": "\ud800"}}}`,
			want: health.Delivery{Event: "accounts.updated", AccountID: "a", UserID: "u", Snapshot: &health.Snapshot{
				Raw: []byte(`{"id":"` + "\uFFFD" + `","user":"` + "\uFFFD" + `"}`),
			}},
		},
		{
			name: "ids that write U+FFFD and surrogate pairs are theirs",
			body: `{"event": "accounts.added", "data": {"account": "a\ufffd\ud83d\ude00", "user": "` + "u\uFFFD" + `"}}`,
			want: health.Delivery{Event: "accounts.added", AccountID: "a\uFFFD\U0001F600", UserID: "u\uFFFD"},
		},
		{
			name: "resource with a repeated key and a number beyond float64 re-encoded",
			body: `{"event": "accounts.updated", "data": {"resource": {"id": "a", "balance": 1e400, "connection": {"status": "error", "status": "connected"}}}}`,
			want: health.Delivery{Event: "accounts.updated", AccountID: "a", Snapshot: &health.Snapshot{
				ConnectionStatus: "connected",
				Raw:              []byte(`{"balance":"1e400","connection":{"status":"connected"},"id":"a"}`),
			}},
		},
		{
			name: "surrounding whitespace",
			body: " \r\n\t{\"event\": \"users.fully_synced\"}\n",
			want: health.Delivery{Event: "users.fully_synced"},
		},
		{
			name: "the account object names its item",
			body: `{"event": "accounts.updated", "data": {"account": "a", "resource": {"id": "a", "item": "item_000077001"}}}`,
			want: health.Delivery{Event: "accounts.updated", AccountID: "a", Snapshot: &health.Snapshot{
				Item: "item_000077001", Raw: []byte(`{"id": "a", "item": "item_000077001"}`),
			}},
		},
		{
			name: "an item of the wrong type reads as absent",
			body: `{"event": "accounts.updated", "data": {"account": "a", "resource": {"item": 77001}}}`,
			want: health.Delivery{Event: "accounts.updated", AccountID: "a", Snapshot: &health.Snapshot{
				Raw: []byte(`{"item": 77001}`),
			}},
		},
		{
			name:     "items.updated reports its item",
			body:     `{"event": "items.updated", "name": "items-1", "data": {"item": "item_000077001", "name": "Gusto", "status": "unavailable", "status_details": "Next update at 15:00 UTC", "features": {}}}`,
			wantName: "items-1",
			want: health.Delivery{Event: "items.updated", ItemReport: &health.ItemReport{
				Item: "item_000077001", Name: "Gusto", Status: "unavailable", Details: "Next update at 15:00 UTC", ReceivedAt: received,
			}},
		},
		{
			name: "items.updated with a status of the wrong type",
			body: `{"event": "items.updated", "data": {"item": "item_1", "status": {"code": 2}}}`,
			want: health.Delivery{Event: "items.updated", ItemReport: &health.ItemReport{Item: "item_1", ReceivedAt: received}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := Decode([]byte(tt.body), received)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if env.Event != tt.want.Event || env.Name != tt.wantName {
				t.Errorf("Event, Name = %q, %q; want %q, %q", env.Event, env.Name, tt.want.Event, tt.wantName)
			}
			tt.want.ReceivedAt = received
			checkDelivery(t, []byte(tt.body), env.Delivery, tt.want)
		})
	}
}

// malformedCases are bodies Decode must refuse, with the error it gives.
// For invalid JSON only the prefix is ours; encoding/json words the rest.
var malformedCases = []struct {
	name, body, want string
}{
	{"empty body", ``, `malformed delivery: body must be a JSON object`},
	{"null", `null`, `malformed delivery: body must be a JSON object`},
	{"array", `[{"event": "accounts.added"}]`, `malformed delivery: body must be a JSON object`},
	{"string", `"accounts.added"`, `malformed delivery: body must be a JSON object`},
	{"truncated", `{"event": "accounts.added", "data": {`, `malformed delivery: body is not valid JSON: `},
	{"trailing comma", `{"event": "accounts.added",}`, `malformed delivery: body is not valid JSON: `},
	{"trailing data", `{"event": "accounts.added"} {}`, `malformed delivery: body is not valid JSON: `},
	{"event missing", `{"name": "n", "data": {}}`, `malformed delivery: "event" is missing or empty`},
	{"event null", `{"event": null}`, `malformed delivery: "event" is missing or empty`},
	{"event empty", `{"event": ""}`, `malformed delivery: "event" is missing or empty`},
	{"accounts event without its account", `{"event": "accounts.failed", "data": {"user": "u1", "error_code": "invalid_mfa"}}`, `malformed delivery: "data.account" is missing or empty`},
	{"accounts event with an empty account", `{"event": "accounts.updated", "data": {"account": "", "resource": {"connection": {"status": "error"}}}}`, `malformed delivery: "data.account" is missing or empty`},
	{"items.updated without its item", `{"event": "items.updated", "data": {"status": "healthy"}}`, `malformed delivery: "data.item" is missing or empty`},
	{"items.updated with an item number", `{"event": "items.updated", "data": {"item": 7}}`, `malformed delivery: "data.item" must be a string, got number`},
	{"event number", `{"event": 1}`, `malformed delivery: "event" must be a string, got number`},
	{"name object", `{"event": "accounts.added", "name": {}}`, `malformed delivery: "name" must be a string, got object`},
	{"data array", `{"event": "accounts.added", "data": []}`, `malformed delivery: "data" must be an object, got array`},
	{"data string", `{"event": "accounts.added", "data": "a"}`, `malformed delivery: "data" must be an object, got string`},
	{"account number", `{"event": "accounts.added", "data": {"account": 5}}`, `malformed delivery: "data.account" must be a string, got number`},
	{"user bool", `{"event": "accounts.added", "data": {"user": true}}`, `malformed delivery: "data.user" must be a string, got bool`},
	{"account object", `{"event": "accounts.added", "data": {"account": {"id": "a"}}}`, `malformed delivery: "data.account" must be a string, got object`},
	{"user array", `{"event": "accounts.added", "data": {"account": "a", "user": ["u"]}}`, `malformed delivery: "data.user" must be a string, got array`},
	{"error_code object", `{"event": "accounts.failed", "data": {"error_code": {"code": "x"}}}`, `malformed delivery: "data.error_code" must be a string, got object`},
	{"error_message array", `{"event": "accounts.failed", "data": {"error_message": ["x"]}}`, `malformed delivery: "data.error_message" must be a string, got array`},
	// Ids are never repaired (see readID).
	{"account with a lone surrogate", `{"event": "accounts.failed", "data": {"account": "acct-\ud800", "error_code": "invalid_mfa"}}`,
		`malformed delivery: data.account: not valid UTF-8 (a lone surrogate escape)`},
	{"account with invalid UTF-8", "{\"event\": \"accounts.failed\", \"data\": {\"account\": \"acct-\xff\"}}",
		`malformed delivery: data.account: not valid UTF-8 (an invalid byte sequence)`},
	{"account with NUL", `{"event": "accounts.failed", "data": {"account": "a\u0000"}}`, `malformed delivery: data.account: contains NUL (\u0000)`},
	{"account too long", `{"event": "accounts.failed", "data": {"account": "` + strings.Repeat("a", 600) + `"}}`,
		`malformed delivery: data.account: 600 bytes long, over the 512 an id may have`},
	{"user with a lone surrogate", `{"event": "users.fully_synced", "data": {"user": "\udfff"}}`,
		`malformed delivery: data.user: not valid UTF-8 (a lone surrogate escape)`},
	{"account object's id with a lone surrogate", `{"event": "accounts.updated", "data": {"resource": {"id": "\ud83dx"}}}`,
		`malformed delivery: data.resource.id: not valid UTF-8 (a lone surrogate escape)`},
	{"account object's user with invalid UTF-8", "{\"event\": \"accounts.updated\", \"data\": {\"account\": \"a\", \"resource\": {\"user\": \"\xed\xa0\x80\"}}}",
		`malformed delivery: data.resource.user: not valid UTF-8 (an invalid byte sequence)`},
}

func TestDecodeMalformed(t *testing.T) {
	for _, tt := range malformedCases {
		t.Run(tt.name, func(t *testing.T) {
			env, err := Decode([]byte(tt.body), received)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode = %+v, %v; want %v", env, err, ErrMalformed)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error = %q, want %q", err, tt.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	seedCorpus(f, func(body []byte) { f.Add(body) })
	for _, tt := range malformedCases {
		f.Add([]byte(tt.body))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		body := bytes.Clone(data) // Decode's input, cleared below
		env, err := Decode(body, received)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if env.Event == "" || env.Delivery.Event != env.Event {
			t.Fatalf("Event = %q, Delivery.Event = %q", env.Event, env.Delivery.Event)
		}
		if !json.Valid(data) {
			t.Fatal("accepted invalid JSON")
		}
		d := env.Delivery
		texts := []string{env.Name, d.AccountID, d.UserID, d.ErrorCode, d.ErrorMessage, d.Event}
		if s := d.Snapshot; s != nil {
			texts = append(texts, s.ConnectionStatus, s.ConnectionErrorCode, s.ConnectionErrorMessage)
		}
		for _, s := range texts {
			if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("decoded string %q is not valid UTF-8 without NUL", s)
			}
		}
		// Ids are never repaired: U+FFFD in one was written so.
		written := bytes.Contains(data, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(data), []byte(`\ufffd`))
		if id := d.AccountID + d.UserID; strings.ContainsRune(id, utf8.RuneError) && !written {
			t.Fatalf("ids %q, %q hold U+FFFD that the body does not write", d.AccountID, d.UserID)
		}
		if s := d.Snapshot; s != nil {
			raw := bytes.Clone(s.Raw)
			clear(body)
			if !bytes.Equal(s.Raw, raw) {
				t.Fatal("Snapshot.Raw shares memory with the body")
			}
			if _, err := jsonstruct.Struct(raw); err != nil || !isObject(raw) {
				t.Fatalf("Snapshot.Raw %q does not serve: %v", raw, err)
			}
			// Kept as sent whenever that serves.
			var sent struct {
				Data struct{ Resource json.RawMessage }
			}
			_ = json.Unmarshal(data, &sent)
			if orig := sent.Data.Resource; bytes.Equal(jsonstruct.Servable(orig), orig) && !bytes.Equal(raw, orig) {
				t.Fatalf("Snapshot.Raw %q re-encodes %q, which serves as it is", raw, orig)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	body := readFixture(b, "recorded/accounts_updated_1.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(body, received); err != nil {
			b.Fatal(err)
		}
	}
}

// checkDelivery reports how got differs from want. Snapshot.Raw must be a
// servable object, equal to want's when want sets it, else copied verbatim
// from body.
func checkDelivery(t *testing.T, body []byte, got, want health.Delivery) {
	t.Helper()
	if got.Snapshot != nil {
		raw := got.Snapshot.Raw
		if !isObject(raw) || !bytes.Equal(jsonstruct.Servable(raw), raw) {
			t.Errorf("Snapshot.Raw %q is not a servable object", raw)
		}
		if want.Snapshot != nil && want.Snapshot.Raw != nil {
			if !bytes.Equal(raw, want.Snapshot.Raw) {
				t.Errorf("Snapshot.Raw = %q, want %q", raw, want.Snapshot.Raw)
			}
		} else if !bytes.Contains(body, raw) {
			t.Errorf("Snapshot.Raw %q is not copied from the body", raw)
		}
	}
	if g, w := withoutRaw(got), withoutRaw(want); !reflect.DeepEqual(g, w) {
		t.Errorf("Delivery =\n%s\nwant\n%s", describe(g), describe(w))
	}
}

// withoutRaw returns d with its snapshot copied and Raw cleared, for
// comparing the decoded facts.
func withoutRaw(d health.Delivery) health.Delivery {
	if d.Snapshot != nil {
		s := *d.Snapshot
		s.Raw = nil
		d.Snapshot = &s
	}
	return d
}

func describe(d health.Delivery) string {
	return fmt.Sprintf("{Event:%q AccountID:%q UserID:%q ErrorCode:%q ErrorMessage:%q ReceivedAt:%v Snapshot:%s ItemReport:%+v}",
		d.Event, d.AccountID, d.UserID, d.ErrorCode, d.ErrorMessage, d.ReceivedAt, describeSnapshot(d.Snapshot), d.ItemReport)
}

func describeSnapshot(s *health.Snapshot) string {
	if s == nil {
		return "nil"
	}
	return fmt.Sprintf("{Status:%q Code:%q Message:%q ConnUpdated:%v Updated:%v Scanned:%v Item:%q Refresh:%q Datasets:%v}",
		s.ConnectionStatus, s.ConnectionErrorCode, s.ConnectionErrorMessage, s.ConnectionUpdatedAt, s.UpdatedAt, s.ScannedAt, s.Item, s.RefreshStatus, s.Datasets)
}

type fixtureDataset struct {
	Status string `json:"status"`
}

// datasetsOf lists a fixture's availability as Decode should: the
// datasets with a status, by name.
func datasetsOf(availability map[string]*fixtureDataset) []health.DatasetStatus {
	var out []health.DatasetStatus
	for _, name := range slices.Sorted(maps.Keys(availability)) {
		if ds := availability[name]; ds != nil {
			out = append(out, health.DatasetStatus{Name: name, Status: ds.Status})
		}
	}
	return out
}

// refreshOf reads a delivery fixture's ongoing_refresh and availability.
func refreshOf(t *testing.T, body []byte) (string, []health.DatasetStatus) {
	t.Helper()
	var d struct {
		Data struct {
			Resource struct {
				OngoingRefresh struct {
					Status string `json:"status"`
				} `json:"ongoing_refresh"`
				Availability map[string]*fixtureDataset `json:"availability"`
			} `json:"resource"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	return d.Data.Resource.OngoingRefresh.Status, datasetsOf(d.Data.Resource.Availability)
}

// deref returns *p, or T's zero value when p is nil.
func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// TestDecodeAvailability: availability and ongoing_refresh are read
// leniently, like the rest of the object.
func TestDecodeAvailability(t *testing.T) {
	many := make([]string, 40)
	for i := range many {
		many[i] = fmt.Sprintf(`"d%02d": {"status": "synced"}`, i)
	}
	tests := []struct {
		name, resource string
		refresh        string
		want           []health.DatasetStatus
	}{
		{"statuses by name, nulls left out", `"ongoing_refresh": {"status": "disabled"}, "availability": {"shifts": null, "paystubs": {"status": "sync_failed", "updated_at": "2026-11-01T00:00:00Z"}, "gigs": {"status": "in_progress"}}`,
			"disabled", []health.DatasetStatus{{Name: "gigs", Status: "in_progress"}, {Name: "paystubs", Status: "sync_failed"}}},
		{"values of the wrong type read as absent", `"ongoing_refresh": "disabled", "availability": {"gigs": "synced", "paystubs": {"status": 3}, "identities": {"status": "synced"}}`,
			"", []health.DatasetStatus{{Name: "identities", Status: "synced"}}},
		{"availability not an object", `"ongoing_refresh": {"status": "idle"}, "availability": [1, 2]`, "idle", nil},
		{"a wrong type leaves the fields after it read", `"availability": {"gigs": 5, "shifts": {"status": [1]}, "paystubs": {"status": "sync_failed"}}, "ongoing_refresh": {"status": "disabled"}`,
			"disabled", []health.DatasetStatus{{Name: "paystubs", Status: "sync_failed"}}},
		{"new statuses kept, NUL replaced", `"availability": {"gigs": {"status": "queued\u0000"}}`, "", []health.DatasetStatus{{Name: "gigs", Status: "queued\uFFFD"}}},
		{"names beyond the bound left out", `"availability": {"` + strings.Repeat("x", 65) + `": {"status": "sync_failed"}}`, "", nil},
		{"names that are not words left out", `"availability": {"a,b": {"status": "sync_failed"}, "x\u0000": {"status": "sync_failed"}, "": {"status": "synced"}, "ok_1": {"status": "synced"}}`,
			"", []health.DatasetStatus{{Name: "ok_1", Status: "synced"}}},
		{"at most 32 datasets", `"availability": {` + strings.Join(many, ", ") + `}`, "", datasetNames(32)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"event": "accounts.updated", "data": {"account": "a1", "resource": {"id": "a1", "connection": {"status": "connected"}, ` + tt.resource + `}}}`
			env, err := Decode([]byte(body), received)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			s := env.Delivery.Snapshot
			if s.RefreshStatus != tt.refresh || !slices.Equal(s.Datasets, tt.want) {
				t.Errorf("refresh %q, datasets %v; want %q, %v", s.RefreshStatus, s.Datasets, tt.refresh, tt.want)
			}
		})
	}
}

func datasetNames(n int) []health.DatasetStatus {
	out := make([]health.DatasetStatus, n)
	for i := range out {
		out[i] = health.DatasetStatus{Name: fmt.Sprintf("d%02d", i), Status: "synced"}
	}
	return out
}
