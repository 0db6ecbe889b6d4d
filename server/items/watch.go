package items

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// DefaultWatchInterval is how often a Watcher derives every item's health
// when no commit wakes it: a suspected outage ends by the passing of time.
const DefaultWatchInterval = 30 * time.Second

// minPassGap spaces the passes that commits wake: under a flood of
// failures, a pass a second is enough, and a pass reads every item.
const minPassGap = time.Second

// Actor names the watcher in the entries it commits.
const Actor = "item-watcher"

// WatchStore is what a Watcher reads; store.Store is one.
type WatchStore interface {
	Signals
	ItemOutages(ctx context.Context) ([]store.ItemOutageState, error)
	ListHealth(ctx context.Context, q store.HealthQuery) (store.HealthPage, error)
}

// Watcher logs items' outages as they begin and end, so that the log,
// which streams and rebuilds read, tells them: the derived status depends
// on the time of reading, the log must not. Each pass derives every item's
// health, and for an item whose outage the log does not tell yet:
//   - when it began: commits an items.outage_began entry for each of the
//     item's accounts, whose remedy becomes waiting (no event), then the
//     item-wide one (one ITEM_OUTAGE_BEGAN event);
//   - when it ended: commits an items.outage_ended entry for each account
//     told of the outage (a REMEDY_RESTORED event each that still needs
//     attention), then the item-wide one (one ITEM_OUTAGE_ENDED event).
//
// While an item is in an outage, each pass also tells the accounts that
// joined or moved onto it since. The order makes a pass that was cut off
// finish in the next, and subscribers that hear the item-wide event find
// every account's remedy already changed. Several replicas may watch at once: the store keeps
// one change per change of an item's outage, and an account's repeated
// entry changes nothing.
type Watcher struct {
	svc      *Service
	st       WatchStore
	commit   func(context.Context, store.Delivery) (store.Result, error)
	interval time.Duration
	logger   *slog.Logger
	wake     chan struct{}
}

// NewWatcher watches through svc and st, committing with commit (the
// intake batcher's Submit); interval 0 means DefaultWatchInterval.
func NewWatcher(svc *Service, st WatchStore, commit func(context.Context, store.Delivery) (store.Result, error), interval time.Duration, logger *slog.Logger) *Watcher {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	return &Watcher{svc: svc, st: st, commit: commit, interval: interval, logger: logger, wake: make(chan struct{}, 1)}
}

// Notify asks for a pass soon: a commit may have moved accounts into
// errors. It never blocks; wake-ups coalesce.
func (w *Watcher) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run passes at each interval and wake-up until ctx ends. The first pass
// waits for the first of them, so that start-up does not compete with it;
// an outage that began or ended while no process watched is logged then.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
		if err := w.Pass(ctx); err != nil && ctx.Err() == nil {
			w.logger.Warn("item watch pass failed; trying again next interval", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(minPassGap):
		}
	}
}

// Pass derives the active items' health once (every item in an outage is
// one, and every item whose outage the log tells under way) and logs what
// the log lacks.
func (w *Watcher) Pass(ctx context.Context) error {
	logged, err := w.st.ItemOutages(ctx)
	if err != nil {
		return err
	}
	inOutage := map[string]bool{}
	for _, o := range logged {
		inOutage[o.Item] = o.InOutage
	}
	derived, err := w.svc.active(ctx, w.svc.now())
	if err != nil {
		return err
	}
	for _, h := range derived {
		o := health.ItemOutage{Item: h.Item, InOutage: h.Status.InOutage(), Status: h.Status, Since: h.Since}
		if !o.InOutage && !inOutage[h.Item] {
			continue
		}
		if err := w.reconcile(ctx, o, inOutage[h.Item]); err != nil {
			return fmt.Errorf("item %s: %w", h.Item, err)
		}
	}
	return nil
}

// reconcile brings the log to o for an item whose outage the log tells
// as was: the accounts first, so that by the item-wide event every
// account's remedy already says so.
func (w *Watcher) reconcile(ctx context.Context, o health.ItemOutage, was bool) error {
	if err := w.tellAccounts(ctx, o); err != nil || o.InOutage == was {
		return err
	}
	w.logger.Info("item outage changed", "item", o.Item, "in_outage", o.InOutage, "status", o.Status.String(), "since", o.Since)
	return w.commitOutage(ctx, o, "", "")
}

// tellAccounts commits o for each of the item's accounts that the log
// told otherwise.
func (w *Watcher) tellAccounts(ctx context.Context, o health.ItemOutage) error {
	q := store.HealthQuery{Item: o.Item, PageSize: store.MaxPageSize}
	for {
		page, err := w.st.ListHealth(ctx, q)
		if err != nil {
			return err
		}
		for _, r := range page.Records {
			if r.ItemOutage == o.InOutage || r.State == health.StateRemoved {
				continue
			}
			if err := w.commitOutage(ctx, o, r.AccountID, r.UserID); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" {
			return nil
		}
		q.PageToken = page.NextPageToken
	}
}

func (w *Watcher) commitOutage(ctx context.Context, o health.ItemOutage, account, user string) error {
	body, err := EncodeOutage(o)
	if err != nil {
		return err
	}
	_, err = w.commit(ctx, store.Delivery{Source: store.SourceAPI, Actor: Actor, Body: body, Verified: true, Decoded: health.Delivery{
		Event: o.Event(), AccountID: account, UserID: user, ReceivedAt: time.Now().UTC(), ItemOutage: &o,
	}})
	return err
}

// outageBody is the body of an items.outage_* entry.
type outageBody struct {
	Item     string    `json:"item"`
	InOutage bool      `json:"in_outage"`
	Status   string    `json:"status"`
	Since    time.Time `json:"since,omitzero"`
}

// EncodeOutage is the body of o's entries.
func EncodeOutage(o health.ItemOutage) ([]byte, error) {
	return json.Marshal(outageBody{Item: o.Item, InOutage: o.InOutage, Status: o.Status.String(), Since: o.Since})
}

// DecodeOutage reads the body of an items.outage_* entry back.
func DecodeOutage(body []byte) (health.ItemOutage, error) {
	var b outageBody
	if err := json.Unmarshal(body, &b); err != nil || b.Item == "" {
		return health.ItemOutage{}, fmt.Errorf("an item outage entry's body is not one the item watcher writes: %q", body)
	}
	o := health.ItemOutage{Item: b.Item, InOutage: b.InOutage, Since: b.Since}
	for s := health.ItemStatusUnknown; s <= health.ItemStatusOutage; s++ {
		if s.String() == b.Status {
			o.Status = s
		}
	}
	return o, nil
}
