package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// requestIDHeader carries a request id from the HTTP routes into gRPC
// metadata and back to the caller, so one id follows a delivery end to end.
const requestIDHeader = "x-request-id"

type requestIDKey struct{}

// newRequestID returns 16 random hex characters.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestID returns the caller's id from metadata (bounded, so a caller
// cannot flood the logs), or a new one.
func requestID(ctx context.Context) string {
	if v := firstMetadata(ctx, requestIDHeader); v != "" && len(v) <= 64 {
		return v
	}
	return newRequestID()
}

// unaryInterceptors is the one interceptor chain, in order: recovery first
// so a panic anywhere below becomes an Internal status, not a dead process;
// then request id and logging, so every later line carries the id; then
// the error mapping, so handlers and authentication return the domain's
// errors and the log shows the code the caller got; then authentication,
// which names the caller for audit entries. Streams get the same chain.
func unaryInterceptors(logger *slog.Logger, authn authStep) []grpc.UnaryServerInterceptor {
	return []grpc.UnaryServerInterceptor{recoverUnary(logger), logUnary(logger), statusUnary(logger), authUnary(authn)}
}

func streamInterceptors(logger *slog.Logger, authn authStep) []grpc.StreamServerInterceptor {
	return []grpc.StreamServerInterceptor{recoverStream(logger), logStream(logger), statusStream(logger), authStream(authn)}
}

func recoverUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = panicToStatus(ctx, logger, info.FullMethod, r)
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = panicToStatus(ss.Context(), logger, info.FullMethod, r)
			}
		}()
		return handler(srv, ss)
	}
}

func panicToStatus(ctx context.Context, logger *slog.Logger, method string, r any) error {
	logger.ErrorContext(ctx, "panic in handler", "method", method, "panic", r, "stack", string(debug.Stack()))
	return status.Error(codes.Internal, "internal error; the server log has the details")
}

func logUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx = withRequestID(ctx)
		start := time.Now()
		resp, err := handler(ctx, req)
		logDone(ctx, logger, info.FullMethod, start, err)
		return resp, err
	}
}

func logStream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := withRequestID(ss.Context())
		start := time.Now()
		err := handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
		logDone(ctx, logger, info.FullMethod, start, err)
		return err
	}
}

// withRequestID keeps the call's request id in ctx, for the logs, and
// sends it back in the response header.
func withRequestID(ctx context.Context) context.Context {
	id := requestID(ctx)
	_ = grpc.SetHeader(ctx, metadata.Pairs(requestIDHeader, id))
	return context.WithValue(ctx, requestIDKey{}, id)
}

func logDone(ctx context.Context, logger *slog.Logger, method string, start time.Time, err error) {
	logger.DebugContext(ctx, "rpc done", "method", method, "code", status.Code(err).String(), "duration", time.Since(start))
}

// statusUnary and statusStream pass every error through the one mapping
// (toStatus), so that handlers return the domain's errors as they are.
func statusUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		return resp, toStatus(ctx, logger, err)
	}
}

func statusStream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return toStatus(ss.Context(), logger, handler(srv, ss))
	}
}

// contextHandler adds the request id to every record logged with a context
// that carries one.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

type callerKey struct{}

// callerName names who is calling, for audit entries: the authenticated
// caller when internal authentication is on, else "unauthenticated" with
// the peer's address.
func callerName(ctx context.Context) string {
	if name, ok := ctx.Value(callerKey{}).(string); ok {
		return name
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return "unauthenticated@" + p.Addr.String()
	}
	return "unauthenticated"
}
