package sqlstore

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// CheckpointSQL reads and writes pruning's checkpoints (store.Checkpoint).
type CheckpointSQL struct {
	accountCheckpoints, checkpoint, putCheckpoint string
}

// NewCheckpointSQL builds the checkpoints' statements for placeholder
// style p.
func NewCheckpointSQL(p Placeholder) CheckpointSQL {
	const cols = "SELECT account_id, through_seq, record FROM checkpoints"
	return CheckpointSQL{
		accountCheckpoints: cols + " WHERE account_id > " + p(1) + " AND account_id <= " + p(2),
		checkpoint:         cols + " WHERE account_id = " + p(1),
		putCheckpoint: "INSERT INTO checkpoints (account_id, through_seq, record) VALUES (" + p(1) + ", " + p(2) + ", " + p(3) + ")" +
			" ON CONFLICT (account_id) DO UPDATE SET through_seq = excluded.through_seq, record = excluded.record",
	}
}

// scanCheckpoint scans a checkpoint row. The record is kept as JSON: it
// is only ever read whole, by a replay, and so needs no columns of its own.
func scanCheckpoint(sc Scanner) (cp store.Checkpoint, err error) {
	var record []byte
	if err = sc.Scan(&cp.AccountID, &cp.ThroughSeq, &record); err != nil {
		return cp, err
	}
	err = json.Unmarshal(record, &cp.Record)
	return cp, err
}

func (t RebuildTx) AccountCheckpoints(ctx context.Context, after, last string) ([]store.Checkpoint, error) {
	return queryAll(ctx, t.Q, t.SQL.checkpoints.accountCheckpoints, []any{after, last}, scanCheckpoint)
}

func (t checkTx) AccountCheckpoints(ctx context.Context, after, last string) ([]store.Checkpoint, error) {
	return queryAll(ctx, t.q, t.sql.rebuild.checkpoints.accountCheckpoints, []any{after, last}, scanCheckpoint)
}

// PruneSQL is the SQL of pruning in one dialect.
type PruneSQL struct {
	d                                                                     Dialect
	p                                                                     Placeholder
	agedAccounts, removedAccounts, lastSeqBefore, lastSeq, entriesBetween string
	pruneStats, deleteEntries, stripBodies                                string
	endpoints, doneMessages, orphanBodies                                 string
}

// prunable are the entries whose bodies pruning removes; an API action's
// body is the account object the provider gave, a correction's is ours.
const prunable = "source IN ('webhook', 'api') AND body IS NOT NULL"

// deletable narrows prunable to the entries pruning deletes: webhook
// deliveries that made no transition, but never the account's newest.
const deletable = "source = 'webhook' AND NOT EXISTS (SELECT 1 FROM changes c WHERE c.entry_seq = entries.seq)" +
	" AND seq < (SELECT MAX(n.seq) FROM entries n WHERE n.account_id = entries.account_id)"

// NewPruneSQL builds pruning's statements for dialect d.
func NewPruneSQL(d Dialect) PruneSQL {
	p := d.P
	byAccount := " WHERE account_id = " + p(1) + " AND seq <= " + p(2) + " AND " + prunable
	// The endpoints are locked on PostgreSQL as fan-ins and requeues lock
	// them (Outboxer.lockEndpoints), so that neither runs meanwhile: a
	// fan-in that found a change's body stored, and so stored none, could
	// otherwise lose it to orphanBodies.
	endpoints := "SELECT id FROM notify_endpoints ORDER BY id"
	if d.rowLocks {
		endpoints += " FOR NO KEY UPDATE"
	}
	return PruneSQL{
		d: d, p: p, endpoints: endpoints,
		// The oldest first, from entries_prunable (migration 0005), which
		// holds only the entries that still have a body: the scan stops
		// after limit rows (a DISTINCT would read every old one first).
		agedAccounts: "SELECT account_id FROM entries WHERE " + prunable + " AND received_at < " + p(1) +
			" AND account_id <> '' ORDER BY received_at LIMIT " + p(2),
		removedAccounts: "SELECT account_id FROM records r WHERE state = " + strconv.Itoa(int(health.StateRemoved)) + " AND " + notHealthy + " AND state_since < " + p(1) +
			" AND (snapshot IS NOT NULL OR EXISTS (SELECT 1 FROM entries WHERE entries.account_id = r.account_id AND " + prunable + "))" +
			" ORDER BY account_id LIMIT " + p(2),
		lastSeqBefore:  "SELECT COALESCE(MAX(seq), 0) FROM entries WHERE account_id = " + p(1) + " AND received_at < " + p(2),
		lastSeq:        "SELECT COALESCE(MAX(seq), 0) FROM entries WHERE account_id = " + p(1),
		entriesBetween: SelectEntriesSQL + " WHERE account_id = " + p(1) + " AND seq > " + p(2) + " AND seq <= " + p(3) + " ORDER BY seq",
		pruneStats: "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0), COALESCE(SUM(CASE WHEN " + deletable + " THEN 1 ELSE 0 END), 0)" +
			" FROM entries" + byAccount,
		deleteEntries: "DELETE FROM entries" + byAccount + " AND " + deletable,
		stripBodies:   "UPDATE entries SET body = NULL" + byAccount,
		// Read from notify_messages_occurred (endpoint_id, occurred_at); 2
		// and 3 are store.MessageDelivered and MessageExhausted.
		doneMessages: "SELECT seq FROM notify_messages WHERE endpoint_id = " + p(1) + " AND occurred_at < " + p(2) +
			" AND status IN (2, 3) ORDER BY occurred_at LIMIT " + p(3),
		// Below every endpoint's oldest message (each found on its primary
		// key), no message needs a body: those of messages pruned, and of
		// endpoints deleted.
		orphanBodies: "DELETE FROM notify_bodies WHERE seq < COALESCE((SELECT MIN(x.oldest) FROM (SELECT (SELECT MIN(m.seq)" +
			" FROM notify_messages m WHERE m.endpoint_id = e.id) AS oldest FROM notify_endpoints e) AS x), " + p(1) + ")",
	}
}

// PruneTx is store.PruneTx over a driver's ingest Tx and a querier of the
// same transaction.
type PruneTx struct {
	store.Tx
	Q   TxQuerier
	SQL *PruneSQL
	CP  *CheckpointSQL
}

var _ store.PruneTx = PruneTx{}

func scanString(sc Scanner) (s string, err error) {
	err = sc.Scan(&s)
	return s, err
}

func (t PruneTx) AgedAccounts(ctx context.Context, before time.Time, limit int) ([]string, error) {
	ids, err := queryAll(ctx, t.Q, t.SQL.agedAccounts, []any{Nanos(before), limit}, scanString)
	slices.Sort(ids)
	return slices.Compact(ids), err
}

func (t PruneTx) RemovedAccounts(ctx context.Context, before time.Time, limit int) ([]string, error) {
	return queryAll(ctx, t.Q, t.SQL.removedAccounts, []any{Nanos(before), limit}, scanString)
}

func (t PruneTx) LastSeq(ctx context.Context, accountID string, before time.Time) (int64, error) {
	if before.IsZero() {
		return queryInt64(ctx, t.Q, t.SQL.lastSeq, accountID)
	}
	return queryInt64(ctx, t.Q, t.SQL.lastSeqBefore, accountID, Nanos(before))
}

func (t PruneTx) EntriesBetween(ctx context.Context, accountID string, after, through int64) ([]store.Entry, error) {
	return queryAll(ctx, t.Q, t.SQL.entriesBetween, []any{accountID, after, through}, scanBareEntry)
}

func (t PruneTx) Checkpoint(ctx context.Context, accountID string) (store.Checkpoint, error) {
	cp, found, err := queryOne(ctx, t.Q, t.CP.checkpoint, []any{accountID}, scanCheckpoint)
	if !found {
		cp = store.Checkpoint{AccountID: accountID}
	}
	return cp, err
}

func (t PruneTx) PutCheckpoint(ctx context.Context, cp store.Checkpoint) error {
	record, err := json.Marshal(cp.Record)
	if err != nil {
		return err
	}
	return t.Q.Exec(ctx, t.CP.putCheckpoint, cp.AccountID, cp.ThroughSeq, record)
}

func (t PruneTx) PruneEntries(ctx context.Context, accountID string, through int64) (r store.PruneReport, err error) {
	var bodies int
	_, _, err = queryOne(ctx, t.Q, t.SQL.pruneStats, []any{accountID, through}, func(sc Scanner) (struct{}, error) {
		return struct{}{}, sc.Scan(&bodies, &r.Bytes, &r.Deleted)
	})
	if err != nil || bodies == 0 {
		return r, err
	}
	r.Stripped = bodies - r.Deleted
	// Deleted first: what is left of the selection then loses its body.
	if err := t.Q.Exec(ctx, t.SQL.deleteEntries, accountID, through); err != nil {
		return r, err
	}
	return r, t.Q.Exec(ctx, t.SQL.stripBodies, accountID, through)
}

func (t PruneTx) PruneMessages(ctx context.Context, before time.Time, limit int) (int, error) {
	endpoints, err := queryAll(ctx, t.Q, t.SQL.endpoints, nil, scanString)
	if err != nil {
		return 0, err
	}
	removed := 0
	var newest int64
	for _, id := range endpoints {
		if removed == limit {
			break
		}
		seqs, err := queryAll(ctx, t.Q, t.SQL.doneMessages, []any{id, Nanos(before), limit - removed}, func(sc Scanner) (s int64, err error) {
			return s, sc.Scan(&s)
		})
		if err != nil {
			return removed, err
		}
		if len(seqs) == 0 {
			continue
		}
		b := NewBinder(t.SQL.p)
		where := " WHERE endpoint_id = " + b.Bind(id) + " AND " + oneOf(t.SQL.d, "seq", seqs, b.Bind)
		for _, table := range []string{"notify_attempts", "notify_messages"} {
			if err := t.Q.Exec(ctx, "DELETE FROM "+table+where, b.Args...); err != nil {
				return removed, err
			}
		}
		removed += len(seqs)
		newest = max(newest, slices.Max(seqs))
	}
	if removed == 0 {
		return 0, nil
	}
	// With no message left, every body up to the newest pruned goes.
	return removed, t.Q.Exec(ctx, t.SQL.orphanBodies, newest+1)
}

// Pruner gives a driver that embeds it its store.Store Prune method.
type Pruner struct {
	guard  *Guard
	driver store.PruneDriver
	opts   store.Options
}

// NewPruner is the Pruner of a driver: its guard, its PruneDriver and its
// options.
func NewPruner(g *Guard, d store.PruneDriver, opts store.Options) Pruner {
	return Pruner{guard: g, driver: d, opts: opts}
}

// Prune runs store.RunPrune.
func (p Pruner) Prune(ctx context.Context, o store.PruneOptions) (store.PruneReport, error) {
	const op = "prune"
	if err := p.guard.CheckOpen(op); err != nil {
		return store.PruneReport{}, err
	}
	r, err := store.RunPrune(ctx, p.driver, o, p.opts)
	if err != nil {
		return r, p.guard.Fail(op, err)
	}
	return r, nil
}
