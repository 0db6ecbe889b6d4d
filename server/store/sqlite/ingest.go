package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

// The statements an ingest runs, prepared once on the writer connection and
// bound into each transaction, so a commit parses no SQL.
const (
	writeLastByHash = iota
	writeCountRedelivery
	writeGetRecord
	writePutRecord
	writeAppendEntry
	writeAppendChange
	writePutItemReport
	writeSetItemOutage
	numWriteStmts
)

var writeSQL = [numWriteStmts]string{
	writeLastByHash:      sqlstore.LastByHashSQL(sqlstore.Question),
	writeCountRedelivery: `UPDATE entries SET redeliveries = redeliveries + 1 WHERE seq = ?`,
	writeGetRecord:       sqlstore.GetRecordSQL(sqlstore.Question),
	writePutRecord:       sqlstore.PutRecordSQL(sqlstore.Question),
	writeAppendEntry:     sqlstore.AppendEntrySQL(sqlstore.Question),
	writeAppendChange:    sqlstore.AppendChangeSQL(sqlstore.Question),
	writePutItemReport:   sqlstore.PutItemReportSQL(sqlstore.Question),
	writeSetItemOutage:   sqlstore.SetItemOutageSQL(sqlstore.Question),
}

// Ingest commits the deliveries in one transaction under the rules of
// store.Apply. Any error rolls everything back.
func (s *Store) Ingest(ctx context.Context, deliveries []store.Delivery) ([]store.Result, error) {
	const op = "ingest"
	if err := s.guard.CheckOpen(op); err != nil {
		return nil, err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.guard.Fail(op, err)
	}
	defer tx.Rollback() // after Commit, a harmless ErrTxDone

	results, err := store.Apply(ctx, s.ingestTx(ctx, tx), deliveries, s.opts)
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return nil, s.guard.Fail(op, err)
	}
	return results, nil
}

// ingestTx binds the prepared write statements into tx.
func (s *Store) ingestTx(ctx context.Context, tx *sql.Tx) *ingestTx {
	var itx ingestTx
	for i, st := range s.write {
		itx.stmts[i] = tx.StmtContext(ctx, st)
	}
	return &itx
}

// ingestTx is the store.Tx of one ingest transaction.
type ingestTx struct {
	stmts [numWriteStmts]*sql.Stmt
}

func (t *ingestTx) LastByHash(ctx context.Context, h [32]byte) (int64, time.Time, bool, error) {
	var (
		seq int64
		at  sql.NullInt64
	)
	err := t.stmts[writeLastByHash].QueryRowContext(ctx, h[:]).Scan(&seq, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, time.Time{}, false, nil
	case err != nil:
		return 0, time.Time{}, false, err
	}
	return seq, sqlstore.FromNanos(at), true, nil
}

func (t *ingestTx) CountRedelivery(ctx context.Context, seq int64) error {
	_, err := t.stmts[writeCountRedelivery].ExecContext(ctx, seq)
	return err
}

func (t *ingestTx) GetRecord(ctx context.Context, accountID string) (health.Record, error) {
	rec, err := sqlstore.ScanRecord(t.stmts[writeGetRecord].QueryRowContext(ctx, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return health.Record{}, nil
	}
	return rec, err
}

func (t *ingestTx) PutRecord(ctx context.Context, rec health.Record) error {
	_, err := t.stmts[writePutRecord].ExecContext(ctx, sqlstore.RecordArgs(&rec)...)
	return err
}

func (t *ingestTx) AppendEntry(ctx context.Context, e store.Entry, h [32]byte) (int64, error) {
	return insert(ctx, t.stmts[writeAppendEntry], sqlstore.EntryArgs(&e, h))
}

func (t *ingestTx) AppendChange(ctx context.Context, c store.Change) (int64, error) {
	return insert(ctx, t.stmts[writeAppendChange], sqlstore.ChangeArgs(&c))
}

func (t *ingestTx) PutItemReport(ctx context.Context, r health.ItemReport) error {
	_, err := t.stmts[writePutItemReport].ExecContext(ctx, sqlstore.ItemReportArgs(&r)...)
	return err
}

func (t *ingestTx) SetItemOutage(ctx context.Context, o health.ItemOutage, at time.Time) (bool, error) {
	var item string
	err := t.stmts[writeSetItemOutage].QueryRowContext(ctx, sqlstore.ItemOutageArgs(&o, at)...).Scan(&item)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// insert runs an INSERT and returns the new row's Seq (its rowid).
func insert(ctx context.Context, st *sql.Stmt, args []any) (int64, error) {
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}
