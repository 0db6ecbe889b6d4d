package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/store"
)

// syncCols are the columns of sync_state but its id, in the order
// syncStateArgs and scanSyncState follow.
var syncCols = []string{"page_cursor", "done", "pages", "seen", "applied", "started_at", "updated_at", "finished_at"}

// SyncSQL is the SQL of the provider sync in one dialect: the backfill's
// state, and reconciliation's claims.
type SyncSQL struct {
	dialect Dialect

	syncState, saveSyncState, oldestUnconfirmed, expire string
}

// NewSyncSQL builds the sync's statements for dialect d.
func NewSyncSQL(d Dialect) SyncSQL {
	p := d.P
	return SyncSQL{
		dialect:       d,
		syncState:     "SELECT " + strings.Join(syncCols, ", ") + " FROM sync_state WHERE id = 1",
		saveSyncState: InsertSQL(p, "sync_state", append([]string{"id"}, syncCols...), "id"),
		// The records_unconfirmed index holds the candidates in order.
		oldestUnconfirmed: "SELECT last_event_at FROM records WHERE unconfirmed AND " + notRemoved +
			" AND last_event_at IS NOT NULL ORDER BY last_event_at LIMIT 1",
		// A few at a time, so a claim's work stays bounded; skipping those
		// another claim is deleting, so none waits for another.
		expire: "DELETE FROM leases WHERE account_id IN (SELECT account_id FROM leases WHERE expires_at <= " + p(1) +
			" ORDER BY expires_at LIMIT " + p(2) + d.skipLocked("UPDATE", "leases") + ")",
	}
}

// Fixed lists the statements a driver may prepare on its read handle.
func (s *SyncSQL) Fixed() []string { return []string{s.syncState, s.oldestUnconfirmed} }

// Syncer gives a driver that embeds it its store.Store methods of the
// provider sync: SyncState, SaveSyncState, ClaimDue and OldestUnconfirmed.
type Syncer struct {
	guard *Guard
	read  Querier
	write TxQuerier
	sql   *SyncSQL
	claim func(context.Context, Claim) ([]store.DueAccount, error)
}

// NewSyncer is the Syncer of a driver: its guard, the Queriers of its read
// and write handles, its dialect's SyncSQL, and claim, which leases the
// accounts of a claim atomically in the driver's way (see ClaimInTx and
// DueSQL).
func NewSyncer(g *Guard, read Querier, write TxQuerier, sql *SyncSQL, claim func(context.Context, Claim) ([]store.DueAccount, error)) Syncer {
	return Syncer{guard: g, read: read, write: write, sql: sql, claim: claim}
}

// SyncState returns the backfill's progress, the zero value before any.
func (y Syncer) SyncState(ctx context.Context) (store.SyncState, error) {
	const op = "sync state"
	if err := y.guard.CheckOpen(op); err != nil {
		return store.SyncState{}, err
	}
	st, _, err := queryOne(ctx, y.read, y.sql.syncState, nil, scanSyncState)
	if err != nil {
		return store.SyncState{}, y.guard.Fail(op, err)
	}
	return st, nil
}

// SaveSyncState replaces the backfill's progress; the last save wins.
func (y Syncer) SaveSyncState(ctx context.Context, st store.SyncState) error {
	const op = "save sync state"
	if err := y.guard.CheckOpen(op); err != nil {
		return err
	}
	if err := y.write.Exec(ctx, y.sql.saveSyncState, syncStateArgs(&st)...); err != nil {
		return y.guard.Fail(op, err)
	}
	return nil
}

// ClaimDue leases the accounts due for a fetch (see store.Store).
func (y Syncer) ClaimDue(ctx context.Context, q store.DueQuery) ([]store.DueAccount, error) {
	const op = "claim due"
	if err := y.guard.CheckOpen(op); err != nil {
		return nil, err
	}
	if err := q.Check(); err != nil {
		return nil, y.guard.Fail(op, err)
	}
	due, err := y.claim(ctx, NewClaim(q))
	if err != nil {
		return nil, y.guard.Fail(op, err)
	}
	return due, nil
}

// OldestUnconfirmed returns the oldest LastEventAt of the unconfirmed
// records that are not removed.
func (y Syncer) OldestUnconfirmed(ctx context.Context) (time.Time, bool, error) {
	const op = "oldest unconfirmed"
	if err := y.guard.CheckOpen(op); err != nil {
		return time.Time{}, false, err
	}
	at, found, err := queryOne(ctx, y.read, y.sql.oldestUnconfirmed, nil, func(sc Scanner) (n sql.NullInt64, err error) {
		err = sc.Scan(&n)
		return n, err
	})
	if err != nil {
		return time.Time{}, false, y.guard.Fail(op, err)
	}
	return FromNanos(at), found, nil
}

// syncStateArgs follows sync_state's columns: its id, then syncCols.
func syncStateArgs(st *store.SyncState) []any {
	return []any{
		1, st.Cursor, st.Done, st.Pages, st.Seen, st.Applied,
		Nanos(st.StartedAt), Nanos(st.UpdatedAt), Nanos(st.FinishedAt),
	}
}

func scanSyncState(sc Scanner) (st store.SyncState, err error) {
	var started, updated, finished sql.NullInt64
	err = sc.Scan(&st.Cursor, &st.Done, &st.Pages, &st.Seen, &st.Applied, &started, &updated, &finished)
	st.StartedAt, st.UpdatedAt, st.FinishedAt = FromNanos(started), FromNanos(updated), FromNanos(finished)
	return st, err
}
