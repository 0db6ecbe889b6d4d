package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// testCheckClean: a store that only its own methods wrote is clean,
// corrections and redeliveries included; records derived under older
// rules are reported until rebuilt.
func testCheckClean(t *testing.T, open Opener) {
	ds := rebuildHistory()
	s, _ := ingestUnderOlderRules(t, open, ds)
	decode := decoderOf(ds)
	if r, err := s.Check(t.Context(), store.CheckOptions{Decode: decode}); err != nil || len(r.Problems) != 1 || !strings.Contains(r.Problems[0].What, "rebuild them") {
		t.Errorf("Check before the rebuild = %+v, %v; want the older rules reported", r, err)
	}
	if _, err := s.Rebuild(t.Context(), store.RebuildOptions{Decode: decode}); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	// A redelivery of the failure that carries the account object:
	// counted on its original, confirming the account.
	i := slices.IndexFunc(ds, func(d store.Delivery) bool { return d.Decoded.AccountID == accountID(5) && d.Decoded.Snapshot != nil })
	if res := ingestDeliveries(t, s, ds[i:i+1]); res[0].Outcome != health.OutcomeDuplicate {
		t.Fatalf("redelivery of %s: %+v, want DUPLICATE", ds[i].Decoded.Event, res[0])
	}

	var reports []store.CheckReport
	r, err := s.Check(t.Context(), store.CheckOptions{Decode: decode, BatchSize: 3,
		Progress: func(r store.CheckReport) { reports = append(reports, r) }})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	entries := 0
	for i := 1; i <= 7; i++ {
		entries += len(allEntries(t, s, accountID(i), 0))
	}
	if !r.Clean() || !r.Done || r.Accounts != 7 || r.Total != 7 || r.Entries != entries || r.Changes != len(allChanges(t, s)) {
		t.Errorf("Check = %+v; want clean, 7 accounts, %d entries, every change", r, entries)
	}
	if len(reports) != 4 || !reports[len(reports)-1].Done {
		t.Errorf("progress reports %+v; want one per batch of 3 and one at the end, done", reports)
	}
}

// committed is a delivery's Seq and change, as ingesting the damage
// cases' history gave them.
type committed struct {
	seq    int64
	change *store.Change
}

// committedOf finds the delivery of event to account in that history.
type committedOf func(account int, event string) committed

// damageCase is one kind of damage done to a store behind its back:
// damage returns the statements that do it, the account the problem
// names and a part of what it must say.
type damageCase struct {
	name   string
	damage func(t *testing.T, of committedOf, changes []store.Change) (stmts []string, account, want string)
}

var damageCases = []damageCase{
	{"record tampered", func(_ *testing.T, of committedOf, _ []store.Change) ([]string, string, string) {
		// A column no count reads, so that the damage is the record's
		// alone whether Tamper fires the triggers (SQLite) or not.
		return []string{fmt.Sprintf("UPDATE records SET error_message = 'tampered' WHERE account_id = '%s'", accountID(2))},
			accountID(2), "the record stored differs from the one its log derives"
	}},
	{"entry deleted with its change", func(_ *testing.T, of committedOf, _ []store.Change) ([]string, string, string) {
		c := of(4, "accounts.connected")
		return []string{fmt.Sprintf("DELETE FROM changes WHERE entry_seq = %d", c.seq), fmt.Sprintf("DELETE FROM entries WHERE seq = %d", c.seq)},
			accountID(4), "the record stored differs"
	}},
	{"entry deleted under its change", func(_ *testing.T, of committedOf, _ []store.Change) ([]string, string, string) {
		c := of(4, "accounts.connected")
		return []string{fmt.Sprintf("DELETE FROM entries WHERE seq = %d", c.seq)},
			accountID(4), fmt.Sprintf("the change's entry %d is missing", c.seq)
	}},
	{"body unreadable", func(_ *testing.T, of committedOf, _ []store.Change) ([]string, string, string) {
		return []string{fmt.Sprintf("UPDATE entries SET body = NULL WHERE seq = %d", of(5, "accounts.failed").seq)},
			accountID(5), "the entry's body no longer decodes"
	}},
	{"change moved to an older entry", func(t *testing.T, of committedOf, changes []store.Change) ([]string, string, string) {
		last, previous := changes[len(changes)-1], changes[len(changes)-2]
		// The removal through the API, to the account's first entry
		// (which made no change): older than the previous change's.
		first := of(7, "accounts.added")
		if first.change != nil || first.seq >= previous.EntrySeq || last.AccountID != accountID(7) {
			t.Fatalf("the history no longer has the shape this case needs: first entry %+v, changes %+v", first, changes)
		}
		return []string{fmt.Sprintf("UPDATE changes SET entry_seq = %d WHERE seq = %d", first.seq, last.Seq)},
			accountID(7), "the change log is out of commit order"
	}},
	{"counts tampered", func(_ *testing.T, _ committedOf, _ []store.Change) ([]string, string, string) {
		return []string{fmt.Sprintf("UPDATE record_counts SET n = n + 1 WHERE state = %d AND error_code = ''", health.StateHealthy)},
			"", fmt.Sprintf("Summary's count of records in state %d with error code \"\"", health.StateHealthy)
	}},
	{"freshness counts tampered", func(_ *testing.T, _ committedOf, _ []store.Change) ([]string, string, string) {
		return []string{fmt.Sprintf("UPDATE freshness_counts SET n = n + 1 WHERE freshness = %d", health.FreshnessUnknown)},
			"", fmt.Sprintf("Summary's count of records of freshness %d", health.FreshnessUnknown)
	}},
	{"record of an account the log never named", func(_ *testing.T, of committedOf, _ []store.Change) ([]string, string, string) {
		return []string{fmt.Sprintf("UPDATE records SET account_id = 'ghost' WHERE account_id = '%s'", accountID(3))},
			"ghost", "the log holds no entry of the account"
	}},
}

// testCheckFindsDamage: each kind of damage done to a store behind its
// back is reported, naming the account.
func testCheckFindsDamage(t *testing.T, newDB Factory) {
	for _, tc := range damageCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkFindsDamage(t, newDB, tc)
		})
	}
}

// checkFindsDamage does tc's damage to a clean store and checks that
// Check reports it.
func checkFindsDamage(t *testing.T, newDB Factory, tc damageCase) {
	db := newDB(t)
	s := db.opener(t)(store.Options{})
	ds := rebuildHistory()
	// As serve does at start: a new store's records follow the
	// current rules from then on.
	if _, err := s.Rebuild(t.Context(), store.RebuildOptions{Decode: decoderOf(ds)}); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	res := ingestDeliveries(t, s, ds)
	of := func(account int, event string) committed {
		for i, d := range ds {
			if d.Decoded.AccountID == accountID(account) && d.Decoded.Event == event {
				return committed{res[i].EntrySeq, res[i].Change}
			}
		}
		t.Fatalf("no %s of account %d in the history", event, account)
		return committed{}
	}
	decode := decoderOf(ds)
	if r, err := s.Check(t.Context(), store.CheckOptions{Decode: decode}); err != nil || !r.Clean() {
		t.Fatalf("Check before the damage = %+v, %v; want clean", r, err)
	}
	stmts, account, want := tc.damage(t, of, allChanges(t, s))
	db.Tamper(t, stmts...)

	r, err := s.Check(t.Context(), store.CheckOptions{Decode: decode})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	found := false
	for _, p := range r.Problems {
		found = found || (p.AccountID == account && strings.Contains(p.What, want))
	}
	if !found || r.Found != len(r.Problems) {
		t.Errorf("Check after %v found %d: %v; want one of account %s saying %q", stmts, r.Found, r.Problems, account, want)
	}
	one, err := s.Check(t.Context(), store.CheckOptions{Decode: decode, MaxProblems: 1})
	if err != nil || len(one.Problems) != 1 || one.Found != r.Found {
		t.Errorf("Check with MaxProblems 1 = %+v, %v; want 1 problem listed of %d found", one, err, r.Found)
	}
}

// testRedeliveryAfterRebuiltDuplicate: a failure logged twice under older
// rules, whose second copy the current rules take for a redelivery, is
// rebuilt to DUPLICATE; a replay counts such an entry as never logged, so
// a later copy must be judged against the first, as a replay judges it,
// not against the copy rebuilt away. Here the account object arrived
// between the two (in time), so the later copy is a redelivery of the
// first only.
func testRedeliveryAfterRebuiltDuplicate(t *testing.T, open Opener) {
	a, u := accountID(1), userID(1)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	older := Deliveries(added(a, u, at(0)), failed(a, u, "invalid_mfa", at(5)), failed(a, u, "invalid_mfa", at(1)))
	s, _ := ingestUnderOlderRules(t, open, older)
	decode := decoderOf(older)
	if p, err := s.Rebuild(t.Context(), store.RebuildOptions{Decode: decode}); err != nil || p.Outcomes == 0 {
		t.Fatalf("Rebuild = %+v, %v; want the second failure's outcome rewritten", p, err)
	}
	later := Deliveries(updatedError(a, u, "invalid_mfa", at(3)), removed(a, u, at(4)), failed(a, u, "invalid_mfa", at(6)))
	res := ingestDeliveries(t, s, later)
	if got := res[2].Outcome; got != health.OutcomeDuplicate {
		t.Errorf("the later copy of the failure: %s; want DUPLICATE (a redelivery of the first, as a replay has it)", got)
	}
	all := append(slices.Clone(older), later...)
	if r, err := s.Check(t.Context(), store.CheckOptions{Decode: decoderOf(all)}); err != nil || !r.Clean() {
		t.Errorf("Check = %+v, %v; want clean", r, err)
	}
}
