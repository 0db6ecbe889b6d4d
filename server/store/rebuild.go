package store

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
)

// SourceRebuild marks the entries a rebuild appends to explain a corrected
// record. A rebuild never replays them: they are no deliveries.
const SourceRebuild Source = "rebuild"

// EventRebuilt is the event of a correction entry.
const EventRebuilt = "health.rebuilt"

// RebuildOptions say how to re-derive records from the log.
type RebuildOptions struct {
	// Decode turns a stored entry back into the delivery that was
	// committed (the store keeps bytes, not decoded deliveries). An error
	// leaves the entry out of the replay; it is counted in
	// RebuildProgress.Undecodable.
	Decode func(Entry) (health.Delivery, error)
	// Force rebuilds even when the records were derived under the store's
	// rules version already.
	Force bool
	// Progress, when set, is called after each committed batch of accounts
	// and once at the end (Done set).
	Progress func(RebuildProgress)
	// Now stamps correction entries and changes; time.Now when nil.
	Now func() time.Time
	// BatchSize is how many accounts one transaction rebuilds; 0 means
	// DefaultRebuildBatch.
	BatchSize int
}

// DefaultRebuildBatch keeps one rebuild transaction short enough not to
// hold ingests up for long while it holds the write lock.
const DefaultRebuildBatch = 200

// RebuildProgress counts a rebuild's work so far.
type RebuildProgress struct {
	Accounts    int  // accounts replayed in this run
	Total       int  // accounts in the log when the run began (an estimate for progress)
	Changed     int  // records rewritten
	Corrections int  // of which the state or error code changed: one change each
	Outcomes    int  // entries whose recorded outcome changed
	Undecodable int  // entries left out of the replay: Decode failed
	Resumed     bool // the run continued an unfinished one
	Skipped     bool // nothing to do: the records are derived under these rules already
	Done        bool // the records follow the rules (this run or another process finished)
}

// RebuildDriver is what a driver gives RunRebuild.
type RebuildDriver interface {
	// LockRebuild waits until no other rebuild of this store runs, in any
	// process, and holds that until unlock is called.
	LockRebuild(ctx context.Context) (unlock func(), err error)
	// CountLogAccounts counts the accounts the log names.
	CountLogAccounts(ctx context.Context) (int, error)
	// InWriteTx runs fn in one write transaction, serialised with ingests
	// as Ingest's are, and commits it when fn returns nil.
	InWriteTx(ctx context.Context, fn func(RebuildTx) error) error
}

// RebuildTx is a write transaction of a rebuild.
type RebuildTx interface {
	Tx
	// Derivation reads how the records are derived, in the transaction.
	Derivation(ctx context.Context) (Derivation, error)
	// AccountsAfter lists up to limit account ids the log names, above
	// after in the store's order.
	AccountsAfter(ctx context.Context, after string, limit int) ([]string, error)
	// AccountEntries returns the whole timelines of the accounts above
	// after up to last, by account in AccountsAfter's order, then by Seq;
	// bodies included, changes not.
	AccountEntries(ctx context.Context, after, last string) ([]Entry, error)
	// AccountCheckpoints returns the checkpoints of the accounts above
	// after up to last that pruning left (see Checkpoint).
	AccountCheckpoints(ctx context.Context, after, last string) ([]Checkpoint, error)
	// SetOutcome rewrites an entry's outcome.
	SetOutcome(ctx context.Context, seq int64, o health.Outcome) error
	// SetDerivation records how the records are derived.
	SetDerivation(ctx context.Context, d Derivation) error
}

// Derivation says under which rules the records were derived, and how far
// a rebuild under way got.
type Derivation struct {
	RulesVersion int
	// RebuildVersion and RebuiltUntil: an unfinished rebuild to rules
	// RebuildVersion completed every account up to RebuiltUntil; zero and
	// "" when none is under way.
	RebuildVersion int
	RebuiltUntil   string
}

// RunRebuild re-derives every account's record from its log under opts'
// rules, as drivers' Rebuild do. The log stays as it was, and so do the
// changes already sent: where a record's state or error code comes out
// different, one correction entry and one change (health.KindCorrected, from
// the stored state to the rebuilt one) are appended, so subscribers learn
// the corrected state once and cursors stay valid.
//
// It works in batches of accounts in the store's order, each in its own
// write transaction that reads and advances a cursor kept in the store
// (Derivation). So an interrupted rebuild resumes where it stopped, and two
// processes rebuilding at once share the work rather than repeat it: no
// account is rebuilt twice, and none gets two corrections. The rebuild lock
// on top makes the others wait and then find the work done.
func RunRebuild(ctx context.Context, d RebuildDriver, o RebuildOptions, opts Options) (RebuildProgress, error) {
	if o.Decode == nil {
		return RebuildProgress{}, errors.New("rebuild: no decoder")
	}
	unlock, err := d.LockRebuild(ctx)
	if err != nil {
		return RebuildProgress{}, fmt.Errorf("rebuild: lock: %w", err)
	}
	defer unlock()

	rules := opts.RulesOrCurrent()
	p, err := begin(ctx, d, rules, o.Force)
	if err != nil {
		return p, err
	}
	if p.Skipped {
		report(o, p)
		return p, nil
	}
	if p.Total, err = d.CountLogAccounts(ctx); err != nil {
		return p, fmt.Errorf("rebuild: %w", err)
	}
	r := rebuilder{opts: o, window: opts.redeliveryWindow(), rules: rules, now: o.Now, batch: o.BatchSize}
	if r.now == nil {
		r.now = time.Now
	}
	if r.batch <= 0 {
		r.batch = DefaultRebuildBatch
	}
	for !p.Done {
		var n int
		err := d.InWriteTx(ctx, func(tx RebuildTx) (err error) {
			n, err = r.nextBatch(ctx, tx, &p)
			return err
		})
		if err != nil {
			return p, fmt.Errorf("rebuild: %w", err)
		}
		p.Accounts += n
		report(o, p)
	}
	return p, nil
}

// begin marks a rebuild to rules under way, or finds one to resume, or
// finds none needed (Skipped, Done).
func begin(ctx context.Context, d RebuildDriver, rules Rules, force bool) (p RebuildProgress, err error) {
	err = d.InWriteTx(ctx, func(tx RebuildTx) error {
		der, err := tx.Derivation(ctx)
		switch {
		case err != nil:
			return err
		case der.RebuildVersion == rules.Version:
			p.Resumed = true
			return nil
		case der.RulesVersion >= rules.Version && der.RebuildVersion == 0 && !force:
			p.Skipped, p.Done = true, true
			return nil
		}
		// Begun afresh, also over an unfinished rebuild to other rules.
		return tx.SetDerivation(ctx, Derivation{RulesVersion: der.RulesVersion, RebuildVersion: rules.Version})
	})
	if err != nil {
		return p, fmt.Errorf("rebuild: %w", err)
	}
	return p, nil
}

func report(o RebuildOptions, p RebuildProgress) {
	if o.Progress != nil {
		o.Progress(p)
	}
}

type rebuilder struct {
	opts   RebuildOptions
	window time.Duration
	rules  Rules
	now    func() time.Time
	batch  int
}

// nextBatch rebuilds the next accounts after the store's cursor and
// advances it, in tx; it returns how many, and sets p.Done at the end (or
// when another process finished meanwhile).
func (r rebuilder) nextBatch(ctx context.Context, tx RebuildTx, p *RebuildProgress) (int, error) {
	der, err := tx.Derivation(ctx)
	if err != nil {
		return 0, err
	}
	if der.RebuildVersion != r.rules.Version {
		p.Done = true
		return 0, nil
	}
	ids, err := tx.AccountsAfter(ctx, der.RebuiltUntil, r.batch)
	if err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		p.Done = true
		return 0, tx.SetDerivation(ctx, Derivation{RulesVersion: r.rules.Version})
	}
	last := ids[len(ids)-1]
	entries, err := tx.AccountEntries(ctx, der.RebuiltUntil, last)
	if err != nil {
		return 0, err
	}
	checkpoints, err := checkpointsByAccount(ctx, tx, der.RebuiltUntil, last)
	if err != nil {
		return 0, err
	}
	err = eachAccount(ids, entries, func(id string, entries []Entry) error {
		return r.account(ctx, tx, checkpoints.of(id), entries, p)
	})
	if err != nil {
		return 0, err
	}
	der.RebuiltUntil = last
	return len(ids), tx.SetDerivation(ctx, der)
}

// eachAccount calls fn with each account of ids and its entries, which
// come by account in ids' order (AccountEntries').
func eachAccount(ids []string, entries []Entry, fn func(id string, entries []Entry) error) error {
	for _, id := range ids {
		k := 0
		for k < len(entries) && entries[k].AccountID == id {
			k++
		}
		if err := fn(id, entries[:k]); err != nil {
			return fmt.Errorf("account %s: %w", id, err)
		}
		entries = entries[k:]
	}
	return nil
}

// account replays one account's entries through the same committer as
// Ingest, over an in-memory Tx, and writes what differs.
func (r rebuilder) account(ctx context.Context, tx RebuildTx, from Checkpoint, entries []Entry, p *RebuildProgress) error {
	id := from.AccountID
	rp, err := replayAccount(ctx, from, entries, r.opts.Decode, r.window, r.rules)
	if err != nil {
		return err
	}
	p.Undecodable += len(rp.undecodable)
	for _, e := range entries {
		if o, ok := rp.outcomes[e.Seq]; ok && o != e.Outcome {
			p.Outcomes++
			if err := tx.SetOutcome(ctx, e.Seq, o); err != nil {
				return err
			}
		}
	}

	stored, err := tx.GetRecord(ctx, id)
	if err != nil {
		return err
	}
	rebuilt, ok := rp.recordOver(stored)
	// A record the rules no longer derive is left as it is: no rule drops
	// an account that a delivery named.
	if !ok || sameRecord(stored, rebuilt) {
		return nil
	}
	p.Changed++
	if err := tx.PutRecord(ctx, rebuilt); err != nil {
		return err
	}
	if stored.State == rebuilt.State && stored.ErrorCode == rebuilt.ErrorCode {
		return nil
	}
	p.Corrections++
	return r.correct(ctx, tx, stored, rebuilt)
}

// accountReplay is what replaying one account's log gives: what rebuilds
// write and checks compare.
type accountReplay struct {
	record   health.Record
	derived  bool                     // the rules derive a record for the account
	outcomes map[int64]health.Outcome // by entry Seq, of the entries replayed
	// undecodable are the entries left out, by Seq: Decode failed.
	undecodable map[int64]error
}

// replayAccount replays one account's entries after from.ThroughSeq, in
// Seq order, through the same committer as Ingest, over an in-memory Tx
// that starts with from's record: pruning left the entries up to
// ThroughSeq without their bodies, or deleted them. Correction entries are
// no deliveries: they are left out.
func replayAccount(ctx context.Context, from Checkpoint, entries []Entry, decode func(Entry) (health.Delivery, error), window time.Duration, rules Rules) (accountReplay, error) {
	id := from.AccountID
	mem := newReplayTx()
	if from.Record.State != health.StateUnknown {
		mem.records[id] = from.Record
	}
	c := committer{tx: mem, window: window, rules: rules}
	rp := accountReplay{outcomes: map[int64]health.Outcome{}, undecodable: map[int64]error{}}
	for _, e := range entries {
		if e.Source == SourceRebuild || e.Seq <= from.ThroughSeq {
			continue
		}
		decoded, err := decode(e)
		if err != nil {
			rp.undecodable[e.Seq] = err
			continue
		}
		mem.seq = e.Seq
		res, err := c.commit(ctx, &Delivery{Source: e.Source, Actor: e.Actor, Body: e.Body, Name: e.Name, Decoded: decoded})
		if err != nil {
			return rp, err
		}
		rp.outcomes[e.Seq] = res.Outcome
	}
	rp.record, rp.derived = mem.records[id]
	return rp, nil
}

// recordOver is the replayed record as a rebuild would store it over
// stored; false when the rules derive none.
func (rp accountReplay) recordOver(stored health.Record) (health.Record, bool) {
	rebuilt := rp.record
	// Redeliveries confirm an account (committer.confirm) but are counted,
	// not logged: a replay cannot see them, so it keeps the confirmation
	// the record holds when that is newer.
	if stored.ConfirmedAt.After(rebuilt.ConfirmedAt) {
		rebuilt.ConfirmedAt = stored.ConfirmedAt
	}
	return rebuilt, rp.derived
}

// sameRecord compares records as a store keeps them: times as instants, an
// empty snapshot as none.
func sameRecord(a, b health.Record) bool {
	return reflect.DeepEqual(asStored(a), asStored(b))
}

// asStored is r as a store reads it back.
func asStored(r health.Record) health.Record {
	r.StateSince, r.LastEventAt, r.SnapshotAt = r.StateSince.UTC(), r.LastEventAt.UTC(), r.SnapshotAt.UTC()
	r.SnapshotReceivedAt, r.ConfirmedAt = r.SnapshotReceivedAt.UTC(), r.ConfirmedAt.UTC()
	r.FreshnessSince, r.ScannedAt, r.StaleSince, r.FreshAsOf = r.FreshnessSince.UTC(), r.ScannedAt.UTC(), r.StaleSince.UTC(), r.FreshAsOf.UTC()
	if len(r.Snapshot) == 0 {
		r.Snapshot = nil
	}
	if len(r.FailedDatasets) == 0 {
		r.FailedDatasets = nil
	}
	return r
}

// correct appends the entry and the change that tell of a corrected record.
func (r rebuilder) correct(ctx context.Context, tx RebuildTx, stored, rebuilt health.Record) error {
	at := r.now().UTC()
	body, err := json.Marshal(map[string]any{
		"rules_version":  r.rules.Version,
		"previous_state": stored.State.String(),
		"state":          rebuilt.State.String(),
		"error_code":     rebuilt.ErrorCode,
	})
	if err != nil {
		return err
	}
	seq, err := tx.AppendEntry(ctx, Entry{
		Source: SourceRebuild, Actor: "rebuild", Event: EventRebuilt,
		AccountID: rebuilt.AccountID, UserID: rebuilt.UserID, ReceivedAt: at,
		Outcome: health.OutcomeApplied, Body: body,
	}, sha256.Sum256(body))
	if err != nil {
		return err
	}
	_, err = tx.AppendChange(ctx, Change{
		EntrySeq: seq, Event: EventRebuilt, AccountID: rebuilt.AccountID, UserID: rebuilt.UserID,
		Transition: health.Transition{
			Kind: health.KindCorrected, PreviousState: stored.State, State: rebuilt.State,
			ErrorCode: rebuilt.ErrorCode, ErrorMessage: rebuilt.ErrorMessage, Remedy: rebuilt.Remedy, OccurredAt: at,
		},
	})
	return err
}

// replayTx is the in-memory Tx a rebuild replays one account's log
// through: the entries keep the Seqs they have.
type replayTx struct {
	seq     int64 // the Seq of the entry being replayed
	records map[string]health.Record
	hashes  map[[32]byte]replayed
	reports map[string]health.ItemReport
	outages map[string]bool
}

type replayed struct {
	seq int64
	at  time.Time
}

func newReplayTx() *replayTx {
	return &replayTx{records: map[string]health.Record{}, hashes: map[[32]byte]replayed{}, reports: map[string]health.ItemReport{}, outages: map[string]bool{}}
}

func (m *replayTx) LastByHash(_ context.Context, h [32]byte) (int64, time.Time, bool, error) {
	e, ok := m.hashes[h]
	return e.seq, e.at, ok, nil
}

func (m *replayTx) CountRedelivery(context.Context, int64) error { return nil }

func (m *replayTx) GetRecord(_ context.Context, id string) (health.Record, error) {
	return m.records[id], nil
}

func (m *replayTx) PutRecord(_ context.Context, rec health.Record) error {
	m.records[rec.AccountID] = rec
	return nil
}

func (m *replayTx) AppendEntry(_ context.Context, e Entry, h [32]byte) (int64, error) {
	m.hashes[h] = replayed{seq: m.seq, at: e.ReceivedAt}
	return m.seq, nil
}

func (m *replayTx) AppendChange(context.Context, Change) (int64, error) { return 0, nil }

// PutItemReport and SetItemOutage keep what a replayed item entry says, as
// a store would; a rebuild replays accounts' logs, which hold none.
func (m *replayTx) PutItemReport(_ context.Context, r health.ItemReport) error {
	if kept, ok := m.reports[r.Item]; !ok || !kept.ReceivedAt.After(r.ReceivedAt) {
		m.reports[r.Item] = r
	}
	return nil
}

func (m *replayTx) SetItemOutage(_ context.Context, o health.ItemOutage, _ time.Time) (bool, error) {
	changed := m.outages[o.Item] != o.InOutage
	m.outages[o.Item] = o.InOutage
	return changed, nil
}
