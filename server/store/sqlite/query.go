package sqlite

import (
	"context"
	"database/sql"

	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

var readSQL = sqlstore.NewReadSQL(sqlstore.SQLite)

// readStmts are the read pool's fixed statements, prepared once: streams
// poll ReadChanges and LastChangeSeq, dashboards GetHealth and Summary,
// probes Ping, metrics OldestUnconfirmed.
var readStmts = append(append(readSQL.Fixed(), syncSQL.Fixed()...), sqlstore.SchemaVersionSQL)

// querier is a sqlstore.TxQuerier over a database/sql handle: the read
// pool, with its prepared statements by their SQL, or a transaction.
type querier struct {
	db interface {
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	}
	prepared map[string]*sql.Stmt
}

func (q querier) Query(ctx context.Context, query string, args []any, scan func(sqlstore.Rows) error) error {
	var (
		rows *sql.Rows
		err  error
	)
	if st := q.prepared[query]; st != nil {
		rows, err = st.QueryContext(ctx, args...)
	} else {
		rows, err = q.db.QueryContext(ctx, query, args...)
	}
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
