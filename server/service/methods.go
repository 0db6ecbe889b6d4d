package service

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
)

// routedMethods are the methods a gateway path can have.
var routedMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// methodRouter is a gateway mux that answers methods as HTTP says: a
// known path's wrong method is 405 with Allow (the gateway's own answer is
// 501, as if no path took it), HEAD is GET without the body, and OPTIONS
// lists the methods. The mux has no way to ask which methods a path takes,
// so the router asks it by routing the path with each method, marked as a
// probe that every handler returns from before doing anything.
type methodRouter struct{ mux *runtime.ServeMux }

// probeKey marks a probe; its value is set when a handler is reached.
type probeKey struct{}

func newMethodRouter(logger *slog.Logger, opts ...runtime.ServeMuxOption) *methodRouter {
	return &methodRouter{mux: runtime.NewServeMux(append(opts,
		runtime.WithMiddlewares(stopProbes),
		runtime.WithRoutingErrorHandler(routingErrors(logger)),
	)...)}
}

func (m *methodRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodHead:
		// net/http writes no body for HEAD, whatever the handler writes.
		r = r.WithContext(r.Context())
		r.Method = http.MethodGet
	case http.MethodOptions:
		if allow := allowed(m.mux, r); allow != "" {
			w.Header().Set("Allow", allow)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	m.mux.ServeHTTP(w, r)
}

// stopProbes ends a probe at the handler it reached.
func stopProbes(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if reached, ok := r.Context().Value(probeKey{}).(*bool); ok {
			*reached = true
			return
		}
		next(w, r, params)
	}
}

// routingErrors answers a wrong method with 405 and Allow, and the other
// routing errors as the gateway does.
func routingErrors(logger *slog.Logger) runtime.RoutingErrorHandlerFunc {
	return func(ctx context.Context, mux *runtime.ServeMux, ms runtime.Marshaler, w http.ResponseWriter, r *http.Request, status int) {
		switch {
		case ctx.Value(probeKey{}) != nil:
			return // a probe that reached no handler
		case status != http.StatusMethodNotAllowed:
			runtime.DefaultRoutingErrorHandler(ctx, mux, ms, w, r, status)
			return
		}
		allow := allowed(mux, r)
		w.Header().Set("Allow", allow)
		writeError(ctx, logger, w, errorf(errMethodNotAllowed, "%s %s: method not allowed; this path takes %s", r.Method, r.URL.Path, allow))
	}
}

// allowed lists the methods mux routes r's path to, as an Allow header
// says them; "" when none.
func allowed(mux *runtime.ServeMux, r *http.Request) string {
	var allow []string
	for _, method := range routedMethods {
		reached := false
		probe := r.Clone(context.WithValue(r.Context(), probeKey{}, &reached))
		// No headers: they could turn a POST into another method (the
		// gateway's X-HTTP-Method-Override and form fallback).
		probe.Method, probe.Header, probe.Body = method, http.Header{}, http.NoBody
		mux.ServeHTTP(discard{}, probe)
		if reached {
			allow = append(allow, method)
			if method == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
	}
	slices.Sort(allow)
	return strings.Join(allow, ", ")
}

// discard is the ResponseWriter of probes, which write nothing.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}
