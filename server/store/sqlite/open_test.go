package sqlite

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/accounthealth/accounthealth/server/store"
)

func TestMigrateIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatalf("loadMigrations: %v", err)
	}
	for open := range 2 {
		s, err := Open(t.Context(), dir, store.Options{})
		if err != nil {
			t.Fatalf("Open #%d: %v", open+1, err)
		}
		if err := migrate(t.Context(), s.w); err != nil {
			t.Errorf("migrating again: %v", err)
		}
		var n int
		if err := s.w.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatalf("count migrations: %v", err)
		}
		if n != len(ms) {
			t.Errorf("after Open #%d: %d migrations recorded, want %d", open+1, n, len(ms))
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

// TestOpenRefusesNewerSchema: a binary must not write to a schema it does
// not know, e.g. after a rollback.
func TestOpenRefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), dir, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	_, err = s.w.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999999, '999999_future.sql', 0)`)
	if err != nil {
		t.Fatalf("insert: %v", err)
	}
	// Another binary migrated the database past this one: not ready.
	if err := s.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Errorf("Ping after a newer migration: %v, want a schema version error", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s, err = Open(t.Context(), dir, store.Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open of a newer schema succeeded")
	}
	if !strings.Contains(err.Error(), "newer than this binary") {
		t.Errorf("Open: %v, want a schema version error", err)
	}
}

// TestOpenSettings: the durability and safety settings the package promises
// are the ones SQLite runs with.
func TestOpenSettings(t *testing.T) {
	s, err := Open(t.Context(), t.TempDir(), store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	for _, tc := range []struct {
		db           *sql.DB
		pragma, want string
	}{
		{s.w, "journal_mode", "wal"},
		{s.w, "synchronous", "2"}, // FULL
		{s.w, "foreign_keys", "1"},
		{s.w, "busy_timeout", busyTimeoutMS},
		{s.r, "query_only", "1"},
		{s.r, "busy_timeout", busyTimeoutMS},
	} {
		var got string
		if err := tc.db.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %s, want %s", tc.pragma, got, tc.want)
		}
	}
}
