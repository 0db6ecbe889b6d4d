package rebuild

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// TestDecode: every kind of entry the log holds decodes back into the
// delivery it was committed as.
func TestDecode(t *testing.T) {
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	object := `{"id":"acc-1","user":"user-1","updated_at":"2026-11-20T08:59:00Z","scanned_at":"2026-11-20T08:00:00Z",` +
		`"connection":{"status":"error","error_code":"auth_required","error_message":"Logged out.","updated_at":"2026-11-20T08:59:00Z"}}`
	tests := []struct {
		name  string
		entry store.Entry
		want  health.Delivery
	}{
		{
			name: "webhook",
			entry: store.Entry{Source: store.SourceWebhook, ReceivedAt: at,
				Body: []byte(`{"event":"accounts.failed","name":"s","data":{"account":"acc-1","user":"user-1","error_code":"invalid_mfa","error_message":"Wrong code."}}`)},
			want: health.Delivery{Event: health.EventAccountsFailed, AccountID: "acc-1", UserID: "user-1", ErrorCode: "invalid_mfa", ErrorMessage: "Wrong code.", ReceivedAt: at},
		},
		{
			name:  "provider refresh: the account object as an accounts.updated",
			entry: store.Entry{Source: store.SourceAPI, Event: health.EventAccountsUpdated, AccountID: "acc-1", UserID: "user-1", ReceivedAt: at, Body: []byte(object)},
			want: health.Delivery{Event: health.EventAccountsUpdated, AccountID: "acc-1", UserID: "user-1", ErrorCode: "auth_required", ErrorMessage: "Logged out.", ReceivedAt: at,
				Snapshot: &health.Snapshot{ConnectionStatus: "error", ConnectionErrorCode: "auth_required", ConnectionErrorMessage: "Logged out.",
					ConnectionUpdatedAt: time.Date(2026, 11, 20, 8, 59, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 11, 20, 8, 59, 0, 0, time.UTC),
					ScannedAt: time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC), Raw: []byte(object)}},
		},
		{
			name:  "deletion through the API: the removal it causes",
			entry: store.Entry{Source: store.SourceAPI, Event: health.EventAccountsRemoved, AccountID: "acc-1", UserID: "user-1", ReceivedAt: at, Body: []byte(`{"action":"delete-failed-account"}`)},
			want:  health.Delivery{Event: health.EventAccountsRemoved, AccountID: "acc-1", UserID: "user-1", ReceivedAt: at},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.entry)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode = %+v (snapshot %+v)\nwant     %+v (snapshot %+v)", got, got.Snapshot, tt.want, tt.want.Snapshot)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, e := range []store.Entry{
		{Seq: 7, Source: store.SourceRebuild, Body: []byte(`{}`)},
		{Seq: 8, Source: store.SourceWebhook, Body: []byte(`not json`)},
		{Seq: 9, Source: store.SourceAPI, Event: health.EventAccountsUpdated, Body: []byte(`{"id":`)},
	} {
		if _, err := Decode(e); err == nil {
			t.Errorf("entry %d (%s): decoded, want an error", e.Seq, e.Source)
		} else if e.Source == store.SourceRebuild && !strings.Contains(err.Error(), "entry 7") {
			t.Errorf("error %q does not name the entry", err)
		}
	}
}
