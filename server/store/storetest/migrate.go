package storetest

import (
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// Version2SQL writes, into a database at schema version 2, records as a
// build of rules version 2 left them, which kept no confirmation: one
// unconfirmed, one healthy, one removed. Both drivers' databases run it.
const Version2SQL = `UPDATE derivation SET rules_version = 2;
INSERT INTO records (account_id, user_id, state, error_code, error_message, remedy_action, remedy_message,
	remedy_link_account_id, remedy_link_user_id, state_since, last_event_type, last_event_at,
	consecutive_failures, ever_connected, unconfirmed, incident_state)
VALUES ('a-unconfirmed', 'u', 2, '', '', 0, '', '', '', 0, 'accounts.updated', 60000000000, 0, TRUE, TRUE, 0),
	('a-healthy', 'u', 2, '', '', 0, '', '', '', 0, 'accounts.connected', 0, 0, TRUE, FALSE, 0),
	('a-removed', 'u', 6, '', '', 7, '', '', '', 0, 'accounts.removed', 0, 0, TRUE, FALSE, 0)`

// WantMigratedFromVersion2 checks a store opened on the database that
// Version2SQL wrote: the records are kept, never confirmed as far as the
// store knows, so they are due for a fetch until a rebuild (the rules
// version says one is needed) derives their confirmation from the log.
// The counts Summary reads are filled from them (migration 0006).
func WantMigratedFromVersion2(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	wantSummaryCounted(t, s, "after the migrations")
	if sum, err := s.Summary(ctx); err != nil || sum.Total != 3 {
		t.Errorf("Summary = %+v, %v; want the 3 records counted", sum, err)
	}
	if d, err := s.Derivation(ctx); err != nil || d != (store.Derivation{RulesVersion: 2}) {
		t.Errorf("Derivation = %+v, %v; want rules version 2", d, err)
	}
	for id, unconfirmed := range map[string]bool{"a-unconfirmed": true, "a-healthy": false, "a-removed": false} {
		if rec := mustGetHealth(t, s, id); rec.Unconfirmed != unconfirmed || !rec.ConfirmedAt.IsZero() {
			t.Errorf("%s: unconfirmed %v, confirmed at %v; want %v, never", id, rec.Unconfirmed, rec.ConfirmedAt, unconfirmed)
		}
	}
	if at, ok, err := s.OldestUnconfirmed(ctx); err != nil || !ok || !at.Equal(time.Unix(60, 0)) {
		t.Errorf("OldestUnconfirmed = %v, %v, %v; want 00:01 UTC on 1 January 1970", at, ok, err)
	}
	if st, err := s.SyncState(ctx); err != nil || st != (store.SyncState{}) {
		t.Errorf("SyncState = %+v, %v; want none", st, err)
	}
	got := claim(t, s, store.DueQuery{Holder: "r1", Now: t0, ConfirmedBefore: t0, LeaseFor: time.Minute, Limit: 10})
	wantNoDiff(t, "due accounts", []store.DueAccount{{AccountID: "a-unconfirmed", Unconfirmed: true}, {AccountID: "a-healthy"}}, got)
	if rec := mustGetHealth(t, s, "a-healthy"); rec.State != health.StateHealthy {
		t.Errorf("a-healthy is %v, want HEALTHY", rec.State)
	}
}

// OutboxVersion16SQL writes, into a database at schema version 16, two
// endpoints owed the same change, each message with its body in its row,
// as builds before migration 0017 kept them; blob is the driver's literal
// of bytes in hex.
func OutboxVersion16SQL(blob func(hex string) string) string {
	body := blob("7b22736571223a377d") // {"seq":7}
	return `INSERT INTO notify_endpoints (id, url, description, filter, rate_limit, concurrency, secrets, disabled,
	disabled_reason, change_cursor, failing_since, created_at, updated_at)
VALUES ('ep', 'https://example.test/ep', '', ` + blob("7b7d") + `, 0, 1, '[]', FALSE, '', 7, NULL, 0, 0),
	('ep_other', 'https://example.test/other', '', ` + blob("7b7d") + `, 0, 1, '[]', FALSE, '', 7, NULL, 0, 0);
INSERT INTO notify_messages (endpoint_id, seq, account_id, type, body, occurred_at, status, retries, attempts,
	next_at, last_error, lease_holder, lease_until, created_at, blocked)
VALUES ('ep', 7, 'a', 'account.x', ` + body + `, 0, 1, 0, 0, 0, '', '', 0, 0, 0),
	('ep_other', 7, 'a', 'account.x', ` + body + `, 0, 1, 0, 0, 0, '', '', 0, 0, 0)`
}

// WantOutboxMigratedFromVersion16 checks a store opened on the database
// OutboxVersion16SQL wrote: both messages are claimed with their body,
// now kept once for the change.
func WantOutboxMigratedFromVersion16(t *testing.T, s store.Store) {
	t.Helper()
	if got := claimMessages(t, outboxOf(t, s), "r1", t0); diff([]int64{7, 7}, got) != "" {
		t.Errorf("claim after migrating: %v, want change 7's message to both endpoints", got)
	}
}
