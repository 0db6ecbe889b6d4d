package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

var checkSQL = sqlstore.NewCheckSQL(sqlstore.Dollar, &rebuildSQL)

// newChecker gives s its Check method: the shared checks, each batch in
// one read-only REPEATABLE READ transaction, so that it reads one
// snapshot while replicas ingest. PostgreSQL keeps its constraints and
// checksums itself: there is no engine check to run here (amcheck is an
// extension few installations have).
func newChecker(s *Store) sqlstore.Checker {
	return sqlstore.NewChecker(&s.guard, querier{s.pool}, &checkSQL, s.opts,
		func(ctx context.Context, fn func(sqlstore.Querier) error) error {
			tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
			if err != nil {
				return err
			}
			defer tx.Rollback(context.Background())
			if err := fn(querier{tx}); err != nil {
				return err
			}
			return tx.Commit(ctx)
		},
		nil)
}
