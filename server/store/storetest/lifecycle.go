package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/store"
)

// Concurrency and the store's lifecycle: ingests at once, Close.

// writerEvents is what one writer of testConcurrentIngest sends: every one
// of them is a transition, so every delivery adds a change.
func writerEvents(w, n int) []Event {
	acct, user := accountID(w), userID(w)
	events := make([]Event, n)
	for i := range events {
		at := t0.Add(time.Duration(i) * time.Minute)
		if i%2 == 0 {
			events[i] = failedWithResource(acct, user, "invalid_mfa", at)
		} else {
			events[i] = connected(acct, user, at)
		}
	}
	return events
}

func testConcurrentIngest(t *testing.T, s store.Store) {
	const writers, perWriter = 16, 50
	results := make([][]store.Result, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			ds := Deliveries(writerEvents(w, perWriter)...)
			for len(ds) > 0 {
				n := min(1+len(results[w])%4, len(ds)) // batches of 1 to 4
				res, err := s.Ingest(t.Context(), ds[:n])
				if err != nil {
					t.Errorf("writer %d: Ingest: %v", w, err)
					return
				}
				results[w] = append(results[w], res...)
				ds = ds[n:]
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	entrySeqs := map[int64]bool{}
	changeOf := map[int64]int64{} // change Seq -> its entry's Seq
	for w, rs := range results {
		m := model{}
		want := m.apply(Deliveries(writerEvents(w, perWriter)...)...)
		prev := int64(0)
		for i, r := range rs {
			if r.Outcome != want[i].Outcome || r.Change == nil || want[i].Transition == nil {
				t.Fatalf("writer %d, delivery %d: %+v, want outcome %v with transition %+v", w, i, r, want[i].Outcome, want[i].Transition)
			}
			if entrySeqs[r.EntrySeq] {
				t.Errorf("writer %d, delivery %d: EntrySeq %d given twice", w, i, r.EntrySeq)
			}
			entrySeqs[r.EntrySeq] = true
			if _, dup := changeOf[r.Change.Seq]; dup || r.Change.Seq <= prev {
				t.Errorf("writer %d, delivery %d: change Seq %d repeated or not above %d", w, i, r.Change.Seq, prev)
			}
			changeOf[r.Change.Seq], prev = r.EntrySeq, r.Change.Seq
		}
		acct := accountID(w)
		wantNoDiff(t, "record "+acct, m[acct], mustGetHealth(t, s, acct))
		if n := len(allEntries(t, s, acct, store.MaxPageSize)); n != perWriter {
			t.Errorf("account %s: %d entries, want %d", acct, n, perWriter)
		}
	}

	log := allChanges(t, s)
	if len(log) != writers*perWriter {
		t.Fatalf("change log holds %d changes, want %d", len(log), writers*perWriter)
	}
	for i, c := range log {
		if i > 0 && c.Seq <= log[i-1].Seq {
			t.Errorf("change log: Seq %d after %d", c.Seq, log[i-1].Seq)
		}
		if e, ok := changeOf[c.Seq]; !ok || e != c.EntrySeq {
			t.Errorf("change log: Seq %d of entry %d was not reported by Ingest", c.Seq, c.EntrySeq)
		}
	}
}

func testClosed(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err := s.Ingest(ctx, Deliveries(failed(accountID(1), userID(1), "invalid_mfa", t0)))
	wantErr(t, "Ingest", err, store.ErrClosed)
	_, err = s.GetHealth(ctx, accountID(1))
	wantErr(t, "GetHealth", err, store.ErrClosed)
	_, err = s.ListHealth(ctx, store.HealthQuery{})
	wantErr(t, "ListHealth", err, store.ErrClosed)
	_, err = s.Summary(ctx)
	wantErr(t, "Summary", err, store.ErrClosed)
	_, err = s.ListEntries(ctx, store.EntryQuery{AccountID: accountID(1)})
	wantErr(t, "ListEntries", err, store.ErrClosed)
	_, err = s.ReadChanges(ctx, 0, 10)
	wantErr(t, "ReadChanges", err, store.ErrClosed)
	_, err = s.LastChangeSeq(ctx)
	wantErr(t, "LastChangeSeq", err, store.ErrClosed)
	_, err = s.SyncState(ctx)
	wantErr(t, "SyncState", err, store.ErrClosed)
	wantErr(t, "SaveSyncState", s.SaveSyncState(ctx, store.SyncState{}), store.ErrClosed)
	_, err = s.ClaimDue(ctx, store.DueQuery{Holder: "r1", Now: t0, LeaseFor: time.Minute, Limit: 1})
	wantErr(t, "ClaimDue", err, store.ErrClosed)
	_, _, err = s.OldestUnconfirmed(ctx)
	wantErr(t, "OldestUnconfirmed", err, store.ErrClosed)
	wantErr(t, "Ping", s.Ping(ctx), store.ErrClosed)
	wantErr(t, "Close", s.Close(), store.ErrClosed)
}
