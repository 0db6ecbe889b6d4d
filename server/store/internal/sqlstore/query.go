package sqlstore

import (
	"context"
	"errors"
)

// Querier runs a query on a driver's database handle and hands its rows to
// scan, closing them after; an error scan returns, or one of the query's,
// is the result. It is what the shared SQL code needs of a handle:
// *sql.DB, *sql.Tx, *pgxpool.Pool and pgx.Tx each adapt to it in a few
// lines.
type Querier interface {
	Query(ctx context.Context, query string, args []any, scan func(Rows) error) error
}

// TxQuerier runs statements in a driver's write transaction.
type TxQuerier interface {
	Querier
	// Exec runs a statement whose result is not read.
	Exec(ctx context.Context, query string, args ...any) error
}

// Rows is a query's result, as *sql.Rows and pgx.Rows give it. Closing is
// left to the driver: the two libraries' Close methods differ.
type Rows interface {
	Scanner
	Next() bool
	Err() error
}

// Collect scans every row with scan, stopping at the first error.
func Collect[T any](rows Rows, scan func(Scanner) (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// queryOne runs a query of at most one row on q and scans the row with
// scan; found is false when there is none.
func queryOne[T any](ctx context.Context, q Querier, query string, args []any, scan func(Scanner) (T, error)) (v T, found bool, err error) {
	err = q.Query(ctx, query, args, func(rows Rows) error {
		if !rows.Next() {
			return rows.Err()
		}
		found = true
		v, err = scan(rows)
		return err
	})
	return v, found, err
}

// errNoRow is what a query that always returns a row fails with when it
// returns none.
var errNoRow = errors.New("the query returned no row")

// queryInt64 runs a query that returns one integer.
func queryInt64(ctx context.Context, q Querier, query string, args ...any) (int64, error) {
	n, found, err := queryOne(ctx, q, query, args, func(sc Scanner) (n int64, err error) {
		err = sc.Scan(&n)
		return n, err
	})
	if err == nil && !found {
		err = errNoRow
	}
	return n, err
}
