package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
)

// DefaultRemovedRetention is how long the bodies and account objects of a
// removed account are kept: the provider deletes all its data when a user
// revokes access or an account is deleted, and so do we, after a delay that
// leaves time to investigate.
const DefaultRemovedRetention = 30 * 24 * time.Hour

// DefaultPruneBatch is how many accounts one pruning transaction handles:
// small, so that it holds ingests up for no longer than a small ingest.
const DefaultPruneBatch = 50

// PruneMessageBatch is how many outbound messages one pruning transaction
// removes.
const PruneMessageBatch = 500

// Checkpoint is where pruning left an account's log: Record is what
// replaying its entries up to ThroughSeq derived. Those entries have lost
// their bodies (or, when they made no transition, been deleted), so a
// replay (Rebuild, Check) starts from Record and replays only the entries
// after ThroughSeq. An account never pruned has none: the zero Checkpoint
// with its AccountID.
type Checkpoint struct {
	AccountID  string
	ThroughSeq int64
	Record     health.Record // State StateUnknown when the entries derived none
}

// PruneOptions say what a pruning pass removes (see RunPrune). A zero
// duration prunes nothing of its kind.
type PruneOptions struct {
	// Retention: entries received longer ago lose their bodies (webhook
	// deliveries and API actions), and webhook entries that made no
	// transition go altogether; so do outbound messages of changes that
	// occurred longer ago, once delivered or dead-lettered, with their
	// attempts (a replay reaches back as far as the retention).
	Retention time.Duration
	// RemovedRetention: accounts removed longer ago lose every body and
	// their account object.
	RemovedRetention time.Duration
	// Decode is RebuildOptions.Decode: pruning replays what it prunes to
	// keep the account's Checkpoint.
	Decode func(Entry) (health.Delivery, error)
	// Now is the time the ages count from; time.Now when nil.
	Now func() time.Time
	// BatchSize is how many accounts one transaction prunes; 0 means
	// DefaultPruneBatch.
	BatchSize int
	// Progress, when set, is called after each committed batch with what
	// the pass removed so far.
	Progress func(PruneReport)
}

// PruneReport counts what a pass removed.
type PruneReport struct {
	Accounts    int   // accounts pruned
	Deleted     int   // entries deleted
	Stripped    int   // entries kept without their body: transitions, API actions, each account's newest
	Objects     int   // account objects removed from removed accounts' records
	Bytes       int64 // bytes of the bodies and objects removed
	Undecodable int   // entries pruned that no longer decoded: left out of the checkpoint's replay, as a rebuild leaves them out
	Messages    int   // outbound messages removed, delivered or dead-lettered, with their attempts
}

func (r *PruneReport) add(o PruneReport) {
	r.Accounts += o.Accounts
	r.Deleted += o.Deleted
	r.Stripped += o.Stripped
	r.Objects += o.Objects
	r.Bytes += o.Bytes
	r.Undecodable += o.Undecodable
	r.Messages += o.Messages
}

// PruneDriver is what a driver gives RunPrune.
type PruneDriver interface {
	// InWriteTx runs fn in one write transaction, serialised with ingests
	// as Ingest's are, and commits it when fn returns nil.
	InWriteTx(ctx context.Context, fn func(PruneTx) error) error
}

// PruneTx is a write transaction of a pruning pass.
type PruneTx interface {
	Tx
	// AgedAccounts lists up to limit accounts that have entries received
	// before t that still hold a body, webhook or API.
	AgedAccounts(ctx context.Context, before time.Time, limit int) ([]string, error)
	// RemovedAccounts lists up to limit accounts removed before t (their
	// record's StateSince) that still hold a body or an account object.
	RemovedAccounts(ctx context.Context, before time.Time, limit int) ([]string, error)
	// LastSeq is the Seq of the account's newest entry received before t,
	// or of its newest entry when t is zero; 0 when it has none.
	LastSeq(ctx context.Context, accountID string, before time.Time) (int64, error)
	// EntriesBetween returns the account's entries above after up to
	// through, by Seq, bodies included, changes not.
	EntriesBetween(ctx context.Context, accountID string, after, through int64) ([]Entry, error)
	// Checkpoint returns the account's checkpoint, the zero one with its
	// AccountID when it has none.
	Checkpoint(ctx context.Context, accountID string) (Checkpoint, error)
	// PutCheckpoint inserts or replaces the account's checkpoint.
	PutCheckpoint(ctx context.Context, cp Checkpoint) error
	// PruneEntries removes the bodies of the account's webhook and API
	// entries up to through and deletes those of them that are webhook
	// entries without a change, except the account's newest entry, so
	// that the log still names the account. It reports Deleted, Stripped
	// and Bytes.
	PruneEntries(ctx context.Context, accountID string, through int64) (PruneReport, error)
	// PruneMessages removes up to limit outbound messages, delivered or
	// dead-lettered, of changes that occurred before t, with their
	// attempts and the bodies no message needs any more, and returns how
	// many it removed. Pending messages stay, however old.
	PruneMessages(ctx context.Context, before time.Time, limit int) (int, error)
}

// RunPrune is one pruning pass, as drivers' Prune run it: first the entries
// older than o.Retention, then the removed accounts older than
// o.RemovedRetention, a batch of accounts per write transaction, so that
// ingests go on between batches. Before an account's entries lose their
// bodies, they are replayed from its checkpoint into a new one (see
// Checkpoint): a rebuild and a check replay the rest from there and derive
// the same record. Changes are never pruned, so every stream cursor stays
// valid, and neither are API actions (the audit trail), nor anything of an
// account's record but a removed account's object. Last come the
// outbound messages older than o.Retention that are done with.
//
// A pass is idempotent: what it removed is not selected again, so passes
// in several processes at once (replicas sharing PostgreSQL) serialise on
// the write transactions and the later finds less or nothing to do.
func RunPrune(ctx context.Context, d PruneDriver, o PruneOptions, opts Options) (PruneReport, error) {
	var total PruneReport
	if o.Decode == nil {
		return total, errors.New("prune: no decoder")
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	batch := o.BatchSize
	if batch <= 0 {
		batch = DefaultPruneBatch
	}
	p := pruner{decode: o.Decode, window: opts.redeliveryWindow(), rules: opts.RulesOrCurrent()}
	t := now()
	passes := []struct {
		keep     time.Duration
		accounts func(PruneTx) ([]string, error)
		purge    bool
	}{
		{o.Retention, func(tx PruneTx) ([]string, error) { return tx.AgedAccounts(ctx, t.Add(-o.Retention), batch) }, false},
		{o.RemovedRetention, func(tx PruneTx) ([]string, error) { return tx.RemovedAccounts(ctx, t.Add(-o.RemovedRetention), batch) }, true},
	}
	for _, pass := range passes {
		if pass.keep <= 0 {
			continue
		}
		for {
			var r PruneReport
			err := d.InWriteTx(ctx, func(tx PruneTx) error {
				r = PruneReport{}
				ids, err := pass.accounts(tx)
				if err != nil {
					return err
				}
				before := t.Add(-pass.keep)
				if pass.purge {
					before = time.Time{} // every entry
				}
				for _, id := range ids {
					if err := p.account(ctx, tx, id, before, pass.purge, &r); err != nil {
						return fmt.Errorf("account %s: %w", id, err)
					}
				}
				return nil
			})
			if err != nil {
				return total, fmt.Errorf("prune: %w", err)
			}
			total.add(r)
			if o.Progress != nil {
				o.Progress(total)
			}
			// A batch that removed nothing would be selected again: the
			// pass is over (also when the store's data defies the
			// selection, which must not loop).
			if r.Accounts == 0 || r.Deleted+r.Stripped+r.Objects == 0 {
				break
			}
		}
	}
	if o.Retention <= 0 {
		return total, nil
	}
	return pruneMessages(ctx, d, t.Add(-o.Retention), o.Progress, total)
}

// pruneMessages removes the outbound messages of changes before t that
// are done with, a batch a write transaction, adding them to total.
func pruneMessages(ctx context.Context, d PruneDriver, before time.Time, progress func(PruneReport), total PruneReport) (PruneReport, error) {
	for {
		var n int
		err := d.InWriteTx(ctx, func(tx PruneTx) (err error) {
			n, err = tx.PruneMessages(ctx, before, PruneMessageBatch)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("prune: outbound messages: %w", err)
		}
		total.Messages += n
		if progress != nil && n > 0 {
			progress(total)
		}
		if n < PruneMessageBatch {
			return total, nil
		}
	}
}

type pruner struct {
	decode func(Entry) (health.Delivery, error)
	window time.Duration
	rules  Rules
}

// account prunes one account's entries received before before (all of
// them when zero), after moving its checkpoint past them; purge also
// removes its account object, from the record and the checkpoint.
func (p pruner) account(ctx context.Context, tx PruneTx, id string, before time.Time, purge bool, r *PruneReport) error {
	through, err := tx.LastSeq(ctx, id, before)
	if err != nil {
		return err
	}
	from, err := tx.Checkpoint(ctx, id)
	if err != nil {
		return err
	}
	// Arrival order need not be Seq order: never move a checkpoint back.
	through = max(through, from.ThroughSeq)
	entries, err := tx.EntriesBetween(ctx, id, from.ThroughSeq, through)
	if err != nil {
		return err
	}
	rp, err := replayAccount(ctx, from, entries, p.decode, p.window, p.rules)
	if err != nil {
		return err
	}
	cp := Checkpoint{AccountID: id, ThroughSeq: through, Record: rp.record}
	if purge {
		cp.Record.Snapshot = nil
		rec, err := tx.GetRecord(ctx, id)
		if err != nil {
			return err
		}
		if len(rec.Snapshot) > 0 {
			r.Objects++
			r.Bytes += int64(len(rec.Snapshot))
			rec.Snapshot = nil
			if err := tx.PutRecord(ctx, rec); err != nil {
				return err
			}
		}
	}
	if err := tx.PutCheckpoint(ctx, cp); err != nil {
		return err
	}
	pruned, err := tx.PruneEntries(ctx, id, through)
	if err != nil {
		return err
	}
	pruned.Accounts = 1
	pruned.Undecodable = len(rp.undecodable)
	r.add(pruned)
	return nil
}

// checkpoints are the checkpoints of a batch of accounts, by account.
type checkpoints map[string]Checkpoint

// checkpointsByAccount reads the checkpoints of the accounts above after
// up to last.
func checkpointsByAccount(ctx context.Context, tx interface {
	AccountCheckpoints(ctx context.Context, after, last string) ([]Checkpoint, error)
}, after, last string) (checkpoints, error) {
	list, err := tx.AccountCheckpoints(ctx, after, last)
	if err != nil {
		return nil, err
	}
	cps := make(checkpoints, len(list))
	for _, cp := range list {
		cps[cp.AccountID] = cp
	}
	return cps, nil
}

// of is the account's checkpoint, the zero one when pruning never reached
// it.
func (cps checkpoints) of(id string) Checkpoint {
	if cp, ok := cps[id]; ok {
		return cp
	}
	return Checkpoint{AccountID: id}
}
