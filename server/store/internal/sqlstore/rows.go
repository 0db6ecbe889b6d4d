// Package sqlstore is what the SQL drivers (sqlite, postgres) share: the
// column lists and the codecs that bind and scan them, the time encoding,
// the reads (Reader), rebuilds (Rebuilder) and migrations (Schema), and
// the wrapping of errors around Close. The shared SQL is built for a
// Dialect and runs on a driver's handle through a Querier; connections,
// transactions, locking, the writes of an ingest and the SQL where the
// dialects really differ stay in the drivers.
//
// The codecs scan into database/sql's Null types, which pgx scans into too,
// so the same code reads rows from *sql.Rows and pgx.Rows.
package sqlstore

import (
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// Column lists, in the order the codecs below read and write them. Each
// table is described once; the SQL is built from these.
var (
	RecordCols = []string{
		"account_id", "user_id", "state", "error_code", "error_message",
		"remedy_action", "remedy_message", "remedy_link_account_id", "remedy_link_user_id",
		"state_since", "last_event_type", "last_event_at", "consecutive_failures",
		"ever_connected", "unconfirmed", "incident_state", "snapshot_at", "snapshot", "snapshot_received_at",
		"confirmed_at", "snapshot_codec", "item", "item_outage",
		"freshness", "freshness_since", "failed_datasets", "refresh_disabled", "scanned_at", "stale_since", "fresh_as_of",
	}
	// EntryCols are read back; an insert adds body_sha256.
	EntryCols = []string{
		"seq", "source", "event", "name", "account_id", "user_id",
		"received_at", "outcome", "redeliveries", "actor", "body", "body_codec",
	}
	ChangeCols = []string{
		"seq", "entry_seq", "account_id", "user_id", "event",
		"kind", "previous_state", "state", "error_code", "error_message",
		"remedy_action", "remedy_message", "remedy_link_account_id", "remedy_link_user_id",
		"occurred_at", "item", "freshness", "previous_freshness", "failed_datasets",
	}
)

// selectRecordsSQL selects every record; a caller adds its WHERE clause.
var selectRecordsSQL = "SELECT " + strings.Join(RecordCols, ", ") + " FROM records"

// NotRedelivery is the condition on entries that a redelivery lookup
// keeps: a rebuild may rewrite a logged entry's outcome to DUPLICATE, and a
// replay then counts it as never logged, so the original a later copy is
// compared with must be the one the replay compares it with.
var NotRedelivery = "outcome <> " + strconv.Itoa(int(health.OutcomeDuplicate))

// LastByHashSQL selects the Seq and receipt time of the newest entry
// whose body hashes to the hash it binds, of those NotRedelivery keeps.
func LastByHashSQL(p Placeholder) string {
	return "SELECT seq, received_at FROM entries WHERE body_sha256 = " + p(1) + " AND " + NotRedelivery + " ORDER BY seq DESC LIMIT 1"
}

// GetRecordSQL selects the record of the account id it binds.
func GetRecordSQL(p Placeholder) string {
	return selectRecordsSQL + " WHERE account_id = " + p(1)
}

// GetRecordsWhereSQL selects the records that where (a condition on
// account_id in the driver's dialect) selects.
func GetRecordsWhereSQL(where string) string {
	return selectRecordsSQL + " WHERE " + where
}

// Cols lists columns for a SELECT, qualified with a table alias.
func Cols(alias string, names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(alias + "." + n)
	}
	return b.String()
}

// Placeholder is a dialect's bind parameter: the nth of a statement (from 1).
type Placeholder func(n int) string

// The placeholder styles of the drivers.
var (
	// Question is SQLite's: ?, ?, ...
	Question Placeholder = func(int) string { return "?" }
	// Dollar is PostgreSQL's: $1, $2, ...
	Dollar Placeholder = func(n int) string { return "$" + strconv.Itoa(n) }
)

// Dialect is what the shared SQL needs to know of a driver's database.
type Dialect struct {
	P Placeholder
	// arrays: the database binds a list as one array parameter.
	arrays bool
	// int64 is the type of a 64-bit integer column: PostgreSQL's INTEGER
	// has 32 bits.
	int64 string
	// tableOptions end a CREATE TABLE: SQLite's tables are STRICT, so that
	// a column holds values of its type only.
	tableOptions string
	// rowLocks: writers may run at once, so a claim locks the rows it
	// selects and skips those others locked (PostgreSQL). SQLite has one
	// writer at a time.
	rowLocks bool
	// castValues: a parameter in a VALUES list needs a cast to its
	// column's type (PostgreSQL types one as text).
	castValues bool
	// rowID names a row's physical identity (PostgreSQL's ctid, SQLite's
	// rowid): an update of rows a subquery selected looks each one up by
	// it, with no join for the planner to misjudge.
	rowID string
}

// rowIn is a condition that holds for the rows of the table whose rowID
// the subquery selects, each looked up directly: PostgreSQL plans
// "ctid = ANY(ARRAY(...))" as one TID scan after the subquery, where a
// join on the key, judged from a fresh table's missing statistics, was a
// nested loop over every pair (seconds of lag at 10 endpoints).
func (d Dialect) rowIn(subquery string) string {
	if d.arrays {
		return d.rowID + " = ANY(ARRAY(" + subquery + "))"
	}
	return d.rowID + " IN (" + subquery + ")"
}

// skipLocked ends a SELECT that takes the lock of strength on the rows of
// table it reads, skipping rows another transaction holds: "" without
// row locks.
func (d Dialect) skipLocked(strength, table string) string {
	if !d.rowLocks {
		return ""
	}
	return " FOR " + strength + " OF " + table + " SKIP LOCKED"
}

// Binder numbers a statement's arguments as its SQL is built, so that
// only the conditions a call needs appear in it.
type Binder struct {
	p    Placeholder
	Args []any
}

// NewBinder is a Binder in placeholder style p.
func NewBinder(p Placeholder) *Binder { return &Binder{p: p} }

// Bind adds v to the arguments and returns its placeholder.
func (b *Binder) Bind(v any) string {
	b.Args = append(b.Args, v)
	return b.p(len(b.Args))
}

// The dialects of the drivers.
var (
	SQLite     = Dialect{P: Question, int64: "INTEGER", tableOptions: " STRICT", rowID: "rowid"}
	PostgreSQL = Dialect{P: Dollar, arrays: true, int64: "BIGINT", rowLocks: true, castValues: true, rowID: "ctid"}
)

// InsertSQL is an INSERT of names, bound in order; with key set, an upsert
// that replaces every other column of the row with that key.
func InsertSQL(p Placeholder, table string, names []string, key string) string {
	params := make([]string, len(names))
	for i := range params {
		params[i] = p(i + 1)
	}
	q := "INSERT INTO " + table + " (" + strings.Join(names, ", ") + ") VALUES (" + strings.Join(params, ", ") + ")"
	if key == "" {
		return q
	}
	set := make([]string, 0, len(names)-1)
	for _, n := range names {
		if n != key {
			set = append(set, n+" = excluded."+n)
		}
	}
	return q + " ON CONFLICT (" + key + ") DO UPDATE SET " + strings.Join(set, ", ")
}

// PutRecordSQL inserts or replaces a record; it binds RecordArgs.
func PutRecordSQL(p Placeholder) string {
	return InsertSQL(p, "records", RecordCols, "account_id")
}

// AppendEntrySQL inserts an entry; it binds EntryArgs.
func AppendEntrySQL(p Placeholder) string {
	return InsertSQL(p, "entries", append(slices.Clone(EntryCols[1:]), "body_sha256"), "")
}

// AppendChangeSQL inserts a change; it binds ChangeArgs.
func AppendChangeSQL(p Placeholder) string {
	return InsertSQL(p, "changes", ChangeCols[1:], "")
}

// Times are stored as Unix nanoseconds, NULL for the zero time. Nanoseconds
// reach from 1677 to 2262: a time beyond is clamped to the nearest end, which
// keeps its order against every time a payroll account can carry.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// Nanos encodes t for a bind parameter.
func Nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return clampedNanos(t)
}

// clampedNanos is t in Unix nanoseconds, clamped to the range they reach.
func clampedNanos(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// FromNanos decodes a time that Nanos encoded, in UTC.
func FromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// Scanner is one row: *sql.Row, *sql.Rows, pgx.Row and pgx.Rows all are.
type Scanner interface{ Scan(dest ...any) error }

// RecordArgs follows RecordCols.
func RecordArgs(r *health.Record) []any {
	snapshot, codec := packBlob(r.Snapshot)
	return []any{
		r.AccountID, r.UserID, r.State, r.ErrorCode, r.ErrorMessage,
		r.Remedy.Action, r.Remedy.Message, r.Remedy.LinkAccountID, r.Remedy.LinkUserID,
		Nanos(r.StateSince), r.LastEventType, Nanos(r.LastEventAt), r.ConsecutiveFailures,
		r.EverConnected, r.Unconfirmed, r.IncidentState, Nanos(r.SnapshotAt), snapshot, Nanos(r.SnapshotReceivedAt),
		Nanos(r.ConfirmedAt), codec, r.Item, r.ItemOutage,
		r.Freshness, Nanos(r.FreshnessSince), joinDatasets(r.FailedDatasets), r.RefreshDisabled, Nanos(r.ScannedAt), Nanos(r.StaleSince), Nanos(r.FreshAsOf),
	}
}

// joinDatasets and splitDatasets encode a list of dataset names, which
// hold no comma (see webhook.Decode), as text; nil is ”.
func joinDatasets(names []string) string { return strings.Join(names, ",") }

func splitDatasets(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// ScanRecord scans a row of RecordCols.
func ScanRecord(sc Scanner) (health.Record, error) {
	var (
		r                                                       health.Record
		stateSince, lastEventAt, snapshotAt, snapshotReceivedAt sql.NullInt64
		confirmedAt                                             sql.NullInt64
		freshnessSince, scannedAt, staleSince, freshAsOf        sql.NullInt64
		failedDatasets                                          string
		snapshot                                                []byte
		codec                                                   int64
	)
	if err := sc.Scan(
		&r.AccountID, &r.UserID, &r.State, &r.ErrorCode, &r.ErrorMessage,
		&r.Remedy.Action, &r.Remedy.Message, &r.Remedy.LinkAccountID, &r.Remedy.LinkUserID,
		&stateSince, &r.LastEventType, &lastEventAt, &r.ConsecutiveFailures,
		&r.EverConnected, &r.Unconfirmed, &r.IncidentState, &snapshotAt, &snapshot, &snapshotReceivedAt,
		&confirmedAt, &codec, &r.Item, &r.ItemOutage,
		&r.Freshness, &freshnessSince, &failedDatasets, &r.RefreshDisabled, &scannedAt, &staleSince, &freshAsOf,
	); err != nil {
		return r, err
	}
	r.FreshnessSince, r.ScannedAt, r.StaleSince, r.FreshAsOf = FromNanos(freshnessSince), FromNanos(scannedAt), FromNanos(staleSince), FromNanos(freshAsOf)
	r.FailedDatasets = splitDatasets(failedDatasets)
	r.StateSince, r.LastEventAt, r.SnapshotAt = FromNanos(stateSince), FromNanos(lastEventAt), FromNanos(snapshotAt)
	r.SnapshotReceivedAt, r.ConfirmedAt = FromNanos(snapshotReceivedAt), FromNanos(confirmedAt)
	var err error
	if r.Snapshot, err = unpackBlob(snapshot, codec); err != nil {
		err = fmt.Errorf("record of account %q: %w", r.AccountID, err)
	}
	return r, err
}

// EntryArgs follows EntryCols without seq, then the body's hash.
func EntryArgs(e *store.Entry, h [32]byte) []any {
	body, codec := packBlob(e.Body)
	return []any{
		e.Source, e.Event, e.Name, e.AccountID, e.UserID,
		Nanos(e.ReceivedAt), e.Outcome, e.Redeliveries, e.Actor, body, codec, h[:],
	}
}

// ScanEntry scans a row of EntryCols followed by ChangeCols: an entry with
// the change it caused, LEFT JOINed (NULLs when it caused none).
func ScanEntry(sc Scanner) (store.Entry, error) {
	var (
		er entryRow
		cr changeRow
	)
	if err := sc.Scan(append(er.dest(), cr.dest()...)...); err != nil {
		return store.Entry{}, err
	}
	e, err := er.entry()
	e.Change = cr.change()
	return e, err
}

// entryRow scans an entry; dest and entry go in pairs.
type entryRow struct {
	e          store.Entry
	receivedAt sql.NullInt64
	body       []byte
	bodyCodec  int64
}

func (r *entryRow) dest() []any {
	e := &r.e
	return []any{
		&e.Seq, &e.Source, &e.Event, &e.Name, &e.AccountID, &e.UserID,
		&r.receivedAt, &e.Outcome, &e.Redeliveries, &e.Actor, &r.body, &r.bodyCodec,
	}
}

func (r *entryRow) entry() (store.Entry, error) {
	r.e.ReceivedAt = FromNanos(r.receivedAt)
	var err error
	if r.e.Body, err = unpackBlob(r.body, r.bodyCodec); err != nil {
		err = fmt.Errorf("entry %d: %w", r.e.Seq, err)
	}
	return r.e, err
}

// ChangeArgs follows ChangeCols without seq.
func ChangeArgs(c *store.Change) []any {
	return []any{
		c.EntrySeq, c.AccountID, c.UserID, c.Event,
		c.Kind, c.PreviousState, c.State, c.ErrorCode, c.ErrorMessage,
		c.Remedy.Action, c.Remedy.Message, c.Remedy.LinkAccountID, c.Remedy.LinkUserID,
		Nanos(c.OccurredAt), c.Item, c.Freshness, c.PreviousFreshness, joinDatasets(c.FailedDatasets),
	}
}

// ScanChange scans a row of ChangeCols.
func ScanChange(sc Scanner) (store.Change, error) {
	var cr changeRow
	if err := sc.Scan(cr.dest()...); err != nil {
		return store.Change{}, err
	}
	return *cr.change(), nil
}

// changeRow scans a change, or the NULLs a LEFT JOIN gives an entry that
// has none; dest and change go in pairs.
type changeRow struct {
	seq, entrySeq, kind, previousState, state, remedyAction, occurredAt sql.NullInt64
	accountID, userID, event, errorCode, errorMessage, item             sql.NullString
	remedyMessage, remedyLinkAccountID, remedyLinkUserID                sql.NullString
	freshness, previousFreshness                                        sql.NullInt64
	failedDatasets                                                      sql.NullString
}

func (r *changeRow) dest() []any {
	return []any{
		&r.seq, &r.entrySeq, &r.accountID, &r.userID, &r.event,
		&r.kind, &r.previousState, &r.state, &r.errorCode, &r.errorMessage,
		&r.remedyAction, &r.remedyMessage, &r.remedyLinkAccountID, &r.remedyLinkUserID,
		&r.occurredAt, &r.item, &r.freshness, &r.previousFreshness, &r.failedDatasets,
	}
}

// change is nil when the row held no change.
func (r *changeRow) change() *store.Change {
	if !r.seq.Valid {
		return nil
	}
	return &store.Change{
		Seq:       r.seq.Int64,
		EntrySeq:  r.entrySeq.Int64,
		Event:     r.event.String,
		AccountID: r.accountID.String,
		UserID:    r.userID.String,
		Item:      r.item.String,
		Transition: health.Transition{
			Kind:          health.Kind(r.kind.Int64),
			PreviousState: health.State(r.previousState.Int64),
			State:         health.State(r.state.Int64),
			ErrorCode:     r.errorCode.String,
			ErrorMessage:  r.errorMessage.String,
			Remedy: health.Remedy{
				Action:        health.Action(r.remedyAction.Int64),
				Message:       r.remedyMessage.String,
				LinkAccountID: r.remedyLinkAccountID.String,
				LinkUserID:    r.remedyLinkUserID.String,
			},
			OccurredAt:        FromNanos(r.occurredAt),
			Freshness:         health.Freshness(r.freshness.Int64),
			PreviousFreshness: health.Freshness(r.previousFreshness.Int64),
			FailedDatasets:    splitDatasets(r.failedDatasets.String),
		},
	}
}
