package sqlite

import (
	"context"
	"database/sql"

	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

var rebuildSQL = sqlstore.NewRebuildSQL(sqlstore.Question)

// newRebuilder gives s its Derivation and Rebuild methods.
//
// Rebuild re-derives every record from the log (see store.RunRebuild).
// Its transactions queue on the one writer with the ingests, so it is safe
// while the store serves; a second Rebuild of this Store waits for the
// first. (Several processes writing one database file are not supported.)
func newRebuilder(s *Store) sqlstore.Rebuilder {
	return sqlstore.NewRebuilder(&s.guard, rebuildDriver{s}, s.opts,
		func(ctx context.Context, q string) sqlstore.Scanner { return s.r.QueryRowContext(ctx, q) })
}

type rebuildDriver struct{ s *Store }

func (d rebuildDriver) LockRebuild(ctx context.Context) (func(), error) {
	select {
	case d.s.rebuilding <- struct{}{}:
		return func() { <-d.s.rebuilding }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (d rebuildDriver) CountLogAccounts(ctx context.Context) (n int, err error) {
	err = d.s.r.QueryRowContext(ctx, rebuildSQL.CountLogAccounts).Scan(&n)
	return n, err
}

func (d rebuildDriver) InWriteTx(ctx context.Context, fn func(store.RebuildTx) error) error {
	return d.s.inWriteTx(ctx, func(tx *sql.Tx) error {
		return fn(sqlstore.RebuildTx{Tx: d.s.ingestTx(ctx, tx), Q: querier{db: tx}, SQL: &rebuildSQL})
	})
}
