package outbound

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

func TestTypeOf(t *testing.T) {
	for _, tc := range []struct {
		kind  health.Kind
		state health.State
		want  string
	}{
		{health.KindDisconnected, health.StateDisconnected, TypeDisconnected},
		{health.KindAuthFailed, health.StateAuthFailed, TypeAuthFailed},
		{health.KindDegraded, health.StateDegraded, TypeDegraded},
		{health.KindRemoved, health.StateRemoved, TypeRemoved},
		{health.KindRecovered, health.StateHealthy, TypeRecovered},
		{health.KindCorrected, health.StateDisconnected, TypeDisconnected},
		{health.KindCorrected, health.StateAuthFailed, TypeAuthFailed},
		{health.KindCorrected, health.StateDegraded, TypeDegraded},
		{health.KindCorrected, health.StateRemoved, TypeRemoved},
		{health.KindCorrected, health.StateHealthy, TypeRecovered},
		{health.KindRemedyRestored, health.StateDisconnected, TypeRemedyRestored},
		{health.KindItemOutageBegan, health.StateUnknown, TypeItemOutageBegan},
		{health.KindItemOutageEnded, health.StateUnknown, TypeItemOutageEnded},
		{health.KindFreshnessLost, health.StateHealthy, TypeDataStale},
		{health.KindFreshnessRestored, health.StateHealthy, TypeDataFresh},
		{health.KindCorrected, health.StateConnecting, ""},
		{health.KindUnspecified, health.StateHealthy, ""},
	} {
		got, err := TypeOf(health.Transition{Kind: tc.kind, State: tc.state})
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("TypeOf(%v to %v) = %q, %v; want %q", tc.kind, tc.state, got, err, tc.want)
		}
	}
}

func TestNew(t *testing.T) {
	at := time.Date(2026, 12, 2, 6, 0, 0, 123000000, time.FixedZone("x", 3600))
	c := store.Change{Seq: 42, EntrySeq: 7, Event: health.EventAccountsUpdated, AccountID: "acc_1", UserID: "usr_1", Item: "item_000077001",
		Transition: health.Transition{
			Kind: health.KindCorrected, PreviousState: health.StateHealthy, State: health.StateDisconnected,
			ErrorCode: "auth_required", ErrorMessage: "bad \xff byte",
			Remedy:     health.Remedy{Action: health.ActionReconnect, Message: "Ask the user to reconnect.", LinkAccountID: "acc_1", LinkUserID: "usr_1"},
			OccurredAt: at,
		}}
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != IDOf(42) || m.Type != TypeDisconnected || m.Seq != 42 || m.AccountID != "acc_1" || m.Item != "item_000077001" || m.ItemWide() || !m.Timestamp.Equal(at) {
		t.Fatalf("message = %+v", m)
	}
	want := `{"type":"account.disconnected","timestamp":"2026-12-02T05:00:00.123Z","data":{"cursor":"` + m.ID[len(IDPrefix):] +
		`","account_id":"acc_1","user_id":"usr_1","item":"item_000077001","kind":"CORRECTED","corrected":true,"previous_state":"HEALTHY","state":"DISCONNECTED",` +
		`"error_code":"auth_required","error_message":"bad ` + "\ufffd" + ` byte","remedy":{"action":"RECONNECT","message":"Ask the user to reconnect.",` +
		`"link_account_id":"acc_1","link_user_id":"usr_1"},"occurred_at":"2026-12-02T05:00:00.123Z","entry_sequence":7,"event_type":"accounts.updated"}}`
	if string(m.Body) != want {
		t.Fatalf("body\n got %s\nwant %s", m.Body, want)
	}
	if !json.Valid(m.Body) {
		t.Fatal("body is not JSON")
	}
	item, err := New(store.Change{Seq: 43, Item: "item_000077001", Transition: health.Transition{Kind: health.KindItemOutageBegan, OccurredAt: at}})
	if err != nil || !item.ItemWide() || item.Type != TypeItemOutageBegan || item.AccountID != "" {
		t.Fatalf("item-wide message %+v, %v", item, err)
	}
	stale, err := New(store.Change{Seq: 44, AccountID: "acc_1", UserID: "usr_1", Transition: health.Transition{
		Kind: health.KindFreshnessLost, PreviousState: health.StateHealthy, State: health.StateHealthy,
		Freshness: health.FreshnessSyncFailed, PreviousFreshness: health.FreshnessFresh, FailedDatasets: []string{"paystubs"}, OccurredAt: at,
	}})
	if err != nil || stale.Type != TypeDataStale ||
		!strings.Contains(string(stale.Body), `"freshness":"SYNC_FAILED","previous_freshness":"FRESH","failed_datasets":["paystubs"]`) {
		t.Fatalf("freshness message %+v (%s), %v", stale, stale.Body, err)
	}
	if strings.Contains(string(m.Body), "freshness") {
		t.Fatalf("a transition out of HEALTHY tells a freshness: %s", m.Body)
	}
	if _, err := New(store.Change{Seq: 1}); err == nil {
		t.Fatal("New accepted a change with no transition kind")
	}
}

func TestSeqOf(t *testing.T) {
	for _, seq := range []int64{1, 127, 128, 1 << 40} {
		if got, err := SeqOf(IDOf(seq)); err != nil || got != seq {
			t.Errorf("SeqOf(IDOf(%d)) = %d, %v", seq, got, err)
		}
	}
	for _, id := range []string{"", "msg_", "msg_AQ", "evt_" + IDOf(1)[len(IDPrefix):], IDOf(1) + "x"} {
		if _, err := SeqOf(id); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("SeqOf(%q) = %v, want ErrInvalidArgument", id, err)
		}
	}
}
