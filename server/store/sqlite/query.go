package sqlite

import (
	"context"
	"database/sql"

	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

// querier is a sqlstore.TxQuerier over a database/sql handle.
type querier struct {
	db interface {
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	}
}

func (q querier) Query(ctx context.Context, query string, args []any, scan func(sqlstore.Rows) error) error {
	rows, err := q.db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := scan(rows); err != nil {
		return err
	}
	return rows.Close()
}

func (q querier) Exec(ctx context.Context, query string, args ...any) error {
	_, err := q.db.ExecContext(ctx, query, args...)
	return err
}
