// Package intake takes one webhook delivery from raw bytes to a durable,
// applied log entry: cap -> verify -> decode -> commit. Each step is a small
// function; Pipeline.Receive runs them in that order and stops at the first
// failure, so nothing unverified or malformed is ever stored.
package intake

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// Errors of the pipeline, besides webhook.ErrMissingSignature,
// webhook.ErrInvalidSignature and webhook.ErrMalformed.
var (
	// ErrTooLarge: the body is over the cap; nothing was stored.
	ErrTooLarge = errors.New("delivery body too large")
	// ErrUnavailable: the delivery could not be committed; the sender
	// should retry.
	ErrUnavailable = errors.New("delivery not stored")
)

// DefaultMaxBodyBytes caps a delivery. The provider's largest, an
// accounts.updated with its resource, is about 2 KB.
const DefaultMaxBodyBytes = 1 << 20

// Config configures a Pipeline.
type Config struct {
	// Secrets verify signatures; a delivery signed with any of them is
	// accepted (two at once while rotating).
	Secrets []string
	// AllowUnsigned accepts deliveries that carry no signature. A signature
	// that is present is still verified.
	AllowUnsigned bool
	// MaxBodyBytes caps the body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int
	// Observer hears what becomes of each delivery; nil: nobody.
	Observer Observer
	// Tracer records a span per step; nil: no tracing.
	Tracer trace.Tracer
}

// Observer hears what becomes of each delivery, for metrics. Its methods
// are called concurrently and must not block.
type Observer interface {
	// DeliveryReceived: a delivery arrived, before any check.
	DeliveryReceived()
	// DeliveryAccepted: it is durable; elapsed runs from its receipt by
	// the pipeline to its acknowledgement.
	DeliveryAccepted(outcome health.Outcome, elapsed time.Duration)
	// DeliveryRejected: it was refused, for reason (a Reason constant).
	DeliveryRejected(reason string)
}

// Reasons a delivery is refused, as an Observer hears them: a fixed
// vocabulary, so it is safe as a metric label.
const (
	ReasonTooLarge         = "too_large"
	ReasonUnreadable       = "unreadable" // the transport could not read the body
	ReasonBusy             = "busy"       // the bodies in flight filled the transport's budget
	ReasonSourceNotAllowed = "source_not_allowed"
	ReasonMissingSignature = "missing_signature"
	ReasonInvalidSignature = "invalid_signature"
	ReasonMalformed        = "malformed"
	ReasonStoreUnavailable = "store_unavailable"
	ReasonCanceled         = "canceled" // the sender gave up first
	ReasonOther            = "other"
)

// reason names why Receive refused a delivery with err.
func reason(err error) string {
	switch {
	case errors.Is(err, ErrTooLarge):
		return ReasonTooLarge
	case errors.Is(err, webhook.ErrMissingSignature):
		return ReasonMissingSignature
	case errors.Is(err, webhook.ErrInvalidSignature):
		return ReasonInvalidSignature
	case errors.Is(err, webhook.ErrMalformed):
		return ReasonMalformed
	case errors.Is(err, ErrUnavailable):
		return ReasonStoreUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ReasonCanceled
	}
	return ReasonOther
}

// unobserved is the Observer of a pipeline configured without one.
type unobserved struct{}

func (unobserved) DeliveryReceived()                              {}
func (unobserved) DeliveryAccepted(health.Outcome, time.Duration) {}
func (unobserved) DeliveryRejected(string)                        {}

// Pipeline runs the intake steps.
type Pipeline struct {
	verifier      *webhook.Verifier // nil when no secret is configured
	allowUnsigned bool
	maxBody       int
	commit        func(context.Context, store.Delivery) (store.Result, error)
	now           func() time.Time
	observer      Observer
	tracer        trace.Tracer
}

// NewPipeline checks cfg and builds a pipeline that commits through commit
// (normally (*Batcher).Submit).
func NewPipeline(cfg Config, commit func(context.Context, store.Delivery) (store.Result, error)) (*Pipeline, error) {
	p := &Pipeline{allowUnsigned: cfg.AllowUnsigned, maxBody: cfg.MaxBodyBytes, commit: commit, now: time.Now, observer: cfg.Observer}
	if p.maxBody <= 0 {
		p.maxBody = DefaultMaxBodyBytes
	}
	if p.observer == nil {
		p.observer = unobserved{}
	}
	p.tracer = cfg.Tracer
	if p.tracer == nil {
		p.tracer = noop.NewTracerProvider().Tracer("")
	}
	if len(cfg.Secrets) == 0 {
		if !cfg.AllowUnsigned {
			return nil, errors.New("no webhook secret configured: set the secret of the provider's webhook subscription, or explicitly allow unsigned deliveries")
		}
		return p, nil
	}
	v, err := webhook.NewVerifier(cfg.Secrets...)
	if err != nil {
		return nil, err
	}
	p.verifier = v
	return p, nil
}

// Accepted describes a committed delivery.
type Accepted struct {
	Envelope webhook.Envelope
	Result   store.Result
}

// Receive runs the pipeline over one delivery. When it returns nil the
// delivery is durable and applied.
func (p *Pipeline) Receive(ctx context.Context, payload []byte, signature string) (Accepted, error) {
	start := time.Now()
	p.observer.DeliveryReceived()
	acc, err := p.receive(ctx, payload, signature)
	if err != nil {
		p.observer.DeliveryRejected(reason(err))
		return acc, err
	}
	p.observer.DeliveryAccepted(acc.Result.Outcome, time.Since(start))
	return acc, nil
}

func (p *Pipeline) receive(ctx context.Context, payload []byte, signature string) (Accepted, error) {
	if err := p.checkSize(payload); err != nil {
		return Accepted{}, err
	}
	var verified bool
	err := p.step(ctx, "intake.verify", func(context.Context) (err error) {
		verified, err = p.verify(payload, signature)
		return err
	})
	if err != nil {
		return Accepted{}, err
	}
	var env webhook.Envelope
	err = p.step(ctx, "intake.decode", func(context.Context) (err error) {
		env, err = webhook.Decode(payload, p.now().UTC())
		return err
	})
	if err != nil {
		return Accepted{}, err
	}
	var res store.Result
	err = p.step(ctx, "intake.commit", func(ctx context.Context) (err error) {
		res, err = p.commit(ctx, store.Delivery{Body: payload, Name: env.Name, Decoded: env.Delivery, Verified: verified})
		if err == nil {
			// Streams' spans name the same log entry, which ties a
			// delivery's trace to the events it caused.
			trace.SpanFromContext(ctx).SetAttributes(
				attribute.String("accounthealth.event", env.Event),
				attribute.Int64("accounthealth.entry_seq", res.EntrySeq),
				attribute.String("accounthealth.outcome", res.Outcome.String()))
		}
		return err
	})
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return Accepted{}, ctxErr
		}
		return Accepted{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return Accepted{Envelope: env, Result: res}, nil
}

// step runs one pipeline step in its own span.
func (p *Pipeline) step(ctx context.Context, name string, fn func(context.Context) error) error {
	ctx, span := p.tracer.Start(ctx, name)
	defer span.End()
	err := fn(ctx)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

func (p *Pipeline) checkSize(payload []byte) error {
	if len(payload) > p.maxBody {
		// A transport reads at most one byte over the cap, so the length
		// is not the body's: say only the limit.
		return fmt.Errorf("%w: the limit is %d bytes", ErrTooLarge, p.maxBody)
	}
	return nil
}

// verify checks payload's signature. It reports false, with no error, when
// the delivery was not checked: it carries no signature and unsigned
// deliveries are allowed, or no secret is configured at all (verification
// is off, which Config only permits with AllowUnsigned).
func (p *Pipeline) verify(payload []byte, signature string) (bool, error) {
	if p.verifier == nil || (signature == "" && p.allowUnsigned) {
		return false, nil
	}
	if err := p.verifier.Verify(payload, signature); err != nil {
		return false, err
	}
	return true, nil
}
