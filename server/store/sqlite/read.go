package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

// The read pool's fixed statements, prepared once: streams poll
// ReadChanges and LastChangeSeq, dashboards GetHealth and Summary.
// ListHealth's SQL depends on its filters and is built per call.
const (
	readRecord = iota
	readChanges
	readLastChangeSeq
	readChangeSeqBefore
	readEntries
	readSummary
	readSchemaVersion
	numReadStmts
)

var selectRecordSQL = sqlstore.SelectRecordsSQL + " WHERE account_id = ?"

var readSQL = [numReadStmts]string{
	readRecord:        selectRecordSQL,
	readChanges:       "SELECT " + sqlstore.Cols("c", sqlstore.ChangeCols) + " FROM changes c WHERE c.seq > ? ORDER BY c.seq LIMIT ?",
	readLastChangeSeq: "SELECT COALESCE(MAX(seq), 0) FROM changes",
	readChangeSeqBefore: "SELECT COALESCE((SELECT MIN(seq) FROM changes WHERE occurred_at >= ?) - 1," +
		" (SELECT COALESCE(MAX(seq), 0) FROM changes))",
	readEntries: "SELECT " + sqlstore.Cols("e", sqlstore.EntryCols) + ", " + sqlstore.Cols("c", sqlstore.ChangeCols) +
		" FROM entries e LEFT JOIN changes c ON c.entry_seq = e.seq" +
		" WHERE e.account_id = ? AND e.seq > ? ORDER BY e.seq LIMIT ?",
	// One statement, so both counts come from the same snapshot; see
	// sqlstore.SummaryCount.
	readSummary: `SELECT 0, state, '', COUNT(*) FROM records GROUP BY state
		UNION ALL
		SELECT 1, 0, error_code, COUNT(*) FROM records WHERE error_code <> '' GROUP BY error_code`,
	readSchemaVersion: "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
}

// GetHealth returns the account's record or store.ErrNotFound.
func (s *Store) GetHealth(ctx context.Context, accountID string) (health.Record, error) {
	const op = "get health"
	if err := s.guard.CheckOpen(op); err != nil {
		return health.Record{}, err
	}
	rec, err := sqlstore.ScanRecord(s.read[readRecord].QueryRowContext(ctx, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		err = sqlstore.AccountNotFound(accountID)
	}
	if err != nil {
		return health.Record{}, s.guard.Fail(op, err)
	}
	return rec, nil
}

// ListHealth pages through the records matching q, by account id.
func (s *Store) ListHealth(ctx context.Context, q store.HealthQuery) (store.HealthPage, error) {
	const op = "list health"
	if err := s.guard.CheckOpen(op); err != nil {
		return store.HealthPage{}, err
	}
	limit, after, err := q.Cursor()
	if err != nil {
		return store.HealthPage{}, s.guard.Fail(op, err)
	}
	query, args := listHealthSQL(q, after, limit+1)
	rows, err := s.r.QueryContext(ctx, query, args...)
	recs, err := collect(rows, err, sqlstore.ScanRecord)
	if err != nil {
		return store.HealthPage{}, s.guard.Fail(op, err)
	}
	return sqlstore.HealthPage(q, limit, recs), nil
}

// listHealthSQL selects up to n records of q after the account id after.
func listHealthSQL(q store.HealthQuery, after string, n int) (string, []any) {
	var b strings.Builder
	args := []any{after}
	b.WriteString(sqlstore.SelectRecordsSQL + " WHERE account_id > ?")
	if q.UserID != "" {
		b.WriteString(" AND user_id = ?")
		args = append(args, q.UserID)
	}
	in := func(col string, n int) {
		b.WriteString(" AND " + col + " IN (?" + strings.Repeat(", ?", n-1) + ")")
	}
	if len(q.States) > 0 {
		in("state", len(q.States))
		for _, st := range q.States {
			args = append(args, st)
		}
	}
	if len(q.ErrorCodes) > 0 {
		in("error_code", len(q.ErrorCodes))
		for _, c := range q.ErrorCodes {
			args = append(args, c)
		}
	}
	b.WriteString(" ORDER BY account_id LIMIT ?")
	return b.String(), append(args, n)
}

// Summary counts all records by state and by current error code.
func (s *Store) Summary(ctx context.Context) (store.Summary, error) {
	const op = "summary"
	if err := s.guard.CheckOpen(op); err != nil {
		return store.Summary{}, err
	}
	rows, err := s.read[readSummary].QueryContext(ctx)
	counts, err := collect(rows, err, sqlstore.ScanSummaryCount)
	if err != nil {
		return store.Summary{}, s.guard.Fail(op, err)
	}
	return sqlstore.Summarize(counts), nil
}

// ListEntries pages through an account's timeline, oldest first, each entry
// with the change it caused.
func (s *Store) ListEntries(ctx context.Context, q store.EntryQuery) (store.EntryPage, error) {
	const op = "list entries"
	if err := s.guard.CheckOpen(op); err != nil {
		return store.EntryPage{}, err
	}
	limit, after, err := q.Cursor()
	if err != nil {
		return store.EntryPage{}, s.guard.Fail(op, err)
	}
	rows, err := s.read[readEntries].QueryContext(ctx, q.AccountID, after, limit+1)
	entries, err := collect(rows, err, sqlstore.ScanEntry)
	var page store.EntryPage
	if err == nil {
		page, err = sqlstore.EntryPage(q, limit, after, entries)
	}
	if err != nil {
		return store.EntryPage{}, s.guard.Fail(op, err)
	}
	return page, nil
}

// ReadChanges returns up to limit changes with Seq > after, in Seq order;
// limit follows the page size rules (0 means store.DefaultPageSize).
func (s *Store) ReadChanges(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	const op = "read changes"
	if err := s.guard.CheckOpen(op); err != nil {
		return nil, err
	}
	limit, err := store.PageLimit(limit)
	if err != nil {
		return nil, s.guard.Fail(op, err)
	}
	rows, err := s.read[readChanges].QueryContext(ctx, after, limit)
	changes, err := collect(rows, err, sqlstore.ScanChange)
	if err != nil {
		return nil, s.guard.Fail(op, err)
	}
	return changes, nil
}

// LastChangeSeq returns the Seq of the newest committed change, 0 if none.
func (s *Store) LastChangeSeq(ctx context.Context) (int64, error) {
	return s.readSeq(ctx, "last change seq", readLastChangeSeq)
}

// ChangeSeqBefore returns the Seq just below the first change that occurred
// at or after t, or LastChangeSeq when there is none.
func (s *Store) ChangeSeqBefore(ctx context.Context, t time.Time) (int64, error) {
	return s.readSeq(ctx, "change seq before", readChangeSeqBefore, sqlstore.Nanos(t))
}

// readSeq runs a statement that returns one sequence number.
func (s *Store) readSeq(ctx context.Context, op string, stmt int, args ...any) (int64, error) {
	if err := s.guard.CheckOpen(op); err != nil {
		return 0, err
	}
	var seq int64
	if err := s.read[stmt].QueryRowContext(ctx, args...).Scan(&seq); err != nil {
		return 0, s.guard.Fail(op, err)
	}
	return seq, nil
}

// collect scans every row of a query (whose error it takes too, to keep
// callers flat) and closes it.
func collect[T any](rows *sql.Rows, err error, scan func(sqlstore.Scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sqlstore.Collect(rows, scan)
}
