// Package refresh asks the provider how an account is when a delivery said
// only that it changed: an accounts.updated sent without the account object
// (a subscription without include_resource) leaves the health unconfirmed.
// The provider's answer is recorded as an accounts.updated of our own, with
// the account object, so the health model applies it like any snapshot
// (older than what we hold: ignored; byte-identical: a duplicate).
package refresh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/jsonstruct"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/store"
)

// Actor names refreshes in the account's timeline.
const Actor = "provider-refresh"

// Fetcher reads an account from the provider; *provider.Client is one.
type Fetcher interface {
	GetAccount(ctx context.Context, accountID string) (provider.Account, error)
}

// Refresher fetches accounts one at a time: the provider client's rate
// limit paces it, and a burst of lean deliveries costs one fetch per
// account, not per delivery.
type Refresher struct {
	fetch  Fetcher
	store  store.Store // what we know of an account the provider does not
	commit func(context.Context, store.Delivery) (store.Result, error)
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	queued  map[string]bool
	order   []string
	bytes   int // of the ids in order
	limit   int
	wake    chan struct{}
	dropped int
}

// MaxQueueBytes bounds the ids of the accounts waiting: ten thousand
// uuids take 360 KB, but a delivery's account id is only bounded by the
// body's cap.
const MaxQueueBytes = 4 << 20

// New makes a Refresher that reads s, commits through commit (normally the
// intake batcher) and keeps at most limit accounts waiting, and at most
// MaxQueueBytes of their ids.
func New(f Fetcher, s store.Store, commit func(context.Context, store.Delivery) (store.Result, error), logger *slog.Logger, limit int) *Refresher {
	return &Refresher{
		fetch: f, store: s, commit: commit, logger: logger, now: time.Now,
		queued: map[string]bool{}, limit: limit, wake: make(chan struct{}, 1),
	}
}

// Accepted hears of a committed delivery and queues a fetch when it left
// the account unconfirmed: a lean accounts.updated or accounts.failed.
func (r *Refresher) Accepted(accountID string, res store.Result) {
	if res.Unconfirmed {
		r.Request(accountID)
	}
}

// Request asks for accountID to be fetched. It never blocks: an account
// already waiting is not queued twice, and when the queue is full the
// request is dropped and the account stays marked unconfirmed, which its
// health says.
func (r *Refresher) Request(accountID string) {
	r.mu.Lock()
	switch {
	case r.queued[accountID]:
	case len(r.order) >= r.limit || r.bytes+len(accountID) > MaxQueueBytes:
		r.dropped++
		if r.dropped == 1 || r.dropped%1000 == 0 {
			r.logger.Warn("provider refresh queue full; accounts stay unconfirmed until their next delivery", "dropped", r.dropped)
		}
	default:
		r.queued[accountID] = true
		r.order = append(r.order, accountID)
		r.bytes += len(accountID)
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run fetches queued accounts until ctx ends.
func (r *Refresher) Run(ctx context.Context) {
	for {
		id, ok := r.next()
		if !ok {
			select {
			case <-r.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		r.refresh(ctx, id)
	}
}

func (r *Refresher) next() (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.order) == 0 {
		return "", false
	}
	id := r.order[0]
	r.order = r.order[1:]
	r.bytes -= len(id)
	delete(r.queued, id)
	return id, true
}

func (r *Refresher) refresh(ctx context.Context, id string) {
	// Unauthorised, unavailable: the account stays unconfirmed, which is
	// the truth as far as we know it.
	if _, err := r.Fetch(ctx, id); err != nil && ctx.Err() == nil {
		r.logger.Warn("provider refresh failed; account stays unconfirmed", "account", id, "error", err)
	}
}

// Fetch asks the provider for the account now and commits its answer: the
// account object, applied like a delivery that carries it, or, when the
// provider no longer has an account we know, its removal. An account
// neither knows is store.ErrNotFound; the provider's errors are returned
// as its client gives them.
func (r *Refresher) Fetch(ctx context.Context, accountID string) (store.Result, error) {
	acct, err := r.fetch.GetAccount(ctx, accountID)
	switch {
	case errors.Is(err, provider.ErrNotFound):
		return r.gone(ctx, accountID)
	case err != nil:
		return store.Result{}, err
	}
	return r.commit(ctx, Delivery(acct, r.now().UTC()))
}

// gone records the removal of an account the provider answers 404 for.
func (r *Refresher) gone(ctx context.Context, accountID string) (store.Result, error) {
	rec, err := r.store.GetHealth(ctx, accountID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Result{}, fmt.Errorf("account %q: neither this service nor the provider knows it: %w", accountID, store.ErrNotFound)
	}
	if err != nil {
		return store.Result{}, err
	}
	return r.commit(ctx, store.Delivery{
		Source: store.SourceAPI,
		Actor:  Actor,
		Name:   "GET /v2/accounts/{id}",
		Body:   fmt.Appendf(nil, `{"action":"provider_fetch","account":%q,"answer":"404 not found"}`, accountID),
		Decoded: health.Delivery{
			Event:      health.EventAccountsRemoved,
			AccountID:  accountID,
			UserID:     rec.UserID,
			ReceivedAt: r.now().UTC(),
		},
	})
}

// Delivery turns the provider's account object into the accounts.updated
// it stands for, as our own API action. The body keeps the object's exact
// bytes; the snapshot, the form readers can serve (see webhook.Decode).
func Delivery(a provider.Account, at time.Time) store.Delivery {
	c := a.Connection
	return store.Delivery{
		Source: store.SourceAPI,
		Actor:  Actor,
		Name:   "GET /v2/accounts/{id}",
		Body:   a.Raw,
		Decoded: health.Delivery{
			Event:        health.EventAccountsUpdated,
			AccountID:    a.ID,
			UserID:       a.User,
			ErrorCode:    c.ErrorCode,
			ErrorMessage: c.ErrorMessage,
			ReceivedAt:   at,
			Snapshot: &health.Snapshot{
				ConnectionStatus:       string(c.Status),
				ConnectionErrorCode:    c.ErrorCode,
				ConnectionErrorMessage: c.ErrorMessage,
				ConnectionUpdatedAt:    c.UpdatedAt,
				UpdatedAt:              a.UpdatedAt,
				ScannedAt:              a.ScannedAt,
				Raw:                    jsonstruct.Servable(a.Raw),
			},
		},
	}
}
