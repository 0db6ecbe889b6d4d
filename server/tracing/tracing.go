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
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", ServiceName))),
	)
	return tp, tp.Shutdown, nil
}
