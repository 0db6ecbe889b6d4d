package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

// Migrations are embedded so the binary and the tests apply the same SQL.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

var schema = sqlstore.NewSchema(migrationFS, "migrations", sqlstore.PostgreSQL)

// migrateLock is the advisory lock key that serialises migrations across
// every replica (and every schema) of a database. Its value is arbitrary
// but fixed forever: binaries of every version must agree on it.
const migrateLock int64 = 0x61685f6d6967 // "ah_mig"

// migrate brings the schema up to date (see sqlstore.Schema.Migrate),
// creating the schema search_path names first when it is missing. The
// transaction first takes migrateLock: replicas that start together queue
// on it, and each one after the first, its statements seeing what the
// first committed, finds nothing to do.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return schema.Migrate(ctx, func(ctx context.Context, apply func(sqlstore.TxQuerier) error) error {
		tx, err := pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx) // after Commit, a harmless ErrTxClosed
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if err := createSchema(ctx, tx); err != nil {
			return err
		}
		if err := apply(querier{tx}); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
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
