package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/storetest"
)

func TestTransientCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int
		want bool
	}{
		{"busy", sqlite3.SQLITE_BUSY, true},
		{"busy snapshot", sqlite3.SQLITE_BUSY_SNAPSHOT, true},
		{"locked", sqlite3.SQLITE_LOCKED, true},
		{"nomem", sqlite3.SQLITE_NOMEM, true},
		{"ioerr", sqlite3.SQLITE_IOERR, true},
		{"ioerr write", sqlite3.SQLITE_IOERR_WRITE, true},
		{"ioerr fsync", sqlite3.SQLITE_IOERR_FSYNC, true},
		{"full", sqlite3.SQLITE_FULL, true},
		{"cantopen", sqlite3.SQLITE_CANTOPEN, true},
		{"protocol", sqlite3.SQLITE_PROTOCOL, true},
		{"readonly recovery", sqlite3.SQLITE_READONLY_RECOVERY, true},
		{"readonly cantlock", sqlite3.SQLITE_READONLY_CANTLOCK, true},
		{"readonly cantinit", sqlite3.SQLITE_READONLY_CANTINIT, true},
		{"readonly: a write on the query-only pool", sqlite3.SQLITE_READONLY, false},
		{"readonly dbmoved", sqlite3.SQLITE_READONLY_DBMOVED, false},
		{"constraint", sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, false},
		{"syntax or missing table", sqlite3.SQLITE_ERROR, false},
		{"corrupt", sqlite3.SQLITE_CORRUPT, false},
		{"interrupt: the caller gave up", sqlite3.SQLITE_INTERRUPT, false},
		{"mismatch", sqlite3.SQLITE_MISMATCH, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := transientCode(tc.code); got != tc.want {
				t.Errorf("transientCode(%d) = %v, want %v", tc.code, got, tc.want)
			}
		})
	}
}

// TestRealErrors: the driver's own errors, as the database library returns
// them, come out as the store promises.
func TestRealErrors(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), dir, store.Options{})
	s = storetest.Opened(t, s, err)

	// A bug: a query on a table that does not exist.
	_, err = s.w.ExecContext(t.Context(), "UPDATE no_such_table SET x = 1")
	if err = s.guard.Fail("test", err); err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a missing table: %v, want an error that is not store.ErrUnavailable", err)
	}

	// Another process holds the write lock: Ping's heartbeat waits the
	// busy timeout out, then fails as a retry can fix.
	other, err := sql.Open("sqlite", filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Ping under another process's write lock: %v, want store.ErrUnavailable", err)
	}
	// Reads go on: WAL readers do not wait for writers.
	if _, err := s.LastChangeSeq(t.Context()); err != nil {
		t.Errorf("LastChangeSeq under another process's write lock: %v", err)
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping once the lock is released: %v", err)
	}
}
