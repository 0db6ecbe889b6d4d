package sqlite

import (
	"context"
	"database/sql"
	"embed"

	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

// Migrations are embedded so the binary and the tests apply the same SQL.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

var schema = sqlstore.NewSchema(migrationFS, "migrations", sqlstore.SQLite)

// migrate brings db's schema up to date (see sqlstore.Schema.Migrate);
// concurrent Opens of the same file queue on the write lock and the later
// one finds nothing to do.
func migrate(ctx context.Context, db *sql.DB) error {
	return schema.Migrate(ctx, func(ctx context.Context, apply func(sqlstore.TxQuerier) error) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() // after Commit, a harmless ErrTxDone
		if err := apply(querier{db: tx}); err != nil {
			return err
		}
		return tx.Commit()
	})
}
