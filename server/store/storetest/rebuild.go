package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// OlderRules play an older build whose rules differ from the current ones
// for some histories only: they call every failed login a disconnection.
var OlderRules = store.Rules{Version: 1, Apply: func(cur health.Record, d health.Delivery) health.Result {
	res := health.Apply(cur, d)
	if res.Record.State == health.StateAuthFailed {
		res.Record.State = health.StateDisconnected
		if tr := res.Transition; tr != nil {
			tr.State, tr.Kind = health.StateDisconnected, health.KindDisconnected
		}
	}
	return res
}}

// rebuildHistory is a log whose records come out different under the
// current rules for some accounts (the failed logins) and the same for
// others, with a non-account event and an API action among them.
func rebuildHistory() []store.Delivery {
	var evs []Event
	at := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	for i := 1; i <= 7; i++ {
		a, u := accountID(i), userID(i)
		evs = append(evs, added(a, u, at(i)))
		switch i {
		case 1:
			evs = append(evs, failed(a, u, "invalid_mfa", at(20)))
		case 2:
			evs = append(evs, connected(a, u, at(20)), paystubsAdded(a, u, at(21)))
		case 3:
			evs = append(evs, connected(a, u, at(20)), updatedError(a, u, "auth_required", at(21)))
		case 4:
			evs = append(evs, failed(a, u, "invalid_credentials", at(20)), connected(a, u, at(21)))
		case 5:
			evs = append(evs, failedWithResource(a, u, "system_error", at(20)))
		case 6:
			evs = append(evs, connected(a, u, at(20)), removed(a, u, at(21)))
		case 7:
			evs = append(evs, failed(a, u, "invalid_mfa", at(20)), failed(a, u, "mfa_timeout", at(22)))
		}
	}
	evs = append(evs, usersFullySynced(userID(1), at(30)))
	ds := Deliveries(evs...)
	// A deletion through our API, recorded as the removal it causes.
	ds = append(ds, store.Delivery{Source: store.SourceAPI, Actor: "token:support", Name: "delete-failed-account",
		Body:    []byte(`{"action":"delete-failed-account","account":"` + accountID(1) + `"}`),
		Decoded: health.Delivery{Event: health.EventAccountsRemoved, AccountID: accountID(7), UserID: userID(7), ReceivedAt: at(40)}})
	return ds
}

// decoderOf decodes entries back into the deliveries ds committed, as a
// service's decoder reads bodies.
func decoderOf(ds []store.Delivery) func(store.Entry) (health.Delivery, error) {
	byBody := map[[32]byte]health.Delivery{}
	for _, d := range ds {
		byBody[sha256.Sum256(d.Body)] = d.Decoded
	}
	return func(e store.Entry) (health.Delivery, error) {
		d, ok := byBody[sha256.Sum256(e.Body)]
		if !ok {
			return health.Delivery{}, fmt.Errorf("entry %d: body unknown to the test", e.Seq)
		}
		d.ReceivedAt = e.ReceivedAt
		return d, nil
	}
}

// replayRules derives the records ds lead to under rules (no redeliveries
// among them).
func replayRules(rules store.Rules, ds []store.Delivery) map[string]health.Record {
	recs := map[string]health.Record{}
	for _, d := range ds {
		id := d.Decoded.AccountID
		if res := rules.Apply(recs[id], d.Decoded); res.Record.State != health.StateUnknown {
			recs[id] = res.Record
		}
	}
	return recs
}

// ingestUnderOlderRules commits ds with OlderRules and reopens the
// database with the current ones.
func ingestUnderOlderRules(t *testing.T, open Opener, ds []store.Delivery) (store.Store, []store.Change) {
	t.Helper()
	old := open(store.Options{Rules: OlderRules})
	ingestDeliveries(t, old, ds)
	before := allChanges(t, old)
	if err := old.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s := open(store.Options{})
	if d, err := s.Derivation(t.Context()); err != nil || d.RulesVersion >= health.RulesVersion {
		t.Fatalf("Derivation = %+v, %v; want rules older than %d before the rebuild", d, err, health.RulesVersion)
	}
	return s, before
}

// wantRebuilt checks the records against the current rules, and the change
// log: the changes from before, unchanged, then one correction for every
// account whose state or error code the current rules derive differently.
func wantRebuilt(t *testing.T, s store.Store, ds []store.Delivery, before []store.Change) {
	t.Helper()
	oldRecs, newRecs := replayRules(OlderRules, ds), replayRules(store.CurrentRules(), ds)
	for id, want := range newRecs {
		wantNoDiff(t, "record of "+id, want, mustGetHealth(t, s, id))
	}
	all := allChanges(t, s)
	if len(all) < len(before) {
		t.Fatalf("the change log shrank from %d to %d", len(before), len(all))
	}
	wantNoDiff(t, "changes from before the rebuild", before, all[:len(before)])
	corrected := map[string]store.Change{}
	for _, c := range all[len(before):] {
		if c.Kind != health.KindCorrected {
			t.Errorf("change %d after the rebuild is %v, want CORRECTED", c.Seq, c.Kind)
		}
		if _, dup := corrected[c.AccountID]; dup {
			t.Errorf("account %s corrected twice", c.AccountID)
		}
		corrected[c.AccountID] = c
	}
	for id, want := range newRecs {
		old := oldRecs[id]
		c, ok := corrected[id]
		differs := old.State != want.State || old.ErrorCode != want.ErrorCode
		switch {
		case differs && !ok:
			t.Errorf("account %s went from %v %q to %v %q without a correction", id, old.State, old.ErrorCode, want.State, want.ErrorCode)
		case !differs && ok:
			t.Errorf("account %s corrected though its state stayed %v %q: %+v", id, want.State, want.ErrorCode, c)
		case ok && (c.PreviousState != old.State || c.State != want.State || c.ErrorCode != want.ErrorCode || c.Remedy != want.Remedy || c.UserID != want.UserID):
			t.Errorf("correction of %s: %+v; want %v -> %v %q with the record's remedy", id, c.Transition, old.State, want.State, want.ErrorCode)
		case ok:
			entries := allEntries(t, s, id, 0)
			last := entries[len(entries)-1]
			if last.Source != store.SourceRebuild || last.Event != store.EventRebuilt || last.Change == nil || last.Change.Seq != c.Seq {
				t.Errorf("timeline of %s ends with %+v, want the correction entry of change %d", id, last, c.Seq)
			}
		}
	}
	if len(corrected) == 0 {
		t.Error("the history corrected nothing: the test proves nothing")
	}
	if d, err := s.Derivation(t.Context()); err != nil || d != (store.Derivation{RulesVersion: health.RulesVersion}) {
		t.Errorf("Derivation = %+v, %v; want rules version %d, no rebuild under way", d, err, health.RulesVersion)
	}
}

func testRebuildUnderNewRules(t *testing.T, open Opener) {
	ds := rebuildHistory()
	s, before := ingestUnderOlderRules(t, open, ds)
	var reports []store.RebuildProgress
	p, err := s.Rebuild(t.Context(), store.RebuildOptions{Decode: decoderOf(ds), BatchSize: 3,
		Progress: func(p store.RebuildProgress) { reports = append(reports, p) }})
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	if !p.Done || p.Skipped || p.Resumed || p.Accounts != 7 || p.Total != 7 || p.Undecodable != 0 || p.Corrections == 0 || p.Changed < p.Corrections {
		t.Errorf("Rebuild = %+v; want 7 accounts done, some corrected", p)
	}
	if len(reports) < 3 || !reports[len(reports)-1].Done {
		t.Errorf("progress reports %+v; want one per batch of 3, the last done", reports)
	}
	wantRebuilt(t, s, ds, before)

	// Done: again is nothing, forced again changes nothing.
	after := allChanges(t, s)
	if p, err := s.Rebuild(t.Context(), store.RebuildOptions{Decode: decoderOf(ds)}); err != nil || !p.Skipped {
		t.Errorf("second Rebuild = %+v, %v; want skipped", p, err)
	}
	if p, err := s.Rebuild(t.Context(), store.RebuildOptions{Decode: decoderOf(ds), Force: true}); err != nil || p.Changed != 0 || p.Corrections != 0 || p.Accounts != 7 {
		t.Errorf("forced Rebuild = %+v, %v; want 7 accounts, nothing changed", p, err)
	}
	wantNoDiff(t, "changes after rebuilding again", after, allChanges(t, s))

	// The log goes on from where it was.
	r := ingest(t, s, connected(accountID(5), userID(5), t0.Add(time.Hour)))[0]
	if r.Change == nil || r.Change.Kind != health.KindRecovered || r.Change.Seq <= after[len(after)-1].Seq {
		t.Errorf("ingest after the rebuild: %+v, want a recovery after the corrections", r)
	}
}

func testRebuildResumes(t *testing.T, open Opener) {
	ds := rebuildHistory()
	s, before := ingestUnderOlderRules(t, open, ds)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// Interrupted once the first batch is committed.
	_, err := s.Rebuild(ctx, store.RebuildOptions{Decode: decoderOf(ds), BatchSize: 2, Progress: func(store.RebuildProgress) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Rebuild: %v, want context.Canceled", err)
	}
	d, err := s.Derivation(t.Context())
	if err != nil || d.RulesVersion >= health.RulesVersion || d.RebuildVersion != health.RulesVersion || d.RebuiltUntil != accountID(2) {
		t.Fatalf("Derivation after the interruption = %+v, %v; want a rebuild to %d under way after %s", d, err, health.RulesVersion, accountID(2))
	}
	p, err := s.Rebuild(t.Context(), store.RebuildOptions{Decode: decoderOf(ds), BatchSize: 2})
	if err != nil || !p.Resumed || p.Accounts != 5 {
		t.Fatalf("resumed Rebuild = %+v, %v; want the 5 accounts left", p, err)
	}
	wantRebuilt(t, s, ds, before)
}

func testRebuildConcurrently(t *testing.T, open Opener) {
	ds := rebuildHistory()
	s, before := ingestUnderOlderRules(t, open, ds)
	// Two processes (here: two stores on one database) start together.
	stores := []store.Store{s, open(store.Options{})}
	var wg sync.WaitGroup
	results := make([]store.RebuildProgress, len(stores))
	for i, st := range stores {
		wg.Go(func() {
			p, err := st.Rebuild(t.Context(), store.RebuildOptions{Decode: decoderOf(ds), BatchSize: 1})
			if err != nil {
				t.Errorf("Rebuild %d: %v", i, err)
			}
			results[i] = p
		})
	}
	wg.Wait()
	if n := results[0].Accounts + results[1].Accounts; n != 7 || !results[0].Done || !results[1].Done {
		t.Errorf("Rebuilds = %+v; want 7 accounts between them, both done", results)
	}
	wantRebuilt(t, s, ds, before)
}

// rulesBeforeMessageCut play a build of before rules version 4, which kept
// the whole of an error message reported in data.
var rulesBeforeMessageCut = store.Rules{Version: 3, Apply: func(cur health.Record, d health.Delivery) health.Result {
	res := health.Apply(cur, d)
	if res.Record.ErrorMessage != "" && d.ErrorMessage != "" {
		res.Record.ErrorMessage = d.ErrorMessage
		if res.Transition != nil {
			res.Transition.ErrorMessage = d.ErrorMessage
		}
	}
	return res
}}

// testRebuildCutsMessages: records that kept a whole long message keep
// its first health.MaxMessageBytes once rebuilt, with no correction
// (neither state nor code changed), and the log keeps the delivery whole.
func testRebuildCutsMessages(t *testing.T, open Opener) {
	acct := accountID(1)
	long := failed(acct, userID(1), "invalid_mfa", t0)
	long.ErrorMessage = strings.Repeat("m", 3*health.MaxMessageBytes)
	ds := Deliveries(added(acct, userID(1), t0.Add(-time.Minute)), long)
	old := open(store.Options{Rules: rulesBeforeMessageCut})
	ingestDeliveries(t, old, ds)
	if got := mustGetHealth(t, old, acct).ErrorMessage; got != long.ErrorMessage {
		t.Fatalf("under the old rules the message is %d bytes, want the whole %d", len(got), len(long.ErrorMessage))
	}
	if err := old.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s := open(store.Options{})
	p, err := s.Rebuild(t.Context(), store.RebuildOptions{Decode: decoderOf(ds)})
	if err != nil || p.Changed != 1 || p.Corrections != 0 {
		t.Fatalf("Rebuild = %+v, %v; want one record changed, no correction", p, err)
	}
	rec := mustGetHealth(t, s, acct)
	wantNoDiff(t, "rebuilt record", replayRules(store.CurrentRules(), ds)[acct], rec)
	if !strings.HasPrefix(rec.ErrorMessage, long.ErrorMessage[:health.MaxMessageBytes]) || len(rec.ErrorMessage) >= len(long.ErrorMessage) {
		t.Errorf("rebuilt message of %d bytes, want the first %d and a marker", len(rec.ErrorMessage), health.MaxMessageBytes)
	}
	if entries := allEntries(t, s, acct, 0); !bytes.Equal(entries[1].Body, ds[1].Body) {
		t.Error("the log no longer holds the delivery whole")
	}
}
