package notify

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/outbound"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/stream"
)

// Bounds of an endpoint's settings.
const (
	MaxEndpoints       = 1000
	MaxConcurrency     = 100
	DefaultConcurrency = 10
	maxDescription     = 1024
	maxFilterValues    = 1000
	// DefaultOverlap is how long a rotated secret keeps signing beside the
	// new one when the caller names no overlap.
	DefaultOverlap = 24 * time.Hour
	// MaxOverlap bounds a rotation's overlap.
	MaxOverlap = 30 * 24 * time.Hour
)

// ErrTooMany: the service holds MaxEndpoints endpoints already.
var ErrTooMany = errors.New("too many endpoints")

// Spec is what a caller sets on an endpoint.
type Spec struct {
	URL         string
	Description string
	// Filter selects the changes the endpoint receives, with the same
	// meaning as StreamDisconnections' (recoveries are opt-in).
	Filter      stream.Filter
	RateLimit   float64 // messages per second, 0 for none
	Concurrency int     // deliveries in flight, 0 for DefaultConcurrency
}

// SpecOf returns the settings of a stored endpoint.
func SpecOf(e store.Endpoint) (Spec, error) {
	s := Spec{URL: e.URL, Description: e.Description, RateLimit: e.RateLimit, Concurrency: e.Concurrency}
	if len(e.Filter) > 0 {
		if err := json.Unmarshal(e.Filter, &s.Filter); err != nil {
			return Spec{}, fmt.Errorf("notify: endpoint %s: the stored filter does not decode: %w", e.ID, err)
		}
	}
	return s, nil
}

// check validates s, naming the field at fault.
func (n *Notifier) check(ctx context.Context, s *Spec) error {
	if err := n.urls.check(ctx, s.URL); err != nil {
		return err
	}
	if len(s.Description) > maxDescription {
		return invalid("description", "is longer than %d bytes", maxDescription)
	}
	if s.RateLimit < 0 || math.IsNaN(s.RateLimit) || s.RateLimit > 1e6 {
		return invalid("rate_limit", "must be between 0 (none) and 1000000 messages per second")
	}
	if s.Concurrency == 0 {
		s.Concurrency = DefaultConcurrency
	}
	if s.Concurrency < 0 || s.Concurrency > MaxConcurrency {
		return invalid("concurrency", "must be between 1 and %d (0 means %d)", MaxConcurrency, DefaultConcurrency)
	}
	return checkFilter(s.Filter)
}

func checkFilter(f stream.Filter) error {
	if len(f.UserIDs)+len(f.ErrorCodes)+len(f.Kinds) > maxFilterValues {
		return invalid("filter", "lists more than %d values", maxFilterValues)
	}
	for _, id := range f.UserIDs {
		if id == "" || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return invalid("user_ids", "contains %q, which is not a user id", id)
		}
	}
	for _, code := range f.ErrorCodes {
		if !health.Classify(code).Known {
			return invalid("error_codes", "contains %q, which is not one of the provider's documented error codes (docs/provider.md#error-codes)", code)
		}
	}
	if _, err := f.Compile(); err != nil {
		return invalid("kinds", "contains an unknown transition kind (%v)", err)
	}
	return nil
}

// Create stores a new endpoint and returns it with its secret, which no
// later call shows again. It receives the changes committed after it.
func (n *Notifier) Create(ctx context.Context, s Spec) (store.Endpoint, string, error) {
	if err := n.check(ctx, &s); err != nil {
		return store.Endpoint{}, "", err
	}
	all, err := n.outbox.ListEndpoints(ctx)
	if err != nil {
		return store.Endpoint{}, "", err
	}
	if len(all) >= MaxEndpoints {
		return store.Endpoint{}, "", fmt.Errorf("%w: the service holds %d endpoints, its limit; delete one first", ErrTooMany, len(all))
	}
	now := n.now()
	secret := NewSecret()
	e := store.Endpoint{ID: "ep_" + strings.ToLower(rand.Text()), Secrets: []store.Secret{{Key: secret}}, CreatedAt: now, UpdatedAt: now}
	if err := setSpec(&e, s); err != nil {
		return store.Endpoint{}, "", err
	}
	e, err = n.outbox.CreateEndpoint(ctx, e)
	if err != nil {
		return store.Endpoint{}, "", err
	}
	n.Notify()
	return e, secret, nil
}

func setSpec(e *store.Endpoint, s Spec) error {
	filter, err := json.Marshal(s.Filter)
	if err != nil {
		return err
	}
	e.URL, e.Description, e.Filter, e.RateLimit, e.Concurrency = s.URL, s.Description, filter, s.RateLimit, s.Concurrency
	return nil
}

// Get returns the endpoint, or an error wrapping store.ErrNotFound.
func (n *Notifier) Get(ctx context.Context, id string) (store.Endpoint, error) {
	return n.outbox.GetEndpoint(ctx, id)
}

// List returns every endpoint (at most MaxEndpoints).
func (n *Notifier) List(ctx context.Context) ([]store.Endpoint, error) {
	return n.outbox.ListEndpoints(ctx)
}

// modify reads the endpoint, lets change edit it, and stores it.
func (n *Notifier) modify(ctx context.Context, id string, change func(*store.Endpoint) error) (store.Endpoint, error) {
	e, err := n.outbox.GetEndpoint(ctx, id)
	if err != nil {
		return store.Endpoint{}, err
	}
	if err := change(&e); err != nil {
		return store.Endpoint{}, err
	}
	e.UpdatedAt = n.now()
	if err := n.outbox.UpdateEndpoint(ctx, e); err != nil {
		return store.Endpoint{}, err
	}
	n.Notify()
	return e, nil
}

// Update changes the endpoint's settings: edit receives the current ones.
func (n *Notifier) Update(ctx context.Context, id string, edit func(*Spec)) (store.Endpoint, error) {
	return n.modify(ctx, id, func(e *store.Endpoint) error {
		s, err := SpecOf(*e)
		if err != nil {
			return err
		}
		edit(&s)
		if err := n.check(ctx, &s); err != nil {
			return err
		}
		return setSpec(e, s)
	})
}

// SetDisabled disables the endpoint (nothing is fanned in or sent to it
// meanwhile, and nothing is lost: enabling it resumes from its cursor)
// or enables it again, which also forgets its run of failures.
func (n *Notifier) SetDisabled(ctx context.Context, id string, disabled bool, reason string) (store.Endpoint, error) {
	return n.modify(ctx, id, func(e *store.Endpoint) error {
		e.Disabled, e.DisabledReason = disabled, reason
		if !disabled {
			e.DisabledReason, e.FailingSince = "", time.Time{}
		}
		return nil
	})
}

// Delete deletes the endpoint with its messages and attempts.
func (n *Notifier) Delete(ctx context.Context, id string) error {
	return n.outbox.DeleteEndpoint(ctx, id)
}

// RotateSecret gives the endpoint a new secret, returned once; the old one
// keeps signing beside it for overlap (0 means DefaultOverlap; negative,
// not at all).
func (n *Notifier) RotateSecret(ctx context.Context, id string, overlap time.Duration) (store.Endpoint, string, error) {
	switch {
	case overlap == 0:
		overlap = DefaultOverlap
	case overlap < 0:
		overlap = 0
	case overlap > MaxOverlap:
		return store.Endpoint{}, "", invalid("overlap", "must be at most %v", MaxOverlap)
	}
	var secret string
	e, err := n.modify(ctx, id, func(e *store.Endpoint) error {
		e.Secrets, secret = rotate(e.Secrets, n.now(), overlap)
		return nil
	})
	return e, secret, err
}

// ListMessages pages through the endpoint's messages, newest first.
func (n *Notifier) ListMessages(ctx context.Context, q store.MessageQuery) (store.MessagePage, error) {
	if _, err := n.outbox.GetEndpoint(ctx, q.EndpointID); err != nil {
		return store.MessagePage{}, err
	}
	return n.outbox.ListMessages(ctx, q)
}

// ListAttempts pages through the endpoint's attempts, newest first.
func (n *Notifier) ListAttempts(ctx context.Context, q store.AttemptQuery) (store.AttemptPage, error) {
	if _, err := n.outbox.GetEndpoint(ctx, q.EndpointID); err != nil {
		return store.AttemptPage{}, err
	}
	return n.outbox.ListAttempts(ctx, q)
}

// Replay sends again the endpoint's messages of changes that occurred at
// or after since, delivered or not, each with its own id: a receiver that
// deduplicates by webhook-id sees no message twice. It returns how many.
func (n *Notifier) Replay(ctx context.Context, id string, since time.Time) (int, error) {
	if _, err := n.outbox.GetEndpoint(ctx, id); err != nil {
		return 0, err
	}
	count, err := n.outbox.Requeue(ctx, store.RequeueQuery{EndpointID: id, Since: since, Now: n.now()})
	n.Notify()
	return count, err
}

// Retry sends one message again now, with a fresh retry schedule.
func (n *Notifier) Retry(ctx context.Context, id, messageID string) error {
	seq, err := outbound.SeqOf(messageID)
	if err != nil {
		return invalid("message_id", "%q is not a message id this service issued", messageID)
	}
	count, err := n.outbox.Requeue(ctx, store.RequeueQuery{EndpointID: id, Seq: seq, Now: n.now()})
	if err == nil && count == 0 {
		return fmt.Errorf("%w: endpoint %q has no message %q", store.ErrNotFound, id, messageID)
	}
	n.Notify()
	return err
}
