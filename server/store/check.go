package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
)

// CheckOptions say how to check a store (see RunCheck).
type CheckOptions struct {
	// Decode turns a stored entry back into its delivery, as
	// RebuildOptions.Decode; an entry it fails on is a Problem.
	Decode func(Entry) (health.Delivery, error)
	// Progress, when set, is called after each batch of accounts and once
	// at the end (Done set).
	Progress func(CheckReport)
	// BatchSize is how many accounts one read transaction checks; 0 means
	// DefaultRebuildBatch.
	BatchSize int
	// MaxProblems is how many problems the report keeps (it counts them
	// all); 0 means DefaultMaxProblems.
	MaxProblems int
}

// DefaultMaxProblems bounds the problems a report lists: a store broken
// everywhere must not make the report as large as the store.
const DefaultMaxProblems = 100

// Problem is one thing a check found wrong.
type Problem struct {
	AccountID string // "" when the problem is no account's
	Seq       int64  // the entry or change it is about, 0 for none
	What      string
}

func (p Problem) String() string {
	s := p.What
	if p.Seq != 0 {
		s = fmt.Sprintf("seq %d: %s", p.Seq, s)
	}
	if p.AccountID != "" {
		s = fmt.Sprintf("account %q: %s", p.AccountID, s)
	}
	return s
}

// CheckReport is what a check found so far.
type CheckReport struct {
	Accounts int // accounts checked
	Total    int // accounts in the log when the check began (an estimate for progress)
	Entries  int // entries replayed
	Changes  int // changes read
	// Problems are the first MaxProblems found; Found counts them all.
	Problems []Problem
	Found    int
	Done     bool
}

// Clean reports whether the check found nothing wrong.
func (r CheckReport) Clean() bool { return r.Found == 0 }

func (r *CheckReport) add(limit int, p Problem) {
	r.Found++
	if len(r.Problems) < limit {
		r.Problems = append(r.Problems, p)
	}
}

// CheckDriver is what a driver gives RunCheck. Every call reads only.
type CheckDriver interface {
	// EngineProblems are what the database's own checks report (SQLite's
	// integrity_check and foreign_key_check), up to limit; none where the
	// engine has none to run.
	EngineProblems(ctx context.Context, limit int) ([]string, error)
	// LogProblems are, up to limit, the anomalies of the change log as a
	// whole: a change whose entry is missing or names another account, a
	// change whose entry is older than the previous change's (Seq order
	// is commit order for both), a record whose account the log never
	// named, a count of records by state and error code (what Summary
	// reads) that a count of the records contradicts.
	LogProblems(ctx context.Context, limit int) ([]Problem, error)
	// CountLogAccounts counts the accounts the log names.
	CountLogAccounts(ctx context.Context) (int, error)
	// Derivation reads how the records are derived.
	Derivation(ctx context.Context) (Derivation, error)
	// InReadTx runs fn in one read-only transaction: everything fn reads
	// is one snapshot, so ingests meanwhile cannot look like damage.
	InReadTx(ctx context.Context, fn func(CheckTx) error) error
}

// CheckTx is a read transaction of a check.
type CheckTx interface {
	// AccountsAfter and AccountEntries are RebuildTx's.
	AccountsAfter(ctx context.Context, after string, limit int) ([]string, error)
	AccountEntries(ctx context.Context, after, last string) ([]Entry, error)
	AccountCheckpoints(ctx context.Context, after, last string) ([]Checkpoint, error)
	// AccountChanges returns the changes of the entries of the accounts
	// above after up to last, by Seq.
	AccountChanges(ctx context.Context, after, last string) ([]Change, error)
	// AccountRecords returns the records of the accounts above after up to
	// last.
	AccountRecords(ctx context.Context, after, last string) ([]health.Record, error)
}

// RunCheck checks a store, as drivers' Check do, reading only: the
// database's own integrity checks, the change log's order and references,
// and then, account by account in batches (one read transaction each, so
// memory stays bounded by a batch and never holds the log), that every
// entry still decodes, that replaying the account's log under the store's
// rules (the rebuild's replay, RunRebuild) gives the record stored and each
// entry's outcome, and that no entry has two changes. The records must be
// derived under the store's rules: when they are not, that is the one
// problem reported of the accounts (a rebuild comes first).
func RunCheck(ctx context.Context, d CheckDriver, o CheckOptions, opts Options) (CheckReport, error) {
	var r CheckReport
	if o.Decode == nil {
		return r, errors.New("check: no decoder")
	}
	limit := o.MaxProblems
	if limit <= 0 {
		limit = DefaultMaxProblems
	}
	engine, err := d.EngineProblems(ctx, limit)
	if err != nil {
		return r, fmt.Errorf("check: the database's own checks: %w", err)
	}
	for _, p := range engine {
		r.add(limit, Problem{What: "the database's integrity check: " + p})
	}
	logProblems, err := d.LogProblems(ctx, limit)
	if err != nil {
		return r, fmt.Errorf("check: the change log: %w", err)
	}
	for _, p := range logProblems {
		r.add(limit, p)
	}
	rules := opts.RulesOrCurrent()
	der, err := d.Derivation(ctx)
	if err != nil {
		return r, fmt.Errorf("check: %w", err)
	}
	if what := notDerivedUnder(der, rules); what != "" {
		r.add(limit, Problem{What: what})
		r.Done = true
		progress(o, r)
		return r, nil
	}
	if r.Total, err = d.CountLogAccounts(ctx); err != nil {
		return r, fmt.Errorf("check: %w", err)
	}
	c := checker{opts: o, window: opts.redeliveryWindow(), rules: rules, limit: limit, batch: o.BatchSize}
	if c.batch <= 0 {
		c.batch = DefaultRebuildBatch
	}
	after := ""
	for !r.Done {
		err := d.InReadTx(ctx, func(tx CheckTx) (err error) {
			after, err = c.nextBatch(ctx, tx, after, &r)
			return err
		})
		if err != nil {
			return r, fmt.Errorf("check: %w", err)
		}
		progress(o, r)
	}
	return r, nil
}

// notDerivedUnder says why records derived as der cannot be checked
// against rules, "" when they can.
func notDerivedUnder(der Derivation, rules Rules) string {
	switch {
	case der.RebuildVersion != 0:
		return fmt.Sprintf("a rebuild to rules version %d is under way: let it finish, then check again", der.RebuildVersion)
	case der.RulesVersion != rules.Version:
		return fmt.Sprintf("the records are derived under rules version %d, not %d: rebuild them, then check again", der.RulesVersion, rules.Version)
	}
	return ""
}

func progress(o CheckOptions, r CheckReport) {
	if o.Progress != nil {
		o.Progress(r)
	}
}

type checker struct {
	opts         CheckOptions
	window       time.Duration
	rules        Rules
	limit, batch int
}

// nextBatch checks the accounts after after and returns the last one it
// checked; it sets r.Done when there are none.
func (c checker) nextBatch(ctx context.Context, tx CheckTx, after string, r *CheckReport) (string, error) {
	ids, err := tx.AccountsAfter(ctx, after, c.batch)
	if err != nil || len(ids) == 0 {
		r.Done = err == nil
		return after, err
	}
	last := ids[len(ids)-1]
	entries, err := tx.AccountEntries(ctx, after, last)
	if err != nil {
		return after, err
	}
	changes, err := tx.AccountChanges(ctx, after, last)
	if err != nil {
		return after, err
	}
	records, err := tx.AccountRecords(ctx, after, last)
	if err != nil {
		return after, err
	}
	checkpoints, err := checkpointsByAccount(ctx, tx, after, last)
	if err != nil {
		return after, err
	}
	stored := make(map[string]health.Record, len(records))
	for _, rec := range records {
		stored[rec.AccountID] = rec
	}
	// By account: a change of an account the log does not name is
	// LogProblems'.
	changesOf := map[string][]Change{}
	for _, ch := range changes {
		changesOf[ch.AccountID] = append(changesOf[ch.AccountID], ch)
	}
	err = eachAccount(ids, entries, func(id string, entries []Entry) error {
		rec, found := stored[id]
		return c.account(ctx, checkpoints.of(id), entries, changesOf[id], rec, found, r)
	})
	if err != nil {
		return after, err
	}
	r.Accounts += len(ids)
	return last, nil
}

// account compares what replaying one account's log gives with what is
// stored.
func (c checker) account(ctx context.Context, from Checkpoint, entries []Entry, changes []Change, stored health.Record, found bool, r *CheckReport) error {
	id := from.AccountID
	problem := func(seq int64, format string, args ...any) {
		r.add(c.limit, Problem{AccountID: id, Seq: seq, What: fmt.Sprintf(format, args...)})
	}
	rp, err := replayAccount(ctx, from, entries, c.opts.Decode, c.window, c.rules)
	if err != nil {
		return err
	}
	r.Entries += len(entries)
	r.Changes += len(changes)
	for _, e := range entries {
		if err, bad := rp.undecodable[e.Seq]; bad {
			problem(e.Seq, "the entry's body no longer decodes: %v", err)
		} else if o, ok := rp.outcomes[e.Seq]; ok && o != e.Outcome {
			problem(e.Seq, "the entry's outcome is %s, its replay gives %s", e.Outcome, o)
		}
	}

	want, derived := rp.recordOver(stored)
	switch {
	case derived && !found:
		problem(0, "no record stored, the log derives one (%s)", want.State)
	case !derived && found:
		problem(0, "a record is stored (%s), the log derives none", stored.State)
	case derived && !sameRecord(stored, want):
		problem(0, "the record stored differs from the one its log derives: %s", recordDiff(stored, want))
	}

	// Changes are not compared with the replay's transitions: those that
	// subscribers heard under older rules stay as they were sent (a
	// rebuild appends a correction instead). What every change log must
	// be: one change per entry at most, and a correction's for its entry.
	corrections := map[int64]bool{}
	for _, e := range entries {
		if e.Source == SourceRebuild {
			corrections[e.Seq] = true
		}
	}
	seen := map[int64]bool{}
	for _, ch := range changes {
		switch {
		case seen[ch.EntrySeq]:
			problem(ch.Seq, "a second change for entry %d, whose delivery makes one transition at most", ch.EntrySeq)
		case corrections[ch.EntrySeq] && ch.Kind != health.KindCorrected:
			problem(ch.Seq, "the change of correction entry %d is %s, not a correction", ch.EntrySeq, ch.Kind)
		}
		seen[ch.EntrySeq] = true
	}
	for seq := range corrections {
		if !seen[seq] {
			problem(seq, "the correction entry has no change")
		}
	}
	return nil
}

// recordDiff lists the fields in which the stored record differs from the
// derived one, with both values (a snapshot's sizes only: it may be large).
func recordDiff(stored, derived health.Record) string {
	a, b := reflect.ValueOf(asStored(stored)), reflect.ValueOf(asStored(derived))
	var diffs []string
	for i := range a.NumField() {
		x, y := a.Field(i).Interface(), b.Field(i).Interface()
		if reflect.DeepEqual(x, y) {
			continue
		}
		name := a.Type().Field(i).Name
		if bx, ok := x.([]byte); ok {
			diffs = append(diffs, fmt.Sprintf("%s stored %d bytes, derived %d", name, len(bx), len(y.([]byte))))
			continue
		}
		diffs = append(diffs, fmt.Sprintf("%s stored %v, derived %v", name, x, y))
	}
	return strings.Join(diffs, "; ")
}
