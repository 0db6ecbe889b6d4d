package service

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"

	"github.com/accounthealth/accounthealth/server/store"
)

// tracing holds what the service needs to record spans: from the webhook
// route, through the gRPC call and the intake steps, to the commit, and
// one span per stream event sent. With no tracer provider configured it
// is off, and costs nothing but no-op calls.
type tracing struct {
	provider trace.TracerProvider // nil: off
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
}

func newTracing(tp trace.TracerProvider) tracing {
	t := tracing{provider: tp, prop: propagation.TraceContext{}}
	if tp == nil {
		t.tracer = noop.NewTracerProvider().Tracer("")
		return t
	}
	t.tracer = tp.Tracer("github.com/accounthealth/accounthealth/server")
	return t
}

func (t tracing) otelOptions() []otelgrpc.Option {
	return []otelgrpc.Option{otelgrpc.WithTracerProvider(t.provider), otelgrpc.WithPropagators(t.prop)}
}

// serverOptions and dialOptions put gRPC calls in spans and carry the
// trace context across the in-process hop.
func (t tracing) serverOptions() []grpc.ServerOption {
	if t.provider == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(t.otelOptions()...))}
}

func (t tracing) dialOptions() []grpc.DialOption {
	if t.provider == nil {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(t.otelOptions()...))}
}

// startWebhook opens the server span of a webhook request, continuing the
// sender's trace when it sent a traceparent header.
func (t tracing) startWebhook(r *http.Request) (context.Context, trace.Span) {
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	return t.tracer.Start(ctx, "POST "+WebhookPath, trace.WithSpanKind(trace.SpanKindServer))
}

// streamSent records one event sent to one subscriber. It names the log
// entry that caused the event, as the intake.commit span does: that is
// what ties a delivery's trace to its events on every stream.
func (t tracing) streamSent(ctx context.Context, c *store.Change) {
	_, span := t.tracer.Start(ctx, "stream.send", trace.WithAttributes(
		attribute.Int64("accounthealth.change_seq", c.Seq),
		attribute.Int64("accounthealth.entry_seq", c.EntrySeq),
		attribute.String("accounthealth.kind", c.Kind.String())))
	span.End()
}
