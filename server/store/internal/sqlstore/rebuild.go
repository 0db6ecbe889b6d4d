package sqlstore

import (
	"context"
	"errors"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// RebuildSQL is the SQL of a rebuild in one dialect.
type RebuildSQL struct {
	accountsAfter, accountEntries, setOutcome, setDerivation string
	checkpoints                                              CheckpointSQL
	// CountLogAccounts runs on a driver's read handle.
	CountLogAccounts string
}

// NewRebuildSQL builds the rebuild's statements for placeholder style p.
func NewRebuildSQL(p Placeholder) RebuildSQL {
	return RebuildSQL{
		// account_id > '' also leaves out the entries that name none.
		accountsAfter:  "SELECT DISTINCT account_id FROM entries WHERE account_id > " + p(1) + " ORDER BY account_id LIMIT " + p(2),
		accountEntries: SelectEntriesSQL + " WHERE account_id > " + p(1) + " AND account_id <= " + p(2) + " ORDER BY account_id, seq",
		setOutcome:     "UPDATE entries SET outcome = " + p(1) + " WHERE seq = " + p(2),
		setDerivation: "UPDATE derivation SET rules_version = " + p(1) + ", rebuild_version = " + p(2) +
			", rebuilt_until = NULLIF(" + p(3) + ", '') WHERE id = 1",
		CountLogAccounts: "SELECT COUNT(DISTINCT account_id) FROM entries WHERE account_id <> ''",
		checkpoints:      NewCheckpointSQL(p),
	}
}

// DerivationSQL reads the derivation row; it binds nothing.
const DerivationSQL = "SELECT rules_version, rebuild_version, COALESCE(rebuilt_until, '') FROM derivation WHERE id = 1"

// SelectEntriesSQL selects every entry, body included; a caller adds its
// WHERE clause.
var SelectEntriesSQL = "SELECT " + Cols("entries", EntryCols) + " FROM entries"

// ScanDerivation scans a row of DerivationSQL.
func ScanDerivation(sc Scanner) (d store.Derivation, err error) {
	err = sc.Scan(&d.RulesVersion, &d.RebuildVersion, &d.RebuiltUntil)
	return d, err
}

// RebuildTx is store.RebuildTx over a driver's ingest Tx and a querier of
// the same transaction.
type RebuildTx struct {
	store.Tx
	Q   TxQuerier
	SQL *RebuildSQL
}

var _ store.RebuildTx = RebuildTx{}

func (t RebuildTx) AccountsAfter(ctx context.Context, after string, limit int) ([]string, error) {
	return accountsAfter(ctx, t.Q, t.SQL, after, limit)
}

func (t RebuildTx) AccountEntries(ctx context.Context, after, last string) ([]store.Entry, error) {
	return accountEntries(ctx, t.Q, t.SQL, after, last)
}

func (t RebuildTx) Derivation(ctx context.Context) (store.Derivation, error) {
	return readDerivation(ctx, t.Q)
}

// accountsAfter lists up to limit account ids the log names, above after.
func accountsAfter(ctx context.Context, q Querier, sql *RebuildSQL, after string, limit int) ([]string, error) {
	return queryAll(ctx, q, sql.accountsAfter, []any{after, limit}, func(sc Scanner) (id string, err error) {
		err = sc.Scan(&id)
		return id, err
	})
}

// accountEntries returns the timelines of the accounts above after up to
// last, by account, then by Seq; bodies included, changes not.
func accountEntries(ctx context.Context, q Querier, sql *RebuildSQL, after, last string) ([]store.Entry, error) {
	return queryAll(ctx, q, sql.accountEntries, []any{after, last}, scanBareEntry)
}

// readDerivation reads the derivation row.
func readDerivation(ctx context.Context, q Querier) (store.Derivation, error) {
	d, found, err := queryOne(ctx, q, DerivationSQL, nil, ScanDerivation)
	if err == nil && !found {
		err = errors.New("the derivation row is missing")
	}
	return d, err
}

func (t RebuildTx) SetOutcome(ctx context.Context, seq int64, o health.Outcome) error {
	return t.Q.Exec(ctx, t.SQL.setOutcome, o, seq)
}

func (t RebuildTx) SetDerivation(ctx context.Context, d store.Derivation) error {
	return t.Q.Exec(ctx, t.SQL.setDerivation, d.RulesVersion, d.RebuildVersion, d.RebuiltUntil)
}

// scanBareEntry scans a row of EntryCols alone.
func scanBareEntry(sc Scanner) (store.Entry, error) {
	var er entryRow
	if err := sc.Scan(er.dest()...); err != nil {
		return store.Entry{}, err
	}
	return er.entry()
}

// Rebuilder gives a driver that embeds it its store.Store Derivation and
// Rebuild methods, over the driver's own parts.
type Rebuilder struct {
	guard   *Guard
	driver  store.RebuildDriver
	opts    store.Options
	readRow func(ctx context.Context, query string) Scanner
}

// NewRebuilder is the Rebuilder of a driver: its guard, its RebuildDriver,
// its options, and readRow, which runs a one-row query on its read handle.
func NewRebuilder(g *Guard, d store.RebuildDriver, opts store.Options, readRow func(ctx context.Context, query string) Scanner) Rebuilder {
	return Rebuilder{guard: g, driver: d, opts: opts, readRow: readRow}
}

// Derivation says under which rules the records were derived.
func (r Rebuilder) Derivation(ctx context.Context) (store.Derivation, error) {
	const op = "derivation"
	if err := r.guard.CheckOpen(op); err != nil {
		return store.Derivation{}, err
	}
	d, err := ScanDerivation(r.readRow(ctx, DerivationSQL))
	if err != nil {
		return d, r.guard.Fail(op, err)
	}
	return d, nil
}

// Rebuild runs store.RunRebuild.
func (r Rebuilder) Rebuild(ctx context.Context, o store.RebuildOptions) (store.RebuildProgress, error) {
	const op = "rebuild"
	if err := r.guard.CheckOpen(op); err != nil {
		return store.RebuildProgress{}, err
	}
	p, err := store.RunRebuild(ctx, r.driver, o, r.opts)
	if err != nil {
		return p, r.guard.Fail(op, err)
	}
	return p, nil
}
