package postgres

import (
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

// Migrations are embedded so the binary and the tests apply the same SQL.
// A file is named <version>_<what>.sql; versions increase with the name.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migrateLock is the advisory lock key that serialises migrations across
// every replica (and every schema) of a database. Its value is arbitrary
// but fixed forever: binaries of every version must agree on it.
const migrateLock int64 = 0x61685f6d6967 // "ah_mig"

// loadMigrations reads the embedded migrations in version order.
func loadMigrations() ([]sqlstore.Migration, error) {
	return sqlstore.LoadMigrations(migrationFS, "migrations")
}

// migrate creates the schema search_path names first when it is missing
// and applies the migrations the database has not seen, all in one
// transaction, so a failure leaves everything as it was. The transaction
// first takes migrateLock: replicas that start together queue on it, and
// each one after the first, its statements seeing what the first committed,
// finds nothing to do.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback(ctx) // after Commit, a harmless ErrTxClosed

	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	if err := createSchema(ctx, tx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    BIGINT PRIMARY KEY,
		name       TEXT   NOT NULL,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var current int64
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	pending, err := sqlstore.Pending(ms, current)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range pending {
		// Without arguments pgx uses the simple protocol, which runs a
		// file of several statements.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.Version, m.Name, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// createSchema creates the schema that search_path names first (where new
// tables go) when it does not exist, so that a URL with search_path=name
// is all a new store needs. "$user" is left alone: it is the default, and
// a schema of that name would be a mistake. The existence check comes first
// because CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the
// database even when the schema is there.
func createSchema(ctx context.Context, tx pgx.Tx) error {
	var (
		name    string
		missing bool
	)
	err := tx.QueryRow(ctx, `SELECT name, to_regnamespace(quote_ident(name)) IS NULL
		FROM (SELECT (parse_ident(current_setting('search_path'), false))[1] AS name) AS first`).Scan(&name, &missing)
	if err != nil {
		return fmt.Errorf("read search_path: %w", err)
	}
	if !missing || name == "$user" {
		return nil
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	return nil
}
