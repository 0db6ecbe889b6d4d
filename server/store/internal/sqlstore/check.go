package sqlstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// CheckSQL is the SQL of a check in one dialect.
type CheckSQL struct {
	rebuild                                             *RebuildSQL
	accountChanges, accountRecords                      string
	orphanChanges, changesOutOfOrder, recordsWithoutLog string
	miscounted, freshnessMiscounted                     string
}

// NewCheckSQL builds a check's statements for placeholder style p, beside
// the rebuild's, whose account and entry reads it shares.
func NewCheckSQL(p Placeholder, rebuild *RebuildSQL) CheckSQL {
	return CheckSQL{
		rebuild: rebuild,
		// Through the entries, whose index is by account; a change that
		// names another account than its entry is LogProblems'.
		accountChanges: "SELECT " + Cols("c", ChangeCols) + " FROM entries e JOIN changes c ON c.entry_seq = e.seq" +
			" WHERE e.account_id > " + p(1) + " AND e.account_id <= " + p(2) + " ORDER BY c.seq",
		accountRecords: selectRecordsSQL + " WHERE account_id > " + p(1) + " AND account_id <= " + p(2),
		orphanChanges: "SELECT c.seq, c.account_id, c.entry_seq, COALESCE(e.account_id, '') FROM changes c" +
			" LEFT JOIN entries e ON e.seq = c.entry_seq WHERE e.seq IS NULL OR e.account_id <> c.account_id ORDER BY c.seq LIMIT " + p(1),
		changesOutOfOrder: "SELECT seq, account_id, entry_seq, previous FROM" +
			" (SELECT seq, account_id, entry_seq, LAG(entry_seq) OVER (ORDER BY seq) AS previous FROM changes) ordered" +
			" WHERE entry_seq <= previous ORDER BY seq LIMIT " + p(1),
		recordsWithoutLog: "SELECT account_id FROM records r WHERE NOT EXISTS" +
			" (SELECT 1 FROM entries e WHERE e.account_id = r.account_id) ORDER BY account_id LIMIT " + p(1),
		// The counts Summary reads against a count of the records, in one
		// statement: one snapshot, so ingests meanwhile agree with both.
		miscounted: "SELECT state, error_code, " + sumAs("kept") + ", " + sumAs("counted") + " FROM" +
			" (SELECT state, error_code, n AS kept, 0 AS counted FROM record_counts" +
			" UNION ALL SELECT state, error_code, 0, COUNT(*) FROM records GROUP BY state, error_code) AS u" +
			" GROUP BY state, error_code HAVING SUM(kept) <> SUM(counted) ORDER BY state, error_code LIMIT " + p(1),
		freshnessMiscounted: "SELECT freshness, " + sumAs("kept") + ", " + sumAs("counted") + " FROM" +
			" (SELECT freshness, n AS kept, 0 AS counted FROM freshness_counts" +
			" UNION ALL SELECT freshness, 0, COUNT(*) FROM records GROUP BY freshness) AS u" +
			" GROUP BY freshness HAVING SUM(kept) <> SUM(counted) ORDER BY freshness LIMIT " + p(1),
	}
}

// Checker gives a driver that embeds it its store.Store Check method.
type Checker struct {
	guard  *Guard
	driver checkDriver
	opts   store.Options
}

// NewChecker is the Checker of a driver: its guard, the Querier of its read
// handle, the check's SQL, its options, inReadTx, which runs fn in one
// read-only transaction of its read handle, and engine, which runs the
// database's own integrity checks (nil for none).
func NewChecker(g *Guard, q Querier, sql *CheckSQL, opts store.Options,
	inReadTx func(ctx context.Context, fn func(Querier) error) error,
	engine func(ctx context.Context, limit int) ([]string, error),
) Checker {
	return Checker{guard: g, opts: opts, driver: checkDriver{q: q, sql: sql, inReadTx: inReadTx, engine: engine}}
}

// Check runs store.RunCheck.
func (c Checker) Check(ctx context.Context, o store.CheckOptions) (store.CheckReport, error) {
	const op = "check"
	if err := c.guard.CheckOpen(op); err != nil {
		return store.CheckReport{}, err
	}
	r, err := store.RunCheck(ctx, c.driver, o, c.opts)
	if err != nil {
		return r, c.guard.Fail(op, err)
	}
	return r, nil
}

type checkDriver struct {
	q        Querier
	sql      *CheckSQL
	inReadTx func(ctx context.Context, fn func(Querier) error) error
	engine   func(ctx context.Context, limit int) ([]string, error)
}

func (d checkDriver) EngineProblems(ctx context.Context, limit int) ([]string, error) {
	if d.engine == nil {
		return nil, nil
	}
	return d.engine(ctx, limit)
}

func (d checkDriver) LogProblems(ctx context.Context, limit int) ([]store.Problem, error) {
	orphans, err := queryAll(ctx, d.q, d.sql.orphanChanges, []any{limit}, func(sc Scanner) (p store.Problem, err error) {
		var entrySeq int64
		var entryAccount string
		err = sc.Scan(&p.Seq, &p.AccountID, &entrySeq, &entryAccount)
		if entryAccount == "" {
			p.What = fmt.Sprintf("the change's entry %d is missing", entrySeq)
		} else {
			p.What = fmt.Sprintf("the change's entry %d is of account %q", entrySeq, entryAccount)
		}
		return p, err
	})
	if err != nil {
		return nil, err
	}
	disorder, err := queryAll(ctx, d.q, d.sql.changesOutOfOrder, []any{limit}, func(sc Scanner) (p store.Problem, err error) {
		var entrySeq, previous int64
		err = sc.Scan(&p.Seq, &p.AccountID, &entrySeq, &previous)
		p.What = fmt.Sprintf("the change's entry %d is not newer than the previous change's, %d: the change log is out of commit order", entrySeq, previous)
		return p, err
	})
	if err != nil {
		return nil, err
	}
	strays, err := queryAll(ctx, d.q, d.sql.recordsWithoutLog, []any{limit}, func(sc Scanner) (p store.Problem, err error) {
		err = sc.Scan(&p.AccountID)
		p.What = "a record is stored, the log holds no entry of the account"
		return p, err
	})
	if err != nil {
		return nil, err
	}
	miscounts, err := queryAll(ctx, d.q, d.sql.miscounted, []any{limit}, func(sc Scanner) (p store.Problem, err error) {
		var (
			state         health.State
			code          string
			kept, counted int64
		)
		err = sc.Scan(&state, &code, &kept, &counted)
		p.What = fmt.Sprintf("Summary's count of records in state %d with error code %q is %d, the records are %d: the counts the commits keep are off", state, code, kept, counted)
		return p, err
	})
	if err != nil {
		return nil, err
	}
	freshMiscounts, err := queryAll(ctx, d.q, d.sql.freshnessMiscounted, []any{limit}, func(sc Scanner) (p store.Problem, err error) {
		var f health.Freshness
		var kept, counted int64
		err = sc.Scan(&f, &kept, &counted)
		p.What = fmt.Sprintf("Summary's count of records of freshness %d is %d, the records are %d: the counts the commits keep are off", f, kept, counted)
		return p, err
	})
	return slices.Concat(orphans, disorder, strays, miscounts, freshMiscounts), err
}

// sumAs adds up a column as a 64-bit integer (PostgreSQL's SUM of a
// BIGINT is a NUMERIC), named name.
func sumAs(col string) string { return "CAST(SUM(" + col + ") AS BIGINT) AS " + col }

func (d checkDriver) CountLogAccounts(ctx context.Context) (int, error) {
	n, err := queryInt64(ctx, d.q, d.sql.rebuild.CountLogAccounts)
	return int(n), err
}

func (d checkDriver) Derivation(ctx context.Context) (store.Derivation, error) {
	return readDerivation(ctx, d.q)
}

func (d checkDriver) InReadTx(ctx context.Context, fn func(store.CheckTx) error) error {
	return d.inReadTx(ctx, func(q Querier) error { return fn(checkTx{q: q, sql: d.sql}) })
}

type checkTx struct {
	q   Querier
	sql *CheckSQL
}

var _ store.CheckTx = checkTx{}

func (t checkTx) AccountsAfter(ctx context.Context, after string, limit int) ([]string, error) {
	return accountsAfter(ctx, t.q, t.sql.rebuild, after, limit)
}

func (t checkTx) AccountEntries(ctx context.Context, after, last string) ([]store.Entry, error) {
	return accountEntries(ctx, t.q, t.sql.rebuild, after, last)
}

func (t checkTx) AccountChanges(ctx context.Context, after, last string) ([]store.Change, error) {
	return queryAll(ctx, t.q, t.sql.accountChanges, []any{after, last}, ScanChange)
}

func (t checkTx) AccountRecords(ctx context.Context, after, last string) ([]health.Record, error) {
	return queryAll(ctx, t.q, t.sql.accountRecords, []any{after, last}, ScanRecord)
}
