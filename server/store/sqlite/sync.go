package sqlite

import (
	"context"
	"database/sql"

	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

var syncSQL = sqlstore.NewSyncSQL(sqlstore.SQLite)

// newSyncer gives s its SyncState, SaveSyncState, ClaimDue and
// OldestUnconfirmed methods, once its read statements are prepared. The
// sync state is saved, and leases are taken, on the one writer, so a
// claim is one transaction that no other write interleaves with: it
// selects what is due and leases it (sqlstore.SyncSQL.ClaimInTx).
func newSyncer(s *Store) sqlstore.Syncer {
	return sqlstore.NewSyncer(&s.guard, s.reads(), querier{db: s.w}, &syncSQL,
		func(ctx context.Context, c sqlstore.Claim) (due []store.DueAccount, err error) {
			err = s.inWriteTx(ctx, func(tx *sql.Tx) (err error) {
				due, err = syncSQL.ClaimInTx(ctx, querier{db: tx}, c)
				return err
			})
			return due, err
		})
}

// inWriteTx runs fn in a transaction of the writer and commits it when fn
// returns nil.
func (s *Store) inWriteTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // after Commit, a harmless ErrTxDone
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

var outboxSQL = sqlstore.NewOutboxSQL(sqlstore.SQLite)

// newOutboxer gives s its store.Outbox methods. Its writes, fan-ins and
// claims run on the one writer, so a claim is never interleaved with
// another.
func newOutboxer(s *Store) sqlstore.Outboxer {
	return sqlstore.NewOutboxer(&s.guard, s.reads(), querier{db: s.w}, func(ctx context.Context, fn func(sqlstore.TxQuerier) error) error {
		return s.inWriteTx(ctx, func(tx *sql.Tx) error { return fn(querier{db: tx}) })
	}, &outboxSQL)
}
