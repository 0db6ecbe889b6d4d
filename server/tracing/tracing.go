// Package tracing exports the service's OpenTelemetry spans over OTLP. It
// is off unless an endpoint is configured: tracing costs time on every
// delivery, and a collector that is not there must not cost anything.
package tracing

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ServiceName names this service in traces.
const ServiceName = "accounthealth"

// MaxAttributeBytes cuts each span attribute: attributes name events,
// ids and URLs, which a sender may make as large as its request, and the
// exporter queues up to 2,048 spans, so that spans waiting to be exported
// stay within a few tens of MiB.
const MaxAttributeBytes = 1 << 10

// New returns a tracer provider that batches spans to the OTLP/gRPC
// collector at endpoint (host:port), and the function that flushes and
// stops it. insecure sends them without TLS (a collector on the same host
// or network namespace). Exporting happens in the background: a collector
// that is down loses spans, never deliveries.
func New(ctx context.Context, endpoint string, insecure bool) (trace.TracerProvider, func(context.Context) error, error) {
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(endpoint)}
	if insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("otlp-endpoint: %w", err)
	}
	limits := sdktrace.NewSpanLimits()
	if limits.AttributeValueLengthLimit < 0 { // unless OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT says otherwise
		limits.AttributeValueLengthLimit = MaxAttributeBytes
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSpanLimits(limits),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", ServiceName))),
	)
	return tp, tp.Shutdown, nil
}
