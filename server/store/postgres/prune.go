package postgres

import (
	"context"

	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

var (
	pruneSQL      = sqlstore.NewPruneSQL(sqlstore.PostgreSQL)
	checkpointSQL = sqlstore.NewCheckpointSQL(sqlstore.Dollar)
)

// newPruner gives s its Prune method. Each batch is one transaction under
// the append lock, like an ingest, so replicas pruning at once serialise
// batch by batch, and the later finds done what the earlier did.
func newPruner(s *Store) sqlstore.Pruner {
	return sqlstore.NewPruner(&s.guard, pruneDriver{s}, s.opts)
}

type pruneDriver struct{ s *Store }

func (d pruneDriver) InWriteTx(ctx context.Context, fn func(store.PruneTx) error) error {
	t := d.s.beginIngest()
	defer t.rollback(ctx)
	if err := fn(sqlstore.PruneTx{Tx: t, Q: t, SQL: &pruneSQL, CP: &checkpointSQL}); err != nil {
		return err
	}
	return d.s.commitIngest(ctx, t)
}
