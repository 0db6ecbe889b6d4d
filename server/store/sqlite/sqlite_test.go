package sqlite_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/sqlite"
	"github.com/accounthealth/accounthealth/server/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, newStore)
}

func BenchmarkIngest(b *testing.B) {
	storetest.BenchmarkIngest(b, func(b *testing.B) store.Store { return openDir(b, b.TempDir()) })
}

func BenchmarkReads(b *testing.B) {
	storetest.BenchmarkReads(b, func(b *testing.B) store.Store { return openDir(b, b.TempDir()) })
}

func BenchmarkClaimDue(b *testing.B) {
	storetest.BenchmarkClaimDue(b, func(b *testing.B) store.Store { return openDir(b, b.TempDir()) })
}

func BenchmarkRebuild(b *testing.B) {
	storetest.BenchmarkRebuild(b, func(b *testing.B) storetest.Opener {
		dir := b.TempDir()
		return func(opts store.Options) store.Store { return openDirWith(b, dir, opts) }
	})
}

func newStore(t *testing.T) storetest.DB {
	dir := t.TempDir()
	// A connection of its own: SQLite enforces foreign keys only on
	// connections that ask.
	exec := func(t *testing.T, statements ...string) {
		db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName)+"?_busy_timeout=5000")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, q := range statements {
			if _, err := db.ExecContext(t.Context(), q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	return storetest.DB{
		Open:          func(opts store.Options) (store.Store, error) { return sqlite.Open(t.Context(), dir, opts) },
		AdvanceSchema: func(t *testing.T) { exec(t, futureMigrationSQL) },
		Tamper:        exec,
	}
}

// futureMigrationSQL records a migration no binary has.
const futureMigrationSQL = `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999999, '999999_future.sql', 0)`

// openDir opens the store in dir and closes it when the test ends, unless
// the test closed it first.
func openDir(t testing.TB, dir string) *sqlite.Store {
	t.Helper()
	return openDirWith(t, dir, store.Options{})
}

func openDirWith(t testing.TB, dir string, opts store.Options) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), dir, opts)
	return storetest.Opened(t, s, err)
}

// TestReopenKeepsEverything: what one process committed, the next one
// finds, and the log carries on from it.
func TestReopenKeepsEverything(t *testing.T) {
	ctx, dir := t.Context(), t.TempDir()
	acct, user := "0190a1e3-2b7e-7d03-a1c4-3e8f5a6b7c22", "0190a1e2-5c3d-7b41-9f2e-1d7c3a4b5e60"
	at := time.Date(2026, 10, 6, 8, 30, 51, 901122123, time.UTC)
	ds := storetest.Deliveries(
		storetest.Event{Event: health.EventAccountsFailed, AccountID: acct, UserID: user, ReceivedAt: at,
			ErrorCode: "invalid_mfa", ErrorMessage: "This user did not provide the correct multi-factor authentication response.",
			Resource: &storetest.Resource{Status: health.ConnectionError, ErrorCode: "invalid_mfa", UpdatedAt: at}},
		storetest.Event{Event: health.EventAccountsConnected, AccountID: acct, UserID: user, ReceivedAt: at.Add(time.Minute),
			Resource: &storetest.Resource{Status: health.ConnectionConnected, UpdatedAt: at.Add(time.Minute), ScannedAt: at.Add(time.Minute)}},
	)

	s := openDir(t, dir)
	first, err := s.Ingest(ctx, ds)
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	before := readAll(t, s, acct)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openDir(t, dir)
	if after := readAll(t, s, acct); !reflect.DeepEqual(before, after) {
		t.Errorf("after reopening:\n%+v\nwant\n%+v", after, before)
	}
	res, err := s.Ingest(ctx, storetest.Deliveries(storetest.Event{
		Event: health.EventAccountsUpdated, AccountID: acct, UserID: user, ReceivedAt: at.Add(time.Hour),
	}))
	if err != nil {
		t.Fatalf("Ingest after reopening: %v", err)
	}
	if res[0].EntrySeq <= first[1].EntrySeq {
		t.Errorf("entry Seq %d after reopening, want above %d", res[0].EntrySeq, first[1].EntrySeq)
	}
	if res, err = s.Ingest(ctx, ds[:1]); err != nil || res[0].Outcome != health.OutcomeDuplicate {
		t.Errorf("redelivery after reopening: %+v, %v; want DUPLICATE", res, err)
	}
}

type stored struct {
	Record  health.Record
	Entries []store.Entry
	Changes []store.Change
}

func readAll(t *testing.T, s store.Store, accountID string) stored {
	t.Helper()
	var st stored
	var err error
	if st.Record, err = s.GetHealth(t.Context(), accountID); err != nil {
		t.Fatalf("GetHealth: %v", err)
	}
	page, err := s.ListEntries(t.Context(), store.EntryQuery{AccountID: accountID, PageSize: store.MaxPageSize})
	if err != nil {
		t.Fatalf("ListEntries: %v", err)
	}
	st.Entries = page.Entries
	if st.Changes, err = s.ReadChanges(t.Context(), 0, store.MaxPageSize); err != nil {
		t.Fatalf("ReadChanges: %v", err)
	}
	if len(st.Entries) == 0 || len(st.Changes) == 0 {
		t.Fatalf("nothing stored: %+v", st)
	}
	return st
}

// TestCheckRunsSQLitesOwnChecks: Check reports what foreign_key_check
// finds, a change whose entry was deleted behind the store's back.
func TestCheckRunsSQLitesOwnChecks(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir)
	ds := storetest.Deliveries(storetest.Event{Event: health.EventAccountsFailed, AccountID: "acct-1", UserID: "user-1",
		ReceivedAt: time.Date(2026, 10, 6, 8, 30, 0, 0, time.UTC), ErrorCode: "invalid_mfa"})
	res, err := s.Ingest(t.Context(), ds)
	if err != nil || res[0].Change == nil {
		t.Fatalf("Ingest = %+v, %v; want a change", res, err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), "DELETE FROM entries WHERE seq = ?", res[0].EntrySeq); err != nil {
		t.Fatal(err)
	}
	r, err := s.Check(t.Context(), store.CheckOptions{Decode: func(store.Entry) (health.Delivery, error) { return ds[0].Decoded, nil }})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	want := fmt.Sprintf("the database's integrity check: foreign_key_check: row %d of changes refers to a row of entries that is missing", res[0].Change.Seq)
	if !slices.ContainsFunc(r.Problems, func(p store.Problem) bool { return p.What == want }) {
		t.Errorf("Check found %v; want %q", r.Problems, want)
	}
}

func BenchmarkListItemHealth(b *testing.B) {
	storetest.BenchmarkListItemHealth(b, func(b *testing.B) store.Store { return openDir(b, b.TempDir()) })
}
