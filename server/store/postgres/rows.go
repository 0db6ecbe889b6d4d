package postgres

import (
	"database/sql"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// Column lists, in the order the codecs below read and write them. Each
// table is described once; the SQL is built from these. The codecs are the
// SQLite driver's: pgx, too, scans into database/sql's Null types.
var (
	recordCols = []string{
		"account_id", "user_id", "state", "error_code", "error_message",
		"remedy_action", "remedy_message", "remedy_link_account_id", "remedy_link_user_id",
		"state_since", "last_event_type", "last_event_at", "consecutive_failures",
		"ever_connected", "unconfirmed", "open_incident", "snapshot_at", "snapshot",
	}
	// entryCols are read back; an insert adds body_sha256.
	entryCols = []string{
		"seq", "source", "event", "name", "account_id", "user_id",
		"received_at", "outcome", "redeliveries", "actor", "body",
	}
	changeCols = []string{
		"seq", "entry_seq", "account_id", "user_id", "event",
		"kind", "previous_state", "state", "error_code", "error_message",
		"remedy_action", "remedy_message", "remedy_link_account_id", "remedy_link_user_id",
		"occurred_at",
	}
)

// cols lists columns for a SELECT, qualified with a table alias.
func cols(alias string, names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(alias + "." + n)
	}
	return b.String()
}

// insertSQL is an INSERT of names, bound to $1, $2, ... in order; with key
// set, an upsert that replaces every other column of the row with that key.
func insertSQL(table string, names []string, key string) string {
	params := make([]string, len(names))
	for i := range params {
		params[i] = "$" + strconv.Itoa(i+1)
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

// Times are stored as Unix nanoseconds, NULL for the zero time. Nanoseconds
// reach from 1677 to 2262: a time beyond is clamped to the nearest end, which
// keeps its order against every time a payroll account can carry.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

func nanos(t time.Time) any {
	switch {
	case t.IsZero():
		return nil
	case t.Before(minTime):
		return int64(math.MinInt64)
	case t.After(maxTime):
		return int64(math.MaxInt64)
	}
	return t.UnixNano()
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// blob stores an empty byte slice as NULL, so that it reads back as nil.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

type scanner interface{ Scan(dest ...any) error }

func recordArgs(r *health.Record) []any {
	return []any{
		r.AccountID, r.UserID, r.State, r.ErrorCode, r.ErrorMessage,
		r.Remedy.Action, r.Remedy.Message, r.Remedy.LinkAccountID, r.Remedy.LinkUserID,
		nanos(r.StateSince), r.LastEventType, nanos(r.LastEventAt), r.ConsecutiveFailures,
		r.EverConnected, r.Unconfirmed, r.OpenIncident, nanos(r.SnapshotAt), blob(r.Snapshot),
	}
}

func scanRecord(sc scanner) (health.Record, error) {
	var (
		r                                   health.Record
		stateSince, lastEventAt, snapshotAt sql.NullInt64
	)
	err := sc.Scan(
		&r.AccountID, &r.UserID, &r.State, &r.ErrorCode, &r.ErrorMessage,
		&r.Remedy.Action, &r.Remedy.Message, &r.Remedy.LinkAccountID, &r.Remedy.LinkUserID,
		&stateSince, &r.LastEventType, &lastEventAt, &r.ConsecutiveFailures,
		&r.EverConnected, &r.Unconfirmed, &r.OpenIncident, &snapshotAt, &r.Snapshot,
	)
	r.StateSince, r.LastEventAt, r.SnapshotAt = fromNanos(stateSince), fromNanos(lastEventAt), fromNanos(snapshotAt)
	return r, err
}

// entryArgs follows entryCols without seq, then the body's hash.
func entryArgs(e *store.Entry, h [32]byte) []any {
	return []any{
		e.Source, e.Event, e.Name, e.AccountID, e.UserID,
		nanos(e.ReceivedAt), e.Outcome, e.Redeliveries, e.Actor, blob(e.Body), h[:],
	}
}

// entryRow scans an entry; dest and entry go in pairs.
type entryRow struct {
	e          store.Entry
	receivedAt sql.NullInt64
}

func (r *entryRow) dest() []any {
	e := &r.e
	return []any{
		&e.Seq, &e.Source, &e.Event, &e.Name, &e.AccountID, &e.UserID,
		&r.receivedAt, &e.Outcome, &e.Redeliveries, &e.Actor, &e.Body,
	}
}

func (r *entryRow) entry() store.Entry {
	r.e.ReceivedAt = fromNanos(r.receivedAt)
	return r.e
}

// changeArgs follows changeCols without seq.
func changeArgs(c *store.Change) []any {
	return []any{
		c.EntrySeq, c.AccountID, c.UserID, c.Event,
		c.Kind, c.PreviousState, c.State, c.ErrorCode, c.ErrorMessage,
		c.Remedy.Action, c.Remedy.Message, c.Remedy.LinkAccountID, c.Remedy.LinkUserID,
		nanos(c.OccurredAt),
	}
}

// changeRow scans a change, or the NULLs a LEFT JOIN gives an entry that
// has none; dest and change go in pairs.
type changeRow struct {
	seq, entrySeq, kind, previousState, state, remedyAction, occurredAt sql.NullInt64
	accountID, userID, event, errorCode, errorMessage                   sql.NullString
	remedyMessage, remedyLinkAccountID, remedyLinkUserID                sql.NullString
}

func (r *changeRow) dest() []any {
	return []any{
		&r.seq, &r.entrySeq, &r.accountID, &r.userID, &r.event,
		&r.kind, &r.previousState, &r.state, &r.errorCode, &r.errorMessage,
		&r.remedyAction, &r.remedyMessage, &r.remedyLinkAccountID, &r.remedyLinkUserID,
		&r.occurredAt,
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
			OccurredAt: fromNanos(r.occurredAt),
		},
	}
}
