package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"reflect"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
)

// DefaultRedeliveryWindow is how long after a delivery without a resource a
// byte-identical one still counts as its redelivery. The provider retries
// once after about 30 s; well beyond that, identical bytes are more likely a
// genuinely new event (the provider sends no event id to tell them apart).
const DefaultRedeliveryWindow = 10 * time.Minute

// Options tune the commit rules; the zero value means the defaults.
type Options struct {
	// RedeliveryWindow: see DefaultRedeliveryWindow, used when zero. A
	// negative window turns time-based detection off, leaving only
	// deliveries that carry a resource to be recognised as redeliveries.
	RedeliveryWindow time.Duration
}

func (o Options) redeliveryWindow() time.Duration {
	if o.RedeliveryWindow == 0 {
		return DefaultRedeliveryWindow
	}
	return o.RedeliveryWindow
}

// Tx is what a driver offers inside one transaction. Apply relies on the
// driver to serialise transactions that may touch the same account or the
// same body hash, and to assign Seqs in commit order.
type Tx interface {
	// LastByHash finds the newest entry whose body hashes to h.
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
}

// Apply is what committing deliveries means, for every driver: it runs
// inside the driver's transaction and returns one Result per delivery, in
// order. On error the driver must roll back everything.
func Apply(ctx context.Context, tx Tx, deliveries []Delivery, opts Options) ([]Result, error) {
	window := opts.redeliveryWindow()
	results := make([]Result, len(deliveries))
	for i := range deliveries {
		r, err := applyOne(ctx, tx, &deliveries[i], window)
		if err != nil {
			return nil, fmt.Errorf("delivery %d of %d: %w", i+1, len(deliveries), err)
		}
		results[i] = r
	}
	return results, nil
}

func applyOne(ctx context.Context, tx Tx, d *Delivery, window time.Duration) (Result, error) {
	h := sha256.Sum256(d.Body)
	seq, at, found, err := tx.LastByHash(ctx, h)
	if err != nil {
		return Result{}, fmt.Errorf("find redelivery: %w", err)
	}
	if found && isRedelivery(&d.Decoded, at, window) {
		if err := tx.CountRedelivery(ctx, seq); err != nil {
			return Result{}, fmt.Errorf("count redelivery: %w", err)
		}
		return Result{EntrySeq: seq, Outcome: health.OutcomeDuplicate}, nil
	}

	ev := &d.Decoded
	var cur health.Record
	if ev.AccountID != "" {
		if cur, err = tx.GetRecord(ctx, ev.AccountID); err != nil {
			return Result{}, fmt.Errorf("get record: %w", err)
		}
	}
	res := health.Apply(cur, *ev)

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
	// A zero State means "no record": a non-account event for an account we
	// have not seen must not create one. DeepEqual may see a change where
	// only a time's location differs; that costs a write, never a loss.
	if res.Record.State != health.StateUnknown && !reflect.DeepEqual(cur, res.Record) {
		if err := tx.PutRecord(ctx, res.Record); err != nil {
			return Result{}, fmt.Errorf("put record: %w", err)
		}
	}

	out := Result{EntrySeq: entrySeq, Outcome: res.Outcome}
	if res.Transition != nil {
		c := Change{
			EntrySeq:   entrySeq,
			Event:      ev.Event,
			AccountID:  ev.AccountID,
			UserID:     res.Record.UserID,
			Transition: *res.Transition,
		}
		if c.UserID == "" {
			c.UserID = ev.UserID
		}
		if c.Seq, err = tx.AppendChange(ctx, c); err != nil {
			return Result{}, fmt.Errorf("append change: %w", err)
		}
		out.Change = &c
	}
	return out, nil
}

// isRedelivery decides whether a delivery whose bytes equal those of an
// entry received at originalAt repeats it. A resource carries the account's
// timestamps, so identical bytes are the same event however late; without
// one, only a retry-sized gap (the window, either way round) says so.
func isRedelivery(d *health.Delivery, originalAt time.Time, window time.Duration) bool {
	if d.Snapshot != nil {
		return true
	}
	// Compared as bounds rather than |a-b| so that far-apart or zero times
	// cannot overflow a Duration.
	return !d.ReceivedAt.Before(originalAt.Add(-window)) && !d.ReceivedAt.After(originalAt.Add(window))
}
