package sqlite

import (
	"context"
	"database/sql"

	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

var (
	pruneSQL      = sqlstore.NewPruneSQL(sqlstore.SQLite)
	checkpointSQL = sqlstore.NewCheckpointSQL(sqlstore.Question)
)

// newPruner gives s its Prune method: each batch is one transaction on the
// one writer, queued with the ingests.
func newPruner(s *Store) sqlstore.Pruner {
	return sqlstore.NewPruner(&s.guard, pruneDriver{s}, s.opts)
}

type pruneDriver struct{ s *Store }

func (d pruneDriver) InWriteTx(ctx context.Context, fn func(store.PruneTx) error) error {
	return d.s.inWriteTx(ctx, func(tx *sql.Tx) error {
		return fn(sqlstore.PruneTx{Tx: d.s.ingestTx(ctx, tx), Q: querier{db: tx}, SQL: &pruneSQL, CP: &checkpointSQL})
	})
}
