package postgres

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
	"github.com/accounthealth/accounthealth/server/store/storetest"
)

// flip is the i-th delivery for account n: failed and connected in turn,
// each a transition, so that every delivery appends a change.
func flip(n, i int) store.Delivery {
	acct := fmt.Sprintf("0190a1e3-%04x-7c12-8e55-6b2d9f0c1a11", n)
	user := fmt.Sprintf("0190a1e2-%04x-7b41-9f2e-1d7c3a4b5e60", n)
	at := time.Date(2026, 10, 6, 8, 30, 51, 0, time.UTC).Add(time.Duration(i) * time.Minute)
	e := storetest.Event{Event: health.EventAccountsConnected, AccountID: acct, UserID: user, ReceivedAt: at,
		Resource: &storetest.Resource{Status: health.ConnectionConnected, UpdatedAt: at, ScannedAt: at}}
	if i%2 == 0 {
		e.Event, e.ErrorCode, e.ErrorMessage = health.EventAccountsFailed, "invalid_mfa", "The MFA code was wrong."
		e.Resource = &storetest.Resource{Status: health.ConnectionError, ErrorCode: e.ErrorCode, UpdatedAt: at}
	}
	return e.Delivery()
}

// TestCursorSeesEveryChange is the property streams rely on: a reader that
// follows the log with ReadChanges(after the last Seq it saw), while
// writers commit concurrently, sees every change exactly once. Without the
// append lock (see Ingest) it fails: writers take Seqs in one order and
// commit in another, and the reader moves past Seqs whose commit is late
// (TestNaiveCursorSkips shows how).
func TestCursorSeesEveryChange(t *testing.T) {
	s := openURL(t, pgtest.URL(t))
	const writers, perWriter = 8, 60
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i, k := 0, 0; i < perWriter; k++ {
				ds := make([]store.Delivery, min(1+k%2, perWriter-i)) // batches of 1 and 2
				for j := range ds {
					ds[j] = flip(w, i+j)
				}
				if _, err := s.Ingest(t.Context(), ds); err != nil {
					t.Errorf("writer %d: Ingest: %v", w, err)
					return
				}
				i += len(ds)
			}
		})
	}
	go func() { wg.Wait(); close(done) }()

	var seen []store.Change
	after := int64(0)
	read := func() int {
		page, err := s.ReadChanges(t.Context(), after, store.MaxPageSize)
		if err != nil {
			t.Fatalf("ReadChanges(%d): %v", after, err)
		}
		for _, c := range page {
			after = max(after, c.Seq)
		}
		seen = append(seen, page...)
		return len(page)
	}
	reads := 0
	for running := true; running; reads++ {
		select {
		case <-done:
			running = false
		default:
		}
		read()
	}
	for read() > 0 {
	}
	if t.Failed() {
		return
	}

	var log []store.Change
	for after := int64(0); ; {
		page, err := s.ReadChanges(t.Context(), after, store.MaxPageSize)
		if err != nil {
			t.Fatalf("ReadChanges: %v", err)
		}
		if len(page) == 0 {
			break
		}
		log = append(log, page...)
		after = page[len(page)-1].Seq
	}
	if len(log) != writers*perWriter {
		t.Fatalf("the log holds %d changes, want %d", len(log), writers*perWriter)
	}
	seqs := func(cs []store.Change) []int64 {
		out := make([]int64, len(cs))
		for i, c := range cs {
			out[i] = c.Seq
		}
		return out
	}
	if got, want := seqs(seen), seqs(log); !slices.Equal(got, want) {
		var missed []int64
		for _, seq := range want {
			if !slices.Contains(got, seq) {
				missed = append(missed, seq)
			}
		}
		t.Errorf("the reader saw %d changes in %d reads, the log holds %d; missed %v", len(got), reads, len(want), missed)
	}
	t.Logf("%d changes, %d reads", len(log), reads)
}

// TestNaiveCursorSkips shows the trap on a bare table with an identity:
// Seqs are taken at insert, commits happen in another order, and a cursor
// that trusts the highest Seq it saw skips a row for good.
func TestNaiveCursorSkips(t *testing.T) {
	ctx, databaseURL := t.Context(), pgtest.URL(t)
	conns := make([]*pgx.Conn, 3)
	for i := range conns {
		c, err := pgx.Connect(ctx, databaseURL)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		conns[i] = c
	}
	reader := conns[2]
	mustExec(t, reader, `CREATE TABLE naive_log (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY)`)
	readAfter := func(after int64) []int64 {
		rows, _ := reader.Query(ctx, `SELECT seq FROM naive_log WHERE seq > $1 ORDER BY seq`, after)
		seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return seqs
	}

	slow, fast := conns[0], conns[1]
	mustExec(t, slow, `BEGIN`)
	mustExec(t, slow, `INSERT INTO naive_log DEFAULT VALUES`) // Seq 1
	mustExec(t, fast, `INSERT INTO naive_log DEFAULT VALUES`) // Seq 2, committed at once
	seen := readAfter(0)                                      // [2]: the cursor moves to 2
	mustExec(t, slow, `COMMIT`)                               // Seq 1 is visible, below the cursor
	seen = append(seen, readAfter(seen[len(seen)-1])...)
	if all := readAfter(0); !slices.Equal(all, []int64{1, 2}) || !slices.Equal(seen, []int64{2}) {
		t.Fatalf("the log holds %v and the cursor saw %v; want [1 2] and [2]", all, seen)
	}
}

// TestIngestWaitsForAppendLock: while another transaction holds this log's
// append lock, as an ingest on another replica does, an Ingest takes no
// Seq; it proceeds once that transaction has committed.
func TestIngestWaitsForAppendLock(t *testing.T) {
	ctx, databaseURL := t.Context(), pgtest.URL(t)
	s := openURL(t, databaseURL)
	other, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer other.Close(context.Background())
	mustExec(t, other, `BEGIN`)
	mustExec(t, other, lockSQL, appendLockClass, int32(s.logID))

	ingested := make(chan error, 1)
	go func() {
		_, err := s.Ingest(ctx, []store.Delivery{flip(1, 0)})
		ingested <- err
	}()
	select {
	case err := <-ingested:
		t.Fatalf("Ingest returned (%v) while another transaction held the append lock", err)
	case <-time.After(300 * time.Millisecond):
	}
	mustExec(t, other, `COMMIT`)
	select {
	case err := <-ingested:
		if err != nil {
			t.Fatalf("Ingest: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ingest still waits after the lock was released")
	}
}

func mustExec(t *testing.T, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
