package postgres

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
	"github.com/accounthealth/accounthealth/server/store/storetest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	databaseURL := pgtest.URL(t)
	ms, err := schema.Migrations()
	if err != nil {
		t.Fatalf("Migrations: %v", err)
	}
	for open := range 2 {
		s := openURL(t, databaseURL)
		if err := migrate(t.Context(), s.pool); err != nil {
			t.Errorf("migrating again: %v", err)
		}
		if n := countMigrations(t, s); n != len(ms) {
			t.Errorf("after Open #%d: %d migrations recorded, want %d", open+1, n, len(ms))
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

// TestOpenConcurrently: replicas that start together on a schema that does
// not exist yet all open it, and the migrations are applied once. The
// schema's name needs quoting, so search_path's parsing is tested too.
func TestOpenConcurrently(t *testing.T) {
	databaseURL := newSchemaURL(t, "Fresh Schema ü")
	ms, err := schema.Migrations()
	if err != nil {
		t.Fatalf("Migrations: %v", err)
	}
	const replicas = 8
	stores := make([]*Store, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() { stores[i], errs[i] = Open(t.Context(), databaseURL, store.Options{}) })
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Errorf("Open #%d: %v", i+1, errs[i])
			continue
		}
		t.Cleanup(func() { s.Close() })
	}
	if t.Failed() {
		return
	}
	for i, s := range stores {
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping #%d: %v", i+1, err)
		}
		if n := countMigrations(t, s); n != len(ms) {
			t.Errorf("Open #%d: %d migrations recorded, want %d", i+1, n, len(ms))
		}
		if s.logID != stores[0].logID {
			t.Errorf("Open #%d: log %d, want the first one's %d", i+1, s.logID, stores[0].logID)
		}
	}
}

// TestOpenHidesPassword: the URL of a failed Open may end up in logs.
func TestOpenHidesPassword(t *testing.T) {
	for _, databaseURL := range []string{
		"postgres://app:s3cret@127.0.0.1:1/test?connect_timeout=1",
		"postgres://app:s3cret@127.0.0.1:1/test?sslmode=nonsense",
	} {
		s, err := Open(t.Context(), databaseURL, store.Options{})
		if err == nil {
			s.Close()
			t.Fatalf("Open(%s) succeeded", databaseURL)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open: %v: the error shows the password", err)
		}
	}
}

func countMigrations(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(t.Context(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatalf("count migrations: %v", err)
	}
	return n
}

// newSchemaURL returns a URL whose search_path names a schema that does not
// exist yet, on the server pgtest found, and drops that schema when t ends.
func newSchemaURL(t *testing.T, name string) string {
	t.Helper()
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	name = q.Get("search_path") + " " + name // unique, as pgtest's schema is
	q.Set("search_path", pgx.Identifier{name}.Sanitize())
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20") // see pgtest.URL
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), u.String())
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	return u.String()
}

// TestMigrateFromRulesVersion1: a database written by a build before the
// second migration keeps its records, learns which incidents were open,
// and says its records follow rules version 1, so they get rebuilt.
func TestMigrateFromRulesVersion1(t *testing.T) {
	databaseURL := pgtest.URL(t)
	writeSchemaVersion(t, databaseURL, 1, `
		INSERT INTO records VALUES ('a-disconnected', 'u', 4, 'auth_required', '', 2, '', '', '', 0, 'accounts.updated', 0, 0, true, false, true, NULL, NULL);
		INSERT INTO records VALUES ('a-reconnecting', 'u', 1, '', '', 1, '', '', '', 0, 'accounts.updated', 0, 0, true, false, true, NULL, NULL);
		INSERT INTO records VALUES ('a-healthy', 'u', 2, '', '', 0, '', '', '', 0, 'accounts.connected', 0, 0, true, false, false, NULL, NULL)`)
	s := openURL(t, databaseURL)
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
	databaseURL := pgtest.URL(t)
	writeSchemaVersion(t, databaseURL, 2, storetest.Version2SQL)
	storetest.WantMigratedFromVersion2(t, openURL(t, databaseURL))
}

// writeSchemaVersion writes the schema of databaseURL (pgtest made it) as
// a binary whose last migration is version v left it, then runs more.
func writeSchemaVersion(t *testing.T, databaseURL string, v int64, more string) {
	t.Helper()
	script, err := schema.ScriptTo(v)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), script+";\n"+more); err != nil {
		t.Fatalf("write a version %d database: %v", v, err)
	}
}

// TestMigrateOutboxBodies: messages stored with their bodies in their rows
// (before migration 0017) are claimed with them afterwards.
func TestMigrateOutboxBodies(t *testing.T) {
	databaseURL := pgtest.URL(t)
	writeSchemaVersion(t, databaseURL, 16, storetest.OutboxVersion16SQL(func(hex string) string { return "decode('" + hex + "', 'hex')" }))
	storetest.WantOutboxMigratedFromVersion16(t, openURL(t, databaseURL))
}
