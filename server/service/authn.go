package service

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/accounthealth/accounthealth/server/auth"
	"github.com/accounthealth/accounthealth/server/ui"
)

// callerHeader carries, from the HTTP front ends to the in-process gRPC
// server, the caller they authenticated. Only the in-process server reads
// it: that connection cannot be reached from outside.
const callerHeader = "x-accounthealth-caller"

// webhookCaller names deliveries in logs: the sender proved itself with
// the webhook signature, not with an API credential.
const webhookCaller = "webhook-listener"

// authStep names the caller of a call, or refuses it.
type authStep func(ctx context.Context, fullMethod string) (context.Context, error)

// exempt lists what load balancers call without credentials.
func exempt(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/")
}

// authenticateGRPC authenticates callers of the gRPC listener with a
// verified client certificate or a bearer token.
func authenticateGRPC(a *auth.Authenticator) authStep {
	return func(ctx context.Context, fullMethod string) (context.Context, error) {
		if exempt(fullMethod) {
			return ctx, nil
		}
		var verified [][]*x509.Certificate
		addr := ""
		if p, ok := peer.FromContext(ctx); ok {
			if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
				verified = ti.State.VerifiedChains
			}
			if p.Addr != nil {
				addr = p.Addr.String()
			}
		}
		authz := ""
		if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
			authz = v[0]
		}
		name, err := a.Identify(verified, authz, addr)
		if err != nil {
			return ctx, err
		}
		return context.WithValue(ctx, callerKey{}, name), nil
	}
}

// trustFrontEnd takes the caller the HTTP front end authenticated.
func trustFrontEnd(ctx context.Context, _ string) (context.Context, error) {
	if v := metadata.ValueFromIncomingContext(ctx, callerHeader); len(v) > 0 {
		return context.WithValue(ctx, callerKey{}, v[len(v)-1]), nil
	}
	return ctx, errors.New("a front end called without naming its caller")
}

func authUnary(step authStep) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := step(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

func authStream(step authStep) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := step(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
	}
}

// contextStream is a ServerStream with a context carrying the caller.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

// authenticateHTTP guards the REST gateway like authenticateGRPC guards the
// gRPC listener, and hands the caller on (callerMetadata). A request
// without an Authorization header may instead carry a dashboard session
// cookie.
func authenticateHTTP(a *auth.Authenticator, sessions *ui.Sessions, logger *slog.Logger, next http.Handler) http.Handler {
	identify := identifyHTTP(a)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Nobody outside may name the caller: the gateway would pass such
		// a header on as metadata.
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "grpc-metadata-"+callerHeader) {
				r.Header.Del(k)
			}
		}
		// Load balancers probe without credentials. /metrics is not
		// exempt: it tells about traffic and accounts, and Prometheus
		// scrapes with a bearer token or a client certificate.
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		authz := r.Header.Get("Authorization")
		if name, ok := sessions.Caller(r); ok && authz == "" {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, name)))
			return
		}
		name, err := identify(r, authz)
		if err != nil {
			writeError(r.Context(), logger, w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, name)))
	})
}

// identifyHTTP names an HTTP caller by its verified client certificate,
// the given Authorization value or (development mode) its address.
func identifyHTTP(a *auth.Authenticator) ui.Identify {
	return func(r *http.Request, authorization string) (string, error) {
		var verified [][]*x509.Certificate
		if r.TLS != nil {
			verified = r.TLS.VerifiedChains
		}
		name, err := a.Identify(verified, authorization, r.RemoteAddr)
		if err != nil && !errors.Is(err, auth.ErrUnauthenticated) {
			err = auth.ErrUnauthenticated
		}
		return name, err
	}
}

// callerMetadata is the REST gateway's annotator: it passes the caller
// authenticateHTTP named on to the in-process gRPC server.
func callerMetadata(ctx context.Context, _ *http.Request) metadata.MD {
	if name, ok := ctx.Value(callerKey{}).(string); ok {
		return metadata.Pairs(callerHeader, name)
	}
	return nil
}
