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
	svc     *WebhookService
	chain   grpc.UnaryServerInterceptor
	info    *grpc.UnaryServerInfo
	tracing tracing
}

func newDirectWebhooks(svc *WebhookService, chain []grpc.UnaryServerInterceptor, tr tracing) *directWebhooks {
	return &directWebhooks{
		svc: svc, chain: chainUnary(chain), tracing: tr,
		info: &grpc.UnaryServerInfo{Server: svc, FullMethod: ahv1.WebhookService_ReceiveArgyleWebhook_FullMethodName},
	}
}

func (d *directWebhooks) ReceiveArgyleWebhook(ctx context.Context, req *ahv1.ReceiveArgyleWebhookRequest) (*ahv1.ReceiveArgyleWebhookResponse, error) {
	// Named for the method, as the gRPC servers' stats handler names the
	// spans of their calls: a delivery's trace has the same steps whether
	// it came over HTTP or gRPC.
	ctx, span := d.tracing.tracer.Start(ctx, d.info.FullMethod[1:], trace.WithSpanKind(trace.SpanKindInternal))
	defer span.End()
	resp, err := d.chain(ctx, req, d.info, func(ctx context.Context, req any) (any, error) {
		return d.svc.ReceiveArgyleWebhook(ctx, req.(*ahv1.ReceiveArgyleWebhookRequest))
	})
	if err != nil {
		span.RecordError(err)
		return nil, err
	}
	r, _ := resp.(*ahv1.ReceiveArgyleWebhookResponse)
	return r, nil
}

// chainUnary is the interceptors as one, the first outermost, as
// grpc.ChainUnaryInterceptor makes them for a server.
func chainUnary(ics []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		next := handler
		for i := len(ics) - 1; i >= 0; i-- {
			ic, inner := ics[i], next
			next = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, inner) }
		}
		return next(ctx, req)
	}
}
