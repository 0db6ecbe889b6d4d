package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

// The fixed read statements; pgx prepares each once per connection. Each
// is one statement, so it reads one snapshot: under READ COMMITTED,
// everything committed when it starts. ListHealth's SQL depends on its
// filters and is built per call.
const (
	readRecord = iota
	readChanges
	readLastChangeSeq
	readChangeSeqBefore
	readEntries
	readSummary
	readPing
	numReadStmts
)

var selectRecordSQL = sqlstore.SelectRecordsSQL + " WHERE account_id = $1"

var readSQL = [numReadStmts]string{
	readRecord:        selectRecordSQL,
	readChanges:       "SELECT " + sqlstore.Cols("c", sqlstore.ChangeCols) + " FROM changes c WHERE c.seq > $1 ORDER BY c.seq LIMIT $2",
	readLastChangeSeq: "SELECT COALESCE(MAX(seq), 0) FROM changes",
	readChangeSeqBefore: "SELECT COALESCE((SELECT MIN(seq) FROM changes WHERE occurred_at >= $1) - 1," +
		" (SELECT COALESCE(MAX(seq), 0) FROM changes))",
	readEntries: "SELECT " + sqlstore.Cols("e", sqlstore.EntryCols) + ", " + sqlstore.Cols("c", sqlstore.ChangeCols) +
		" FROM entries e LEFT JOIN changes c ON c.entry_seq = e.seq" +
		" WHERE e.account_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3",
	// See sqlstore.SummaryCount.
	readSummary: `SELECT false, state, '', COUNT(*) FROM records GROUP BY state
		UNION ALL
		SELECT true, 0, error_code, COUNT(*) FROM records WHERE error_code <> '' GROUP BY error_code`,
	readPing: "SELECT COALESCE(MAX(version), 0), current_setting('transaction_read_only')::boolean FROM schema_migrations",
}

// GetHealth returns the account's record or store.ErrNotFound.
func (s *Store) GetHealth(ctx context.Context, accountID string) (health.Record, error) {
	const op = "get health"
	if err := s.guard.CheckOpen(op); err != nil {
		return health.Record{}, err
	}
	rec, err := sqlstore.ScanRecord(s.pool.QueryRow(ctx, readSQL[readRecord], accountID))
	if isNoRows(err) {
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
	rows, err := s.pool.Query(ctx, query, args...)
	recs, err := collect(rows, err, sqlstore.ScanRecord)
	if err != nil {
		return store.HealthPage{}, s.guard.Fail(op, err)
	}
	return sqlstore.HealthPage(q, limit, recs), nil
}

// listHealthSQL selects up to n records of q after the account id after.
// Only the filters q sets appear in the SQL, so that each combination gets
// a plan that uses its index.
func listHealthSQL(q store.HealthQuery, after string, n int) (string, []any) {
	var b strings.Builder
	args := []any{after}
	b.WriteString(sqlstore.SelectRecordsSQL + " WHERE account_id > $1")
	where := func(cond string, arg any) {
		args = append(args, arg)
		b.WriteString(" AND " + cond + " $" + strconv.Itoa(len(args)))
	}
	if q.UserID != "" {
		where("user_id =", q.UserID)
	}
	if len(q.States) > 0 {
		states := make([]int32, len(q.States))
		for i, st := range q.States {
			states[i] = int32(st)
		}
		where("state = ANY(", states)
		b.WriteString(")")
	}
	if len(q.ErrorCodes) > 0 {
		where("error_code = ANY(", q.ErrorCodes)
		b.WriteString(")")
	}
	args = append(args, n)
	b.WriteString(" ORDER BY account_id LIMIT $" + strconv.Itoa(len(args)))
	return b.String(), args
}

// Summary counts all records by state and by current error code.
func (s *Store) Summary(ctx context.Context) (store.Summary, error) {
	const op = "summary"
	if err := s.guard.CheckOpen(op); err != nil {
		return store.Summary{}, err
	}
	rows, err := s.pool.Query(ctx, readSQL[readSummary])
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
	rows, err := s.pool.Query(ctx, readSQL[readEntries], q.AccountID, after, limit+1)
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
	rows, err := s.pool.Query(ctx, readSQL[readChanges], after, limit)
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
	if err := s.pool.QueryRow(ctx, readSQL[stmt], args...).Scan(&seq); err != nil {
		return 0, s.guard.Fail(op, err)
	}
	return seq, nil
}

// collect scans every row of a query (whose error it takes too, to keep
// callers flat) and closes it.
func collect[T any](rows pgx.Rows, err error, scan func(sqlstore.Scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sqlstore.Collect(rows, scan)
}
