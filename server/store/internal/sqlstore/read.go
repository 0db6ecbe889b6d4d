package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// ReadSQL is the SQL of the reads in one dialect. Each is one statement,
// so it reads one snapshot: a WAL reader's, or under PostgreSQL's READ
// COMMITTED everything committed when it starts.
type ReadSQL struct {
	dialect Dialect // for ListHealth's, built per call

	record, changes, lastChangeSeq, changeSeqBefore, entries, summary, countChanges string
	staleCandidates                                                                 string
	// pruned is how far pruning went in an account's log (see
	// store.EntryQuery.Cursor).
	pruned string
	items  ItemSQL
}

// NewReadSQL builds the reads' statements for dialect d.
func NewReadSQL(d Dialect) ReadSQL {
	p := d.P
	return ReadSQL{
		dialect:       d,
		record:        GetRecordSQL(p),
		changes:       "SELECT " + Cols("c", ChangeCols) + " FROM changes c WHERE c.seq > " + p(1) + " ORDER BY c.seq LIMIT " + p(2),
		lastChangeSeq: "SELECT COALESCE(MAX(seq), 0) FROM changes",
		changeSeqBefore: "SELECT COALESCE((SELECT MIN(seq) FROM changes WHERE occurred_at >= " + p(1) + ") - 1," +
			" (SELECT COALESCE(MAX(seq), 0) FROM changes))",
		entries: "SELECT " + Cols("e", EntryCols) + ", " + Cols("c", ChangeCols) +
			" FROM entries e LEFT JOIN changes c ON c.entry_seq = e.seq" +
			" WHERE e.account_id = " + p(1) + " AND e.seq > " + p(2) + " ORDER BY e.seq LIMIT " + p(3),
		// From the hourly counts the commits keep (migration 0009): at
		// most a row per hour and kind. Buckets are whole hours, so integer
		// division of the hours' nanoseconds puts each in its bucket. The
		// CAST is for PostgreSQL, whose SUM of a BIGINT is a NUMERIC.
		countChanges: "SELECT (hour_start - " + p(1) + ") / " + p(2) + " AS bucket, kind, CAST(SUM(n) AS BIGINT) FROM change_counts" +
			" WHERE hour_start >= " + p(3) + " AND hour_start < " + p(4) + " GROUP BY bucket, kind ORDER BY bucket, kind",
		pruned: "SELECT COALESCE(MAX(through_seq), 0) FROM checkpoints WHERE account_id = " + p(1),
		// Through the partial index of migration 0015.
		staleCandidates: "SELECT account_id, user_id, fresh_as_of FROM records WHERE fresh_as_of IS NOT NULL AND fresh_as_of < " + p(1) +
			" ORDER BY fresh_as_of LIMIT " + p(2),
		items: NewItemSQL(p),
		// From the counts the commits keep (migration 0006), not the
		// records: a few rows, whatever the number of accounts. One
		// statement, so both counts come from the same snapshot; see
		// summaryCount. SQLite reads false and true as 0 and 1; the CASTs
		// are for PostgreSQL, whose SUM of a BIGINT is a NUMERIC.
		summary: `SELECT 0, state, '', CAST(SUM(n) AS BIGINT) FROM record_counts GROUP BY state HAVING SUM(n) <> 0
		UNION ALL
		SELECT 1, 0, error_code, CAST(SUM(n) AS BIGINT) FROM record_counts WHERE error_code <> '' GROUP BY error_code HAVING SUM(n) <> 0
		UNION ALL
		SELECT 2, freshness, '', n FROM freshness_counts WHERE freshness <> 0 AND n <> 0`,
	}
}

// Fixed lists the statements that do not depend on a read's arguments, for
// a driver to prepare; ListHealth's SQL depends on its filters and is built
// per call.
func (s *ReadSQL) Fixed() []string {
	return []string{s.record, s.changes, s.lastChangeSeq, s.changeSeqBefore, s.entries, s.summary, s.countChanges, s.pruned, s.staleCandidates,
		s.items.one.counts, s.items.one.failures, s.items.one.reports,
		s.items.active.counts, s.items.active.failures, s.items.active.reports,
		s.items.all.counts, s.items.all.failures, s.items.all.reports, s.items.outages, s.items.quiet}
}

// listHealth selects up to n records of q after the key after, in q's
// order. Only the filters q sets appear in the SQL, so that each
// combination gets a plan that uses its index. Each index gives the
// records of one value in page order, and neither database merges several
// values' ranges in order: filtered by several states (or else error
// codes), the query takes up to n records of each value and merges those,
// rather than walk every record in page order until n match, most of a
// million for a rare state.
func (s *ReadSQL) listHealth(q store.HealthQuery, after store.HealthKey, n int) (string, []any) {
	args := NewBinder(s.dialect.P)
	states := make([]int32, len(q.States))
	for i, st := range q.States {
		states[i] = int32(st)
	}
	slices.Sort(states)
	states = slices.Compact(states)
	codes := slices.Compact(slices.Sorted(slices.Values(q.ErrorCodes)))
	fresh := make([]int32, len(q.Freshness))
	for i, f := range q.Freshness {
		fresh[i] = int32(f)
	}
	slices.Sort(fresh)
	fresh = slices.Compact(fresh)
	order, start := healthOrder(q.Order, after)
	// page is the SQL of one page of the records with these filters,
	// binding its arguments in the order they appear.
	page := func(states []int32, codes []string) string {
		w := start(args.Bind)
		if q.UserID != "" {
			w += " AND user_id = " + args.Bind(q.UserID)
		}
		if q.Item != "" {
			w += " AND item = " + args.Bind(q.Item)
		}
		if len(states) > 0 {
			w += " AND " + oneOf(s.dialect, "state", states, args.Bind)
			if !slices.Contains(states, int32(health.StateHealthy)) {
				w += " AND " + notHealthy
			}
		}
		if len(codes) > 0 {
			w += " AND " + oneOf(s.dialect, "error_code", codes, args.Bind)
			if !slices.Contains(codes, "") {
				w += " AND " + hasErrorCode
			}
		}
		if len(fresh) > 0 {
			w += " AND " + oneOf(s.dialect, "freshness", fresh, args.Bind)
			if fresh[0] >= int32(health.FreshnessStale) {
				// The partial index's condition, stated so that the
				// planners see it holds whatever the arguments.
				w += " AND freshness >= 2"
			}
		}
		return selectRecordsSQL + " WHERE " + w + " ORDER BY " + order + " LIMIT " + args.Bind(n)
	}
	var parts []string
	switch {
	case len(states) > 1:
		for _, st := range states {
			parts = append(parts, page([]int32{st}, codes))
		}
	case len(codes) > 1:
		for _, c := range codes {
			parts = append(parts, page(states, []string{c}))
		}
	default:
		return page(states, codes), args.Args
	}
	for i, p := range parts {
		// A compound's parts may not have their own ORDER BY and LIMIT
		// in SQLite, unless each is a subquery; PostgreSQL 15 names them.
		parts[i] = "SELECT * FROM (" + p + ") AS part" + strconv.Itoa(i)
	}
	return "SELECT * FROM (" + strings.Join(parts, " UNION ALL ") + ") AS parts ORDER BY " + order + " LIMIT " + args.Bind(n), args.Args
}

// ListHealthSQL is the statement of q's first page of n records, for the
// drivers' tests of its plans.
func (s *ReadSQL) ListHealthSQL(q store.HealthQuery, n int) (string, []any) {
	return s.listHealth(q, store.HealthKey{}, n)
}

// sinceKey is the state since of a record as its indexes (migration
// 0012) hold it: one without sorts as 1970.
const sinceKey = "COALESCE(state_since, 0)"

// The conditions of the partial indexes by state and by error code
// (migration 0016), for the queries they serve to state: neither planner
// can tell that state = $1 or error_code = $1 implies them.
var (
	notHealthy   = "state <> " + strconv.Itoa(int(health.StateHealthy))
	hasErrorCode = "error_code <> ''"
)

// healthOrder is the ORDER BY of a page in order o, and the condition
// that a record comes after the key after, binding its values with bind.
// Ordered by state since, the condition is spelled out rather than a row
// value comparison, (since, account id) > (s, a): SQLite seeks an index
// range for since >= s but scans the index from its start for the row
// value, so each page would cost more than the one before.
func healthOrder(o store.HealthOrder, after store.HealthKey) (order string, start func(bind func(any) string) string) {
	cmp, dir := ">", ""
	switch o {
	case store.ByAccountID:
		return "account_id", func(bind func(any) string) string { return "account_id > " + bind(after.AccountID) }
	case store.ByStateSinceDesc:
		cmp, dir = "<", " DESC"
	}
	order = sinceKey + dir + ", account_id" + dir
	return order, func(bind func(any) string) string {
		if after.AccountID == "" {
			return "TRUE"
		}
		since := clampedNanos(after.StateSince)
		return sinceKey + " " + cmp + "= " + bind(since) + " AND (" + sinceKey + " " + cmp + " " + bind(since) +
			" OR account_id " + cmp + " " + bind(after.AccountID) + ")"
	}
}

// oneOf is the condition that col is one of vals, binding them with bind.
// One value is an equality, which the index on (col, account_id) serves in
// page order: PostgreSQL's planner does not see that through = ANY, and at
// a million records scans the primary key instead, filtering every row of
// the other values. For more, a database with arrays binds one (= ANY), so
// that the statement is the same for any number of values; SQLite has none
// and binds an IN list.
func oneOf[T any](d Dialect, col string, vals []T, bind func(any) string) string {
	switch {
	case len(vals) == 1:
		return col + " = " + bind(vals[0])
	case d.arrays:
		return col + " = ANY(" + bind(vals) + ")"
	}
	params := make([]string, len(vals))
	for i, v := range vals {
		params[i] = bind(v)
	}
	return col + " IN (" + strings.Join(params, ", ") + ")"
}

// Reader gives a driver that embeds it its store.Store read methods, over
// the driver's read handle.
type Reader struct {
	guard *Guard
	q     Querier
	sql   *ReadSQL
}

// NewReader is the Reader of a driver: its guard, the Querier of its read
// handle, and its dialect's ReadSQL.
func NewReader(g *Guard, q Querier, sql *ReadSQL) Reader {
	return Reader{guard: g, q: q, sql: sql}
}

// GetHealth returns the account's record or store.ErrNotFound.
func (r Reader) GetHealth(ctx context.Context, accountID string) (health.Record, error) {
	const op = "get health"
	if err := r.guard.CheckOpen(op); err != nil {
		return health.Record{}, err
	}
	rec, found, err := queryOne(ctx, r.q, r.sql.record, []any{accountID}, ScanRecord)
	if err == nil && !found {
		err = accountNotFound(accountID)
	}
	if err != nil {
		return health.Record{}, r.guard.Fail(op, err)
	}
	return rec, nil
}

// ListHealth pages through the records matching q, in q's order.
func (r Reader) ListHealth(ctx context.Context, q store.HealthQuery) (store.HealthPage, error) {
	const op = "list health"
	if err := r.guard.CheckOpen(op); err != nil {
		return store.HealthPage{}, err
	}
	limit, after, err := q.Cursor()
	if err != nil {
		return store.HealthPage{}, r.guard.Fail(op, err)
	}
	query, args := r.sql.listHealth(q, after, limit+1)
	recs, more, err := queryPage(ctx, r.q, query, args, ScanRecord, limit, store.RecordBytes)
	if err != nil {
		return store.HealthPage{}, r.guard.Fail(op, err)
	}
	page := store.HealthPage{Records: recs}
	if more {
		page.NextPageToken = q.NextPageToken(recs[len(recs)-1])
	}
	return page, nil
}

// Summary counts all records by state and by current error code.
func (r Reader) Summary(ctx context.Context) (store.Summary, error) {
	const op = "summary"
	if err := r.guard.CheckOpen(op); err != nil {
		return store.Summary{}, err
	}
	counts, err := queryAll(ctx, r.q, r.sql.summary, nil, scanSummaryCount)
	if err != nil {
		return store.Summary{}, r.guard.Fail(op, err)
	}
	return summarize(counts), nil
}

// StaleCandidates lists the records whose data was last fresh before
// before, oldest first, up to limit.
func (r Reader) StaleCandidates(ctx context.Context, before time.Time, limit int) ([]store.StaleCandidate, error) {
	const op = "stale candidates"
	if err := r.guard.CheckOpen(op); err != nil {
		return nil, err
	}
	limit, err := store.PageLimit(limit)
	if err != nil {
		return nil, r.guard.Fail(op, err)
	}
	out, err := queryAll(ctx, r.q, r.sql.staleCandidates, []any{clampedNanos(before), limit}, func(sc Scanner) (c store.StaleCandidate, err error) {
		var at sql.NullInt64
		err = sc.Scan(&c.AccountID, &c.UserID, &at)
		c.FreshAsOf = FromNanos(at)
		return c, err
	})
	if err != nil {
		return nil, r.guard.Fail(op, err)
	}
	return out, nil
}

// CountChanges counts the changes of q's window by bucket and kind.
func (r Reader) CountChanges(ctx context.Context, q store.ChangeCountQuery) ([]store.ChangeCount, error) {
	const op = "count changes"
	if err := r.guard.CheckOpen(op); err != nil {
		return nil, err
	}
	if err := q.Check(); err != nil {
		return nil, r.guard.Fail(op, err)
	}
	from, width := clampedNanos(q.From), int64(q.Bucket)
	counts, err := queryAll(ctx, r.q, r.sql.countChanges, []any{from, width, from, clampedNanos(q.To)}, func(sc Scanner) (c store.ChangeCount, err error) {
		var bucket int64
		err = sc.Scan(&bucket, &c.Kind, &c.N)
		c.Start = time.Unix(0, from+bucket*width).UTC()
		return c, err
	})
	if err != nil {
		return nil, r.guard.Fail(op, err)
	}
	return counts, nil
}

// ListEntries pages through an account's timeline, oldest first, each entry
// with the change it caused.
func (r Reader) ListEntries(ctx context.Context, q store.EntryQuery) (store.EntryPage, error) {
	const op = "list entries"
	if err := r.guard.CheckOpen(op); err != nil {
		return store.EntryPage{}, err
	}
	limit, after, pruned, err := q.Cursor()
	if err != nil {
		return store.EntryPage{}, r.guard.Fail(op, err)
	}
	// Read before the page, so that a pass committed in between makes the
	// next page's token out of range rather than skip what it removed.
	now, err := queryInt64(ctx, r.q, r.sql.pruned, q.AccountID)
	if err == nil {
		err = q.CheckPruned(after, pruned, now)
	}
	if err != nil {
		return store.EntryPage{}, r.guard.Fail(op, err)
	}
	entries, more, err := queryPage(ctx, r.q, r.sql.entries, []any{q.AccountID, after, limit + 1}, ScanEntry, limit, store.EntryBytes)
	if err == nil && len(entries) == 0 && after == 0 {
		// Pruning keeps an account's newest entry, so only a first page
		// can be empty because the account is unknown.
		err = accountNotFound(q.AccountID)
	}
	if err != nil {
		return store.EntryPage{}, r.guard.Fail(op, err)
	}
	page := store.EntryPage{Entries: entries}
	if more {
		page.NextPageToken = q.NextPageToken(entries[len(entries)-1].Seq, now)
	}
	return page, nil
}

// ReadChanges returns up to limit changes with Seq > after, in Seq order,
// fewer past store.PageBytes (see queryPage);
// limit follows the page size rules (0 means store.DefaultPageSize).
func (r Reader) ReadChanges(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	const op = "read changes"
	if err := r.guard.CheckOpen(op); err != nil {
		return nil, err
	}
	limit, err := store.PageLimit(limit)
	if err != nil {
		return nil, r.guard.Fail(op, err)
	}
	changes, _, err := queryPage(ctx, r.q, r.sql.changes, []any{after, limit}, ScanChange, limit, store.ChangeBytes)
	if err != nil {
		return nil, r.guard.Fail(op, err)
	}
	return changes, nil
}

// LastChangeSeq returns the Seq of the newest committed change, 0 if none.
func (r Reader) LastChangeSeq(ctx context.Context) (int64, error) {
	return r.readSeq(ctx, "last change seq", r.sql.lastChangeSeq)
}

// ChangeSeqBefore returns the Seq just below the first change that occurred
// at or after t, or LastChangeSeq when there is none.
func (r Reader) ChangeSeqBefore(ctx context.Context, t time.Time) (int64, error) {
	return r.readSeq(ctx, "change seq before", r.sql.changeSeqBefore, Nanos(t))
}

// readSeq runs a statement that returns one sequence number.
func (r Reader) readSeq(ctx context.Context, op, query string, args ...any) (int64, error) {
	if err := r.guard.CheckOpen(op); err != nil {
		return 0, err
	}
	seq, err := queryInt64(ctx, r.q, query, args...)
	if err != nil {
		return 0, r.guard.Fail(op, err)
	}
	return seq, nil
}

// queryAll runs a query on q and scans every row with scan.
func queryAll[T any](ctx context.Context, q Querier, query string, args []any, scan func(Scanner) (T, error)) (vs []T, err error) {
	err = q.Query(ctx, query, args, func(rows Rows) (err error) {
		vs, err = Collect(rows, scan)
		return err
	})
	return vs, err
}

// queryPage runs a page's query, which selects up to limit+1 rows, and
// scans up to limit of them, fewer when their sizes would pass
// store.PageBytes: the row that would is left for the next page unless it
// is the first. more says whether rows were left. Rows are read one by one,
// so the page in memory is bounded as the one sent.
func queryPage[T any](ctx context.Context, q Querier, query string, args []any, scan func(Scanner) (T, error), limit int, size func(T) int) (page []T, more bool, err error) {
	err = q.Query(ctx, query, args, func(rows Rows) error {
		used := 0
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return err
			}
			n := size(v)
			if len(page) == limit || (len(page) > 0 && used+n > store.PageBytes) {
				more = true
				return nil
			}
			page, used = append(page, v), used+n
		}
		return rows.Err()
	})
	if err != nil {
		return nil, false, err
	}
	return page, more, nil
}

// accountNotFound is the error for an account the store holds nothing of.
func accountNotFound(accountID string) error {
	return fmt.Errorf("account %q: %w", accountID, store.ErrNotFound)
}

// summaryCount is one row of the summary query, which selects the columns
// (what, value, error code, count): a row per state (what 0, value the
// state, an empty error code), then a row per non-empty error code (what
// 1, value 0), then a row per known freshness (what 2, value the
// freshness).
type summaryCount struct {
	what, value int
	code        string
	n           int
}

func scanSummaryCount(sc Scanner) (c summaryCount, err error) {
	err = sc.Scan(&c.what, &c.value, &c.code, &c.n)
	return c, err
}

// summarize adds up the rows of the summary query.
func summarize(counts []summaryCount) store.Summary {
	sum := store.Summary{ByState: map[health.State]int{}, ByErrorCode: map[string]int{}, ByFreshness: map[health.Freshness]int{}}
	for _, c := range counts {
		switch c.what {
		case 0:
			sum.ByState[health.State(c.value)] = c.n
			sum.Total += c.n
		case 1:
			sum.ByErrorCode[c.code] = c.n
		default:
			sum.ByFreshness[health.Freshness(c.value)] = c.n
		}
	}
	return sum
}
