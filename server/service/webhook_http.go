package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc/metadata"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/auth"
	"github.com/accounthealth/accounthealth/server/intake"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// WebhookPath is where the provider POSTs deliveries: the HTTP rule of
// ReceiveArgyleWebhook (proto/accounthealth/v1/http_rules.yaml).
const WebhookPath = "/v1/webhooks/argyle"

// webhookFront is what the webhook listener does before the gateway: the
// transport's concerns, each once. In order: a request id, the trace span,
// the source filter, and reading the body (the signature covers the exact
// bytes, so the gateway must not decode and re-encode it).
type webhookFront struct {
	next    http.Handler
	sources *auth.SourceFilter // who may deliver; admits all when not active
	// readLimit is the most of a body read: one byte over the cap, so
	// that the pipeline, which owns the cap, refuses what is over it.
	readLimit int64
	// inflight holds the bytes of the bodies read but not yet answered,
	// across all requests, so that a flood of large deliveries cannot
	// hold more memory than its budget; a body whose buffer finds no room
	// in time is refused.
	inflight *inflightBodies
	observer intake.Observer // counts what the transport refuses
	tracing  tracing
	logger   *slog.Logger
}

// newWebhookHandler serves the internet-facing listener: the webhook route,
// which is ReceiveArgyleWebhook through the gateway, and the probes.
// Everything else (metrics included) is the gateway's 404.
func newWebhookHandler(webhooks ahv1.WebhookServiceServer, front webhookFront, ready *readiness) (http.Handler, error) {
	none := func(string) (string, bool) { return "", false }
	router := newMethodRouter(front.logger,
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &rawBodyMarshaler{}),
		// Nothing of the sender's headers reaches the RPC but what
		// webhookMetadata picks; the response's id header is set up front.
		runtime.WithIncomingHeaderMatcher(none),
		runtime.WithOutgoingHeaderMatcher(none),
		runtime.WithMetadata(webhookMetadata),
		runtime.WithErrorHandler(httpErrorHandler),
	)
	if err := ahv1.RegisterWebhookServiceHandlerServer(context.Background(), router.mux, webhooks); err != nil {
		return nil, err
	}
	if err := handleProbes(router.mux, ready); err != nil {
		return nil, err
	}
	front.next = router
	return &front, nil
}

func (f *webhookFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(requestIDHeader)
	if !isRequestID(id) {
		id = newRequestID()
		r.Header.Set(requestIDHeader, id)
	}
	w.Header().Set(requestIDHeader, id)
	if r.Method != http.MethodPost || r.URL.Path != WebhookPath {
		f.next.ServeHTTP(w, r)
		return
	}
	ctx, span := f.tracing.startWebhook(r)
	defer span.End()
	if src, ok := f.sources.Admit(r); !ok {
		f.refuse(ctx, w, intake.ReasonSourceNotAllowed, errorf(errSourceNotAllowed,
			"deliveries are accepted only from the configured sources (--webhook-allow-sources); this one came from %s", src))
		return
	}
	body, held, err := f.readHeld(ctx, r)
	defer f.inflight.release(held)
	switch {
	case errors.Is(err, errIntakeBusy):
		w.Header().Set("Retry-After", "1")
		f.refuse(ctx, w, intake.ReasonBusy, err)
		return
	case err != nil:
		f.refuse(ctx, w, intake.ReasonUnreadable, errorf(errUnreadable, "could not read the request body: %v", err))
		return
	}
	r = r.WithContext(ctx)
	r.Body = &readBody{data: body}
	// The signature comes from its header only, never from the URL.
	r.URL.RawQuery = ""
	f.next.ServeHTTP(w, r)
}

// firstRead is the room a body takes before its first byte: a typical
// delivery whole, and no more for a sender that announces a large body
// and sends it slowly. The room then doubles as the body arrives.
const firstRead = 64 << 10

// readHeld reads r's body up to readLimit, taking room in the budget for
// its buffer before the buffer grows, so that the bodies being read hold
// at most the budget, each only what it has sent. It returns the room it
// holds, which the caller releases once the delivery is answered; a body
// that did not get room fails with errIntakeBusy.
func (f *webhookFront) readHeld(ctx context.Context, r *http.Request) (body []byte, held int64, err error) {
	size := min(firstRead, f.readLimit)
	if r.ContentLength >= 0 {
		// One more byte than announced, to read the end of the body.
		size = min(size, r.ContentLength+1)
	}
	for {
		if len(body) == cap(body) {
			if size == 0 {
				// readLimit bytes: over the cap, which the pipeline refuses
				// (413); net/http closes the connection on the rest.
				return body, held, nil
			}
			if !f.inflight.hold(ctx, size) {
				return nil, held, f.inflight.busy()
			}
			held += size
			body = append(make([]byte, 0, int64(cap(body))+size), body...)
			size = min(int64(cap(body)), f.readLimit-int64(cap(body)))
		}
		n, err := r.Body.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if errors.Is(err, io.EOF) {
			return body, held, nil
		}
		if err != nil {
			return body, held, err
		}
	}
}

// refuse answers a delivery the transport turns down, counting it as the
// pipeline counts those it refuses.
func (f *webhookFront) refuse(ctx context.Context, w http.ResponseWriter, reason string, err error) {
	f.observer.DeliveryReceived()
	f.observer.DeliveryRejected(reason)
	f.logger.WarnContext(ctx, "webhook refused", "reason", reason, "error", err)
	writeError(ctx, f.logger, w, err)
}

// webhookMetadata hands the RPC what it needs of the HTTP request: the
// request id, the caller, and the signature header, which the gateway
// cannot put in a request field.
func webhookMetadata(_ context.Context, r *http.Request) metadata.MD {
	return metadata.Pairs(
		requestIDHeader, r.Header.Get(requestIDHeader),
		callerHeader, webhookCaller,
		signatureMetadata, asciiSignature(r.Header.Get(webhook.SignatureHeader)),
	)
}

// asciiSignature returns a signature header as gRPC metadata can carry
// it. A header that is not printable ASCII cannot be a hex signature; its
// quoted form keeps it failing verification (401) instead of failing the
// call (500, which the sender would retry).
func asciiSignature(sig string) string {
	if isPrintableASCII(sig) {
		return sig
	}
	return strconv.QuoteToASCII(sig)
}

// isRequestID reports whether a caller's request id can be kept: short
// enough for the logs, and printable ASCII, as gRPC metadata must be.
func isRequestID(id string) bool {
	return id != "" && len(id) <= 64 && isPrintableASCII(id)
}

func isPrintableASCII(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r > '~' })
}

// readBody is a body already read, so the marshaler can take its bytes as
// they are instead of copying them.
type readBody struct{ data []byte }

func (b *readBody) Read(p []byte) (int, error) {
	if len(b.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

func (b *readBody) Close() error { return nil }

// rawBodyMarshaler decodes a webhook body into ReceiveArgyleWebhookRequest's
// payload as the exact bytes received, and writes answers as JSON.
type rawBodyMarshaler struct{ runtime.JSONPb }

func (*rawBodyMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		dst, ok := v.(*[]byte)
		if !ok {
			return errors.New("the webhook route decodes only the raw payload")
		}
		b, ok := r.(*readBody)
		if !ok {
			return errors.New("the webhook route reads the body in webhookFront")
		}
		*dst, b.data = b.data, nil
		return nil
	})
}

// inflightBodies is a byte budget shared by concurrent requests: those of
// the webhook route and those of the gRPC listener's ReceiveArgyleWebhook.
type inflightBodies struct {
	budget int64
	sem    *semaphore.Weighted
}

// inflightBodiesPerCap is how many bodies of the largest size are held at
// once: enough to keep the store's group commit busy (a commit of them
// takes milliseconds), and thousands of the usual 2 KB ones. A body is
// held about 6 times on its way to the store (read, the gateway's
// request, gRPC's frames and message, the decoded account object and
// strings), so at the default 1 MiB cap this is about 100 MiB.
const inflightBodiesPerCap = 16

func newInflightBodies(maxBody int) *inflightBodies {
	budget := inflightBodiesPerCap * (int64(maxBody) + 1)
	return &inflightBodies{budget: budget, sem: semaphore.NewWeighted(budget)}
}

// inflightWait is how long a delivery waits for room before it is
// refused: long enough for a few commits to free some, far below the
// provider's 10 s timeout. A waiting request holds its headers only; its
// body stays with the sender.
const inflightWait = 2 * time.Second

// hold takes n bytes of the budget, waiting up to inflightWait for them,
// and reports whether it got them.
func (b *inflightBodies) hold(ctx context.Context, n int64) bool {
	if b.sem.TryAcquire(n) {
		return true // no timer when there is room
	}
	ctx, cancel := context.WithTimeout(ctx, inflightWait)
	defer cancel()
	return b.sem.Acquire(ctx, n) == nil
}

func (b *inflightBodies) release(n int64) { b.sem.Release(n) }

// busy is the error for a body that does not fit.
func (b *inflightBodies) busy() error {
	return errorf(errIntakeBusy, "the server already holds %d bytes of deliveries it has not stored yet, its limit; nothing was stored: send it again later", b.budget)
}
