package tracing

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// A span's attributes are cut at MaxAttributeBytes, however large the
// delivery made them.
func TestSpanAttributesBounded(t *testing.T) {
	tp, shutdown, err := New(t.Context(), "127.0.0.1:1", true)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// The span is never ended, so nothing waits to be exported.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = shutdown(ctx)
	}()
	_, span := tp.Tracer("test").Start(t.Context(), "large")
	span.SetAttributes(attribute.String("accounthealth.event", strings.Repeat("e", 1<<20)))
	attrs := span.(sdktrace.ReadOnlySpan).Attributes()
	if len(attrs) != 1 {
		t.Fatalf("span has %d attributes, want 1", len(attrs))
	}
	if n := len(attrs[0].Value.AsString()); n != MaxAttributeBytes {
		t.Fatalf("attribute kept %d bytes, want %d", n, MaxAttributeBytes)
	}
}
