package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"reflect"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
)

// DefaultRedeliveryWindow is how long after a lean accounts.failed an
// identical one may still count as its retry (see health.IsRedelivery). The
// provider retries once after about 30 s; well beyond that, identical bytes
// are more likely a genuinely new event (the provider sends no event id to
// tell them apart).
const DefaultRedeliveryWindow = 10 * time.Minute

// Rules derive health from the log. The zero value means the health
// package's; tests substitute others to play an older build.
type Rules struct {
	// Version numbers the rules (health.RulesVersion): records derived
	// under a lower one are rebuilt (see Rebuild).
	Version int
	Apply   func(health.Record, health.Delivery) health.Result
}

// CurrentRules are the health package's.
func CurrentRules() Rules { return Rules{Version: health.RulesVersion, Apply: health.Apply} }

// Options tune the commit rules; the zero value means the defaults.
type Options struct {
	// RedeliveryWindow: see DefaultRedeliveryWindow, used when zero. A
	// negative window turns time-based detection off, leaving only
	// deliveries that carry a resource to be recognised as redeliveries.
	RedeliveryWindow time.Duration
	// Rules: CurrentRules when zero.
	Rules Rules
}

func (o Options) redeliveryWindow() time.Duration {
	if o.RedeliveryWindow == 0 {
		return DefaultRedeliveryWindow
	}
	return o.RedeliveryWindow
}

// RulesOrCurrent is o.Rules, or CurrentRules when unset.
func (o Options) RulesOrCurrent() Rules {
	if o.Rules.Apply == nil {
		return CurrentRules()
	}
	return o.Rules
}

// Tx is what a driver offers inside one transaction. Apply relies on the
// driver to serialise transactions that may touch the same account or the
// same body hash, and to assign Seqs in commit order.
type Tx interface {
	// LastByHash finds the newest entry whose body hashes to h, leaving
	// out entries whose outcome is OutcomeDuplicate: a rebuild gives a
	// logged entry that outcome when the rules now take it for a
	// redelivery, and a replay then counts it as never logged.
	LastByHash(ctx context.Context, h [32]byte) (seq int64, receivedAt time.Time, found bool, err error)
	// CountRedelivery adds one to the entry's Redeliveries.
	CountRedelivery(ctx context.Context, seq int64) error
	// GetRecord returns the account's record, or the zero Record (State
	// StateUnknown) when it has none: that is what health.Apply expects.
	GetRecord(ctx context.Context, accountID string) (health.Record, error)
	// PutRecord inserts or replaces the record keyed by rec.AccountID.
	PutRecord(ctx context.Context, rec health.Record) error
	// AppendEntry appends e (its Seq and Change ignored) with its body's
	// hash and returns the Seq it got.
	AppendEntry(ctx context.Context, e Entry, h [32]byte) (seq int64, err error)
	// AppendChange appends c (its Seq ignored) and returns the Seq it got.
	AppendChange(ctx context.Context, c Change) (seq int64, err error)
	// PutItemReport keeps r as its item's newest report, unless the one
	// kept arrived later.
	PutItemReport(ctx context.Context, r health.ItemReport) error
	// SetItemOutage keeps o as its item's outage, received at, and
	// reports whether that changed whether the item is in an outage.
	SetItemOutage(ctx context.Context, o health.ItemOutage, at time.Time) (changed bool, err error)
}

// Apply is what committing deliveries means, for every driver: it runs
// inside the driver's transaction and returns one Result per delivery, in
// order. On error the driver must roll back everything.
func Apply(ctx context.Context, tx Tx, deliveries []Delivery, opts Options) ([]Result, error) {
	c := committer{tx: tx, window: opts.redeliveryWindow(), rules: opts.RulesOrCurrent()}
	results := make([]Result, len(deliveries))
	for i := range deliveries {
		r, err := c.commit(ctx, &deliveries[i])
		if err != nil {
			return nil, fmt.Errorf("delivery %d of %d: %w", i+1, len(deliveries), err)
		}
		results[i] = r
	}
	return results, nil
}

// committer applies deliveries one at a time through a Tx: ingests and
// rebuilds (which replay the log through an in-memory Tx) share it, so
// both follow the same rules.
type committer struct {
	tx     Tx
	window time.Duration
	rules  Rules
}

func (c committer) commit(ctx context.Context, d *Delivery) (Result, error) {
	tx := c.tx
	ev := &d.Decoded
	var (
		cur health.Record
		err error
	)
	if ev.AccountID != "" {
		if cur, err = tx.GetRecord(ctx, ev.AccountID); err != nil {
			return Result{}, fmt.Errorf("get record: %w", err)
		}
	}
	h := sha256.Sum256(d.Body)
	// Only these can be redeliveries (see health.IsRedelivery): the others
	// skip the lookup.
	if ev.Snapshot != nil || ev.Event == health.EventAccountsFailed {
		seq, at, found, err := tx.LastByHash(ctx, h)
		if err != nil {
			return Result{}, fmt.Errorf("find redelivery: %w", err)
		}
		if found && health.IsRedelivery(cur, *ev, at, c.window) {
			if err := tx.CountRedelivery(ctx, seq); err != nil {
				return Result{}, fmt.Errorf("count redelivery: %w", err)
			}
			if err := c.confirm(ctx, cur, ev); err != nil {
				return Result{}, fmt.Errorf("confirm redelivery: %w", err)
			}
			return Result{EntrySeq: seq, Outcome: health.OutcomeDuplicate, Unconfirmed: cur.Unconfirmed}, nil
		}
	}
	res := c.rules.Apply(cur, *ev)

	source := d.Source
	if source == "" {
		source = SourceWebhook
	}
	entrySeq, err := tx.AppendEntry(ctx, Entry{
		Source:     source,
		Actor:      d.Actor,
		Event:      ev.Event,
		Name:       d.Name,
		AccountID:  ev.AccountID,
		UserID:     ev.UserID,
		ReceivedAt: ev.ReceivedAt,
		Outcome:    res.Outcome,
		Body:       d.Body,
	}, h)
	if err != nil {
		return Result{}, fmt.Errorf("append entry: %w", err)
	}
	if ev.ItemReport != nil {
		if err := tx.PutItemReport(ctx, *ev.ItemReport); err != nil {
			return Result{}, fmt.Errorf("put item report: %w", err)
		}
	}
	if o := ev.ItemOutage; o != nil && ev.AccountID == "" {
		return c.commitItemOutage(ctx, *o, ev, entrySeq)
	}
	// A zero State means "no record": a non-account event for an account we
	// have not seen must not create one. DeepEqual may see a change where
	// only a time's location differs; that costs a write, never a loss.
	if res.Record.State != health.StateUnknown && !reflect.DeepEqual(cur, res.Record) {
		if err := tx.PutRecord(ctx, res.Record); err != nil {
			return Result{}, fmt.Errorf("put record: %w", err)
		}
	}

	out := Result{EntrySeq: entrySeq, Outcome: res.Outcome}
	if res.Outcome != health.OutcomeNotAccountEvent {
		out.Unconfirmed = res.Record.Unconfirmed
	}
	if res.Transition != nil {
		if out.Change, err = c.appendChange(ctx, ev, res, entrySeq); err != nil {
			return Result{}, err
		}
	}
	return out, nil
}

// appendChange logs the transition res makes as the change of entry
// entrySeq.
func (c committer) appendChange(ctx context.Context, ev *health.Delivery, res health.Result, entrySeq int64) (*Change, error) {
	ch := Change{
		EntrySeq:   entrySeq,
		Event:      ev.Event,
		AccountID:  ev.AccountID,
		UserID:     res.Record.UserID,
		Item:       res.Record.Item,
		Transition: *res.Transition,
	}
	if ch.UserID == "" {
		ch.UserID = ev.UserID
	}
	var err error
	if ch.Seq, err = c.tx.AppendChange(ctx, ch); err != nil {
		return nil, fmt.Errorf("append change: %w", err)
	}
	return &ch, nil
}

// commitItemOutage records an item-wide items.outage_* entry: a change
// of the item's outage makes one item-wide Change; a repeat (several
// replicas watch the same items) makes none.
func (c committer) commitItemOutage(ctx context.Context, o health.ItemOutage, ev *health.Delivery, entrySeq int64) (Result, error) {
	out := Result{EntrySeq: entrySeq, Outcome: health.OutcomeNotAccountEvent}
	changed, err := c.tx.SetItemOutage(ctx, o, ev.ReceivedAt)
	if err != nil || !changed {
		return out, err
	}
	kind := health.KindItemOutageEnded
	if o.InOutage {
		kind = health.KindItemOutageBegan
	}
	ch := Change{EntrySeq: entrySeq, Event: ev.Event, Item: o.Item, Transition: health.Transition{Kind: kind, OccurredAt: ev.ReceivedAt}}
	if ch.Seq, err = c.tx.AppendChange(ctx, ch); err != nil {
		return Result{}, fmt.Errorf("append item change: %w", err)
	}
	out.Change = &ch
	return out, nil
}

// confirm raises cur's ConfirmedAt for a redelivery, which is counted, not
// applied: its account object was seen again all the same. It takes the
// ConfirmedAt that applying d would give, so that the rules alone say what
// confirms an account (never a removed one, say), and it never lowers it.
func (c committer) confirm(ctx context.Context, cur health.Record, d *health.Delivery) error {
	if cur.State == health.StateUnknown {
		return nil // no record, and a redelivery makes none
	}
	at := c.rules.Apply(cur, *d).Record.ConfirmedAt
	if !at.After(cur.ConfirmedAt) {
		return nil
	}
	cur.ConfirmedAt = at
	return c.tx.PutRecord(ctx, cur)
}
