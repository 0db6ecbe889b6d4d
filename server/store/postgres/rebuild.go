package postgres

import (
	"context"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

// rebuildLockClass is the first key of the session-level advisory lock a
// rebuild holds; the second is the changes table's oid, as for appends.
// Arbitrary but fixed forever.
const rebuildLockClass int32 = 0x61687262 // "ahrb"

var rebuildSQL = sqlstore.NewRebuildSQL(sqlstore.Dollar)

// newRebuilder gives s its Derivation and Rebuild methods.
//
// Rebuild re-derives every record from the log (see store.RunRebuild).
// Replicas that start together queue on an advisory lock: the first
// rebuilds, the others then find the rules version current. Each batch is
// one transaction under the append lock, like an ingest, so corrections
// take Seqs in commit order and ingests from other replicas interleave
// safely.
func newRebuilder(s *Store) sqlstore.Rebuilder {
	return sqlstore.NewRebuilder(&s.guard, rebuildDriver{s}, s.opts,
		func(ctx context.Context, q string) sqlstore.Scanner { return s.pool.QueryRow(ctx, q) })
}

type rebuildDriver struct{ s *Store }

func (d rebuildDriver) LockRebuild(ctx context.Context) (func(), error) {
	conn, err := d.s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, rebuildLockClass, int32(d.s.logID)); err != nil {
		conn.Release()
		return nil, err
	}
	return func() {
		// Unlocked on a fresh context: the rebuild's may be done. Should
		// it fail, the lock goes with the connection, which is closed.
		if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1, $2)`, rebuildLockClass, int32(d.s.logID)); err != nil {
			_ = conn.Conn().Close(context.Background())
		}
		conn.Release()
	}, nil
}

func (d rebuildDriver) CountLogAccounts(ctx context.Context) (n int, err error) {
	err = d.s.pool.QueryRow(ctx, rebuildSQL.CountLogAccounts).Scan(&n)
	return n, err
}

func (d rebuildDriver) InWriteTx(ctx context.Context, fn func(store.RebuildTx) error) error {
	t := d.s.beginIngest()
	defer t.rollback(ctx)
	if err := fn(sqlstore.RebuildTx{Tx: t, Q: t, SQL: &rebuildSQL}); err != nil {
		return err
	}
	return d.s.commitIngest(ctx, t)
}

// Query and Exec make an ingestTx a sqlstore.TxQuerier. Exec is queued
// with the next round trip, like the ingest's own updates.
func (t *ingestTx) Query(ctx context.Context, query string, args []any, scan func(sqlstore.Rows) error) error {
	t.batch.Queue(query, args...).Query(func(rows pgx.Rows) error { return scan(rows) })
	return t.flush(ctx)
}

func (t *ingestTx) Exec(_ context.Context, query string, args ...any) error {
	t.batch.Queue(query, args...)
	return nil
}

// notify queues the NOTIFY that wakes every replica's watchers at commit,
// when the transaction appended changes.
func (s *Store) notify(t *ingestTx) {
	if t.lastChange > 0 {
		t.batch.Queue(notifySQL, s.channel, strconv.FormatInt(t.lastChange, 10))
	}
}
