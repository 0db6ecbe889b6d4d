package service

import (
	"context"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

// directWebhooks is the webhook route's way into WebhookService: the
// gateway calls it in process, as it would call a gRPC server, and it runs
// the in-process server's interceptors itself. Through the in-memory gRPC
// connection, the request's second encoding, its HTTP/2 framing and the
// stream's goroutine took a quarter to a third of the service's CPU per
// delivery (see docs/benchmarks.md).
type directWebhooks struct {
	ahv1.UnimplementedWebhookServiceServer
	call    grpc.UnaryHandler // WebhookService's method behind the interceptors
	tracing tracing
}

func newDirectWebhooks(svc *WebhookService, interceptors []grpc.UnaryServerInterceptor, tr tracing) *directWebhooks {
	info := &grpc.UnaryServerInfo{Server: svc, FullMethod: ahv1.WebhookService_ReceiveArgyleWebhook_FullMethodName}
	return &directWebhooks{tracing: tr, call: chained(interceptors, info, func(ctx context.Context, req any) (any, error) {
		return svc.ReceiveArgyleWebhook(ctx, req.(*ahv1.ReceiveArgyleWebhookRequest))
	})}
}

func (d *directWebhooks) ReceiveArgyleWebhook(ctx context.Context, req *ahv1.ReceiveArgyleWebhookRequest) (*ahv1.ReceiveArgyleWebhookResponse, error) {
	// Named for the method, as the gRPC servers' stats handler names the
	// spans of their calls: a delivery's trace has the same steps whether
	// it came over HTTP or gRPC.
	ctx, span := d.tracing.tracer.Start(ctx, ahv1.WebhookService_ReceiveArgyleWebhook_FullMethodName[1:], trace.WithSpanKind(trace.SpanKindInternal))
	defer span.End()
	resp, err := d.call(ctx, req)
	if err != nil {
		span.RecordError(err)
		return nil, err
	}
	r, _ := resp.(*ahv1.ReceiveArgyleWebhookResponse)
	return r, nil
}

// chained is handler behind the interceptors, the first outermost, as
// grpc.ChainUnaryInterceptor runs them for a server. It is built once, so
// a call allocates no closures.
func chained(interceptors []grpc.UnaryServerInterceptor, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) grpc.UnaryHandler {
	for i := len(interceptors) - 1; i >= 0; i-- {
		ic, next := interceptors[i], handler
		handler = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, next) }
	}
	return handler
}
