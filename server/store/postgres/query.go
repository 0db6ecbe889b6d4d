package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

// The reads run as single statements on the pool; pgx prepares each once
// per connection and keeps it.
var readSQL = sqlstore.NewReadSQL(sqlstore.PostgreSQL)

// querier is a sqlstore.TxQuerier over the pool or a transaction.
type querier struct {
	h interface {
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	}
}

func (q querier) Query(ctx context.Context, query string, args []any, scan func(sqlstore.Rows) error) error {
	rows, err := q.h.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := scan(rows); err != nil {
		return err
	}
	// Closing reads the rest of the result, which may hold an error.
	rows.Close()
	return rows.Err()
}

func (q querier) Exec(ctx context.Context, query string, args ...any) error {
	_, err := q.h.Exec(ctx, query, args...)
	return err
}
