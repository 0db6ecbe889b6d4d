package sqlstore

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
)

// Migration is one embedded SQL file of a driver's schema.
type Migration struct {
	Version int64
	Name    string // the file's name
	SQL     string
}

// loadMigrations reads the migrations in dir of fsys, in version order. A
// file is named <version>_<what>.sql; versions increase with the name.
func loadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	files, err := fs.ReadDir(fsys, dir) // sorted by name
	if err != nil {
		return nil, err
	}
	ms := make([]Migration, 0, len(files))
	for _, f := range files {
		prefix, _, _ := strings.Cut(f.Name(), "_")
		v, err := strconv.ParseInt(prefix, 10, 64)
		if err != nil || v <= 0 || (len(ms) > 0 && v <= ms[len(ms)-1].Version) {
			return nil, fmt.Errorf("migration %s: name must start with a positive version above the previous one", f.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, f.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: f.Name(), SQL: string(b)})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("no migrations in %s", dir)
	}
	return ms, nil
}

// pending returns the migrations of ms (in version order) that a database
// at schema version current has not applied. A database newer than the
// last of ms is an error: a binary must not write to a schema it does not
// know, e.g. after a rollback.
func pending(ms []Migration, current int64) ([]Migration, error) {
	if latest := ms[len(ms)-1].Version; current > latest {
		return nil, fmt.Errorf("the database is at schema version %d, newer than this binary's %d", current, latest)
	}
	for i, m := range ms {
		if m.Version > current {
			return ms[i:], nil
		}
	}
	return nil, nil
}

// SchemaVersionSQL reads a database's schema version: that of the last
// migration it applied, 0 before the first.
const SchemaVersionSQL = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"

// SchemaVersion runs SchemaVersionSQL on q.
func SchemaVersion(ctx context.Context, q Querier) (int64, error) {
	return queryInt64(ctx, q, SchemaVersionSQL)
}

// Schema is a driver's schema: its embedded migrations, in the dialect of
// its database.
type Schema struct {
	fsys    fs.FS
	dir     string
	dialect Dialect
}

// NewSchema is the schema whose migrations are in dir of fsys, each file
// named <version>_<what>.sql, versions increasing with the name.
func NewSchema(fsys fs.FS, dir string, d Dialect) Schema {
	return Schema{fsys: fsys, dir: dir, dialect: d}
}

// Migrations reads the migrations in version order.
func (s Schema) Migrations() ([]Migration, error) {
	return loadMigrations(s.fsys, s.dir)
}

// Migrate applies the migrations the database has not seen, all in one
// transaction, so that a failure leaves the schema as it was. inTx runs
// that transaction: it begins it, does first what the driver's database
// needs (such as a lock, so that concurrent Opens queue and the later ones
// find nothing to do), calls apply with it and commits when apply
// succeeded.
func (s Schema) Migrate(ctx context.Context, inTx func(ctx context.Context, apply func(TxQuerier) error) error) error {
	ms, err := s.Migrations()
	if err != nil {
		return err
	}
	if err := inTx(ctx, func(q TxQuerier) error { return s.apply(ctx, q, ms) }); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// apply runs the migrations of ms that the database of q lacks.
func (s Schema) apply(ctx context.Context, q TxQuerier, ms []Migration) error {
	if err := q.Exec(ctx, migrationsTableSQL(s.dialect)); err != nil {
		return err
	}
	current, err := SchemaVersion(ctx, q)
	if err != nil {
		return err
	}
	todo, err := pending(ms, current)
	if err != nil {
		return err
	}
	record := InsertSQL(s.dialect.P, "schema_migrations", []string{"version", "name", "applied_at"}, "")
	for _, m := range todo {
		// Without arguments, so that the file may hold several statements
		// (pgx then uses the simple protocol).
		if err := q.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		if err := q.Exec(ctx, record, m.Version, m.Name, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
	}
	return nil
}

// migrationsTableSQL creates the table of the migrations a database has
// applied, unless it exists.
func migrationsTableSQL(d Dialect) string {
	return `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    ` + d.int64 + ` PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at ` + d.int64 + ` NOT NULL
	)` + d.tableOptions
}

// CheckCurrent reports whether a database at schema version current is
// exactly what this binary's migrations make: Ping uses it, so a replica
// whose shared database was migrated past it (or not yet migrated) stops
// reporting ready instead of misreading the tables.
func (s Schema) CheckCurrent(current int64) error {
	ms, err := s.Migrations()
	if err != nil {
		return err
	}
	todo, err := pending(ms, current)
	if err != nil {
		return err
	}
	if len(todo) > 0 {
		return fmt.Errorf("the database is at schema version %d, this binary needs %d: restart it to apply the migrations", current, ms[len(ms)-1].Version)
	}
	return nil
}

// ScriptTo is one script that brings an empty database to schema version
// v, recording the migrations as Migrate does: tests write with it the
// databases that older binaries left.
func (s Schema) ScriptTo(v int64) (string, error) {
	ms, err := s.Migrations()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(migrationsTableSQL(s.dialect))
	for _, m := range ms {
		if m.Version > v {
			break
		}
		fmt.Fprintf(&b, ";\n%s;\nINSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, '%s', 0)", m.SQL, m.Version, m.Name)
	}
	return b.String(), nil
}
