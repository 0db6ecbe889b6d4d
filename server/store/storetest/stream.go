package storetest

import (
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// testChangeSeqBefore: a stream that starts at a time reads after the Seq
// ChangeSeqBefore gives and sees exactly the changes that occurred since.
func testChangeSeqBefore(t *testing.T, s store.Store) {
	if seq, err := s.ChangeSeqBefore(t.Context(), t0); err != nil || seq != 0 {
		t.Fatalf("empty store: ChangeSeqBefore = %d, %v; want 0", seq, err)
	}
	var events []Event
	for i := range 5 {
		events = append(events, failed(accountID(i), userID(i), "invalid_mfa", t0.Add(time.Duration(i)*time.Minute)))
	}
	ingest(t, s, events...)
	all := allChanges(t, s)
	cases := []struct {
		at   time.Time
		want int64 // the Seq to read after
	}{
		{t0.Add(-time.Hour), all[0].Seq - 1},
		{t0, all[0].Seq - 1},
		{t0.Add(90 * time.Second), all[1].Seq},   // between the 2nd and 3rd
		{t0.Add(2 * time.Minute), all[1].Seq},    // exactly the 3rd
		{t0.Add(time.Hour), all[len(all)-1].Seq}, // after all: only new ones
	}
	for _, c := range cases {
		got, err := s.ChangeSeqBefore(t.Context(), c.at)
		if err != nil || got != c.want {
			t.Errorf("ChangeSeqBefore(t0%+v) = %d, %v; want %d", c.at.Sub(t0), got, err, c.want)
		}
	}
}

// testAPIAction: an action through our API is logged with its source and
// actor and applied like the delivery it stands for.
func testAPIAction(t *testing.T, s store.Store) {
	acct, user := accountID(1), userID(1)
	ingest(t, s, failed(acct, user, "invalid_credentials", t0))
	d := store.Delivery{
		Source: store.SourceAPI,
		Actor:  "support-tool",
		Body:   []byte(`{"action":"delete_failed_account","provider_status":204}`),
		Decoded: health.Delivery{
			Event: health.EventAccountsRemoved, AccountID: acct, UserID: user, ReceivedAt: t0.Add(time.Minute),
		},
	}
	res := ingestDeliveries(t, s, []store.Delivery{d})
	if res[0].Change == nil || res[0].Change.Kind != health.KindRemoved {
		t.Fatalf("result = %+v, want a removal change", res[0])
	}
	if got := mustGetHealth(t, s, acct); got.State != health.StateRemoved {
		t.Errorf("state = %s, want REMOVED", got.State)
	}
	entries := allEntries(t, s, acct, 2)
	last := entries[len(entries)-1]
	if last.Source != store.SourceAPI || last.Actor != "support-tool" || last.Event != health.EventAccountsRemoved || last.Change == nil {
		t.Errorf("timeline entry = %+v", last)
	}
	if entries[0].Source != store.SourceWebhook || entries[0].Actor != "" {
		t.Errorf("webhook entry = %+v", entries[0])
	}
}
