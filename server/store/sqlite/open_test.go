package sqlite

import (
	"database/sql"
	"testing"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/storetest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	ms, err := schema.Migrations()
	if err != nil {
		t.Fatalf("Migrations: %v", err)
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
		{s.w, "temp_store", "2"}, // MEMORY
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

// TestMigrateFromRulesVersion1: a database written by a build before the
// second migration keeps its records, learns which incidents were open,
// and says its records follow rules version 1, so they get rebuilt.
func TestMigrateFromRulesVersion1(t *testing.T) {
	dir := t.TempDir()
	writeSchemaVersion(t, dir, 1, `
		INSERT INTO records VALUES ('a-disconnected', 'u', 4, 'auth_required', '', 2, '', '', '', 0, 'accounts.updated', 0, 0, 1, 0, 1, NULL, NULL);
		INSERT INTO records VALUES ('a-reconnecting', 'u', 1, '', '', 1, '', '', '', 0, 'accounts.updated', 0, 0, 1, 0, 1, NULL, NULL);
		INSERT INTO records VALUES ('a-healthy', 'u', 2, '', '', 0, '', '', '', 0, 'accounts.connected', 0, 0, 1, 0, 0, NULL, NULL)`)

	s, err := Open(t.Context(), dir, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	for id, want := range map[string]health.State{"a-disconnected": health.StateDisconnected, "a-reconnecting": health.StateUnknown, "a-healthy": health.StateUnknown} {
		rec, err := s.GetHealth(t.Context(), id)
		if err != nil || rec.IncidentState != want {
			t.Errorf("%s: incident %v, %v; want %v", id, rec.IncidentState, err, want)
		}
	}
	if d, err := s.Derivation(t.Context()); err != nil || d != (store.Derivation{RulesVersion: 1}) {
		t.Errorf("Derivation = %+v, %v; want rules version 1", d, err)
	}
}

// TestMigrateFromRulesVersion2: a database written by a build before the
// third migration keeps its records, which are due for a fetch (see
// storetest.WantMigratedFromVersion2).
func TestMigrateFromRulesVersion2(t *testing.T) {
	dir := t.TempDir()
	writeSchemaVersion(t, dir, 2, storetest.Version2SQL)
	s, err := Open(t.Context(), dir, store.Options{})
	storetest.WantMigratedFromVersion2(t, storetest.Opened(t, s, err))
}

// writeSchemaVersion writes the database in dir as a binary whose last
// migration is version v left it, then runs more.
func writeSchemaVersion(t *testing.T, dir string, v int64, more string) {
	t.Helper()
	script, err := schema.ScriptTo(v)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dir+"/"+FileName)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), script+";\n"+more); err != nil {
		t.Fatalf("write a version %d database: %v", v, err)
	}
}

// TestMigrateOutboxBodies: messages stored with their bodies in their rows
// (before migration 0017) are claimed with them afterwards.
func TestMigrateOutboxBodies(t *testing.T) {
	dir := t.TempDir()
	writeSchemaVersion(t, dir, 16, storetest.OutboxVersion16SQL(func(hex string) string { return "X'" + hex + "'" }))
	s, err := Open(t.Context(), dir, store.Options{})
	storetest.WantOutboxMigratedFromVersion16(t, storetest.Opened(t, s, err))
}
