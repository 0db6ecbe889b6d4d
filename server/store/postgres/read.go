package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
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

var (
	selectRecordsSQL = "SELECT " + strings.Join(recordCols, ", ") + " FROM records"
	selectRecordSQL  = selectRecordsSQL + " WHERE account_id = $1"
)

var readSQL = [numReadStmts]string{
	readRecord:        selectRecordSQL,
	readChanges:       "SELECT " + cols("c", changeCols) + " FROM changes c WHERE c.seq > $1 ORDER BY c.seq LIMIT $2",
	readLastChangeSeq: "SELECT COALESCE(MAX(seq), 0) FROM changes",
	readChangeSeqBefore: "SELECT COALESCE((SELECT MIN(seq) FROM changes WHERE occurred_at >= $1) - 1," +
		" (SELECT COALESCE(MAX(seq), 0) FROM changes))",
	readEntries: "SELECT " + cols("e", entryCols) + ", " + cols("c", changeCols) +
		" FROM entries e LEFT JOIN changes c ON c.entry_seq = e.seq" +
		" WHERE e.account_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3",
	readSummary: `SELECT false, state, '', COUNT(*) FROM records GROUP BY state
		UNION ALL
		SELECT true, 0, error_code, COUNT(*) FROM records WHERE error_code <> '' GROUP BY error_code`,
	readPing: "SELECT COALESCE(MAX(version), 0), current_setting('transaction_read_only')::boolean FROM schema_migrations",
}

// GetHealth returns the account's record or store.ErrNotFound.
func (s *Store) GetHealth(ctx context.Context, accountID string) (health.Record, error) {
	const op = "get health"
	if err := s.checkOpen(op); err != nil {
		return health.Record{}, err
	}
	rec, err := scanRecord(s.pool.QueryRow(ctx, readSQL[readRecord], accountID))
	if isNoRows(err) {
		err = fmt.Errorf("account %q: %w", accountID, store.ErrNotFound)
	}
	if err != nil {
		return health.Record{}, s.fail(op, err)
	}
	return rec, nil
}

// ListHealth pages through the records matching q, by account id.
func (s *Store) ListHealth(ctx context.Context, q store.HealthQuery) (store.HealthPage, error) {
	const op = "list health"
	if err := s.checkOpen(op); err != nil {
		return store.HealthPage{}, err
	}
	limit, after, err := q.Cursor()
	if err != nil {
		return store.HealthPage{}, s.fail(op, err)
	}
	query, args := listHealthSQL(q, after, limit+1)
	rows, err := s.pool.Query(ctx, query, args...)
	recs, err := collect(rows, err, scanRecord)
	if err != nil {
		return store.HealthPage{}, s.fail(op, err)
	}
	page := store.HealthPage{Records: recs}
	if len(recs) > limit {
		page.Records = recs[:limit]
		page.NextPageToken = q.NextPageToken(recs[limit-1].AccountID)
	}
	return page, nil
}

// listHealthSQL selects up to n records of q after the account id after.
// Only the filters q sets appear in the SQL, so that each combination gets
// a plan that uses its index.
func listHealthSQL(q store.HealthQuery, after string, n int) (string, []any) {
	var b strings.Builder
	args := []any{after}
	b.WriteString(selectRecordsSQL + " WHERE account_id > $1")
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
	if err := s.checkOpen(op); err != nil {
		return store.Summary{}, err
	}
	rows, err := s.pool.Query(ctx, readSQL[readSummary])
	type count struct {
		byCode bool
		state  health.State
		code   string
		n      int
	}
	counts, err := collect(rows, err, func(sc scanner) (c count, err error) {
		return c, sc.Scan(&c.byCode, &c.state, &c.code, &c.n)
	})
	if err != nil {
		return store.Summary{}, s.fail(op, err)
	}
	sum := store.Summary{ByState: map[health.State]int{}, ByErrorCode: map[string]int{}}
	for _, c := range counts {
		if c.byCode {
			sum.ByErrorCode[c.code] = c.n
			continue
		}
		sum.ByState[c.state] = c.n
		sum.Total += c.n
	}
	return sum, nil
}

// ListEntries pages through an account's timeline, oldest first, each entry
// with the change it caused.
func (s *Store) ListEntries(ctx context.Context, q store.EntryQuery) (store.EntryPage, error) {
	const op = "list entries"
	if err := s.checkOpen(op); err != nil {
		return store.EntryPage{}, err
	}
	limit, after, err := q.Cursor()
	if err != nil {
		return store.EntryPage{}, s.fail(op, err)
	}
	rows, err := s.pool.Query(ctx, readSQL[readEntries], q.AccountID, after, limit+1)
	entries, err := collect(rows, err, scanEntry)
	if err == nil && len(entries) == 0 && after == 0 {
		// Entries are never deleted, so only a first page can be empty
		// because the account is unknown.
		err = fmt.Errorf("account %q: %w", q.AccountID, store.ErrNotFound)
	}
	if err != nil {
		return store.EntryPage{}, s.fail(op, err)
	}
	page := store.EntryPage{Entries: entries}
	if len(entries) > limit {
		page.Entries = entries[:limit]
		page.NextPageToken = q.NextPageToken(entries[limit-1].Seq)
	}
	return page, nil
}

func scanEntry(sc scanner) (store.Entry, error) {
	var (
		er entryRow
		cr changeRow
	)
	if err := sc.Scan(append(er.dest(), cr.dest()...)...); err != nil {
		return store.Entry{}, err
	}
	e := er.entry()
	e.Change = cr.change()
	return e, nil
}

// ReadChanges returns up to limit changes with Seq > after, in Seq order;
// limit follows the page size rules (0 means store.DefaultPageSize).
func (s *Store) ReadChanges(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	const op = "read changes"
	if err := s.checkOpen(op); err != nil {
		return nil, err
	}
	limit, err := store.PageLimit(limit)
	if err != nil {
		return nil, s.fail(op, err)
	}
	rows, err := s.pool.Query(ctx, readSQL[readChanges], after, limit)
	changes, err := collect(rows, err, func(sc scanner) (store.Change, error) {
		var cr changeRow
		if err := sc.Scan(cr.dest()...); err != nil {
			return store.Change{}, err
		}
		return *cr.change(), nil
	})
	if err != nil {
		return nil, s.fail(op, err)
	}
	return changes, nil
}

// LastChangeSeq returns the Seq of the newest committed change, 0 if none.
func (s *Store) LastChangeSeq(ctx context.Context) (int64, error) {
	return s.readSeq(ctx, "last change seq", readLastChangeSeq)
}

func (s *Store) ChangeSeqBefore(ctx context.Context, t time.Time) (int64, error) {
	return s.readSeq(ctx, "change seq before", readChangeSeqBefore, nanos(t))
}

// readSeq runs a statement that returns one sequence number.
func (s *Store) readSeq(ctx context.Context, op string, stmt int, args ...any) (int64, error) {
	if err := s.checkOpen(op); err != nil {
		return 0, err
	}
	var seq int64
	if err := s.pool.QueryRow(ctx, readSQL[stmt], args...).Scan(&seq); err != nil {
		return 0, s.fail(op, err)
	}
	return seq, nil
}

// collect scans every row of a query (whose error it takes too, to keep
// callers flat) and closes it.
func collect[T any](rows pgx.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
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
