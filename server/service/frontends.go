package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/test/bufconn"

	"github.com/accounthealth/accounthealth"
	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/auth"
	"github.com/accounthealth/accounthealth/server/ui"
)

// frontEnds are how callers reach the core: the gRPC listener, and the two
// HTTP listeners (webhook route, REST gateway) that reach the same gRPC
// services in process.
type frontEnds struct {
	// grpc serves callers on the gRPC listener, authenticated; inproc
	// serves the REST gateway over an in-memory connection, trusting the
	// caller it authenticated. Both run the same services and interceptors
	// but for authentication. The webhook route calls its one unary method
	// without the connection, through the same interceptors (see
	// directWebhooks).
	grpc, inproc *grpc.Server
	inprocLis    *bufconn.Listener
	conn         *grpc.ClientConn   // the REST gateway's connection to inproc
	certs        *auth.CertReloader // nil without TLS

	grpcLis, webhookLis, apiLis net.Listener
	webhookSrv, apiSrv          *http.Server
	inflight                    *inflightBodies // deliveries' bytes not yet answered
}

// envelopeSlack is the room a gRPC message needs beyond the largest
// accepted body: the request's other fields and framing.
const envelopeSlack = 64 << 10

// maxStreamsPerConnection bounds concurrent calls on one gRPC connection;
// a client with more subscribers opens more connections.
const maxStreamsPerConnection = 1000

// newFrontEnds binds the listeners and builds the servers over c. On error
// everything it opened is closed again.
func newFrontEnds(cfg Config, c *core, logger *slog.Logger) (_ *frontEnds, err error) {
	fe := &frontEnds{inflight: newInflightBodies(cfg.MaxBodyBytes)}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	publicTLS, internalTLS, err := fe.loadTLS(cfg)
	if err != nil {
		return nil, err
	}
	for _, l := range []struct {
		name, addr string
		lis        *net.Listener
	}{{"grpc-addr", cfg.GRPCAddr, &fe.grpcLis}, {"webhook-addr", cfg.WebhookAddr, &fe.webhookLis}, {"api-addr", cfg.APIAddr, &fe.apiLis}} {
		if *l.lis, err = listen(l.name, l.addr); err != nil {
			return nil, err
		}
		undo = append(undo, func() { (*l.lis).Close() })
	}

	authn := auth.NewAuthenticator(cfg.APITokens, cfg.TLSClientCAFile != "")
	if authn.Open() {
		logger.Warn("internal API runs without authentication (development mode): configure --api-tokens-file or --tls-client-ca before exposing it", "grpc_addr", cfg.GRPCAddr, "api_addr", cfg.APIAddr)
	}
	webhooks := &WebhookService{pipeline: c.pipeline, refresher: c.refresher, logger: logger}
	fe.newGRPCServers(cfg, c, webhooks, authn, internalTLS, logger)

	// The REST gateway reaches the services in memory: no port to
	// protect, no TLS to a listener of our own, and the same interceptors
	// as gRPC.
	fe.inprocLis = bufconn.Listen(1 << 20)
	fe.conn, err = grpc.NewClient("passthrough:///inproc", append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return fe.inprocLis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(cfg.MaxBodyBytes+envelopeSlack), grpc.MaxCallRecvMsgSize(accounthealth.MaxResponseBytes(cfg.MaxBodyBytes))),
	}, c.tracing.dialOptions()...)...)
	if err != nil {
		return nil, fmt.Errorf("in-process connection: %w", err)
	}
	undo = append(undo, func() { fe.conn.Close() })

	webhookHandler, apiHandler, err := fe.newHTTPHandlers(cfg, c, webhooks, authn, logger)
	if err != nil {
		return nil, err
	}
	fe.webhookSrv = newHTTPServer(webhookHandler, publicTLS, logger)
	fe.apiSrv = newHTTPServer(apiHandler, internalTLS, logger)
	return fe, nil
}

// newGRPCServers makes the two gRPC servers and registers the services;
// webhooks is the webhook route's WebhookService.
func (fe *frontEnds) newGRPCServers(cfg Config, c *core, webhooks *WebhookService, authn *auth.Authenticator, internalTLS *tls.Config, logger *slog.Logger) {
	// Both listeners' deliveries share one budget of bytes in flight (the
	// webhook route's front end holds its bodies' share).
	grpcWebhooks := *webhooks
	grpcWebhooks.inflight = fe.inflight
	accounts := &AccountHealthService{
		tracing: c.tracing, store: c.store, deleter: c.deleter, refresher: c.refresher, reconnector: c.reconnector, backfill: c.backfill,
		items: c.items, broker: c.broker, encoded: newEncodedEvents(encodedEventsLimit, encodedEventsBudget), metrics: c.metrics, logger: logger,
	}
	// Streams are long-lived: cap them per connection so one client cannot
	// hold unbounded server resources. The in-process server is exempt: all
	// REST callers share its one connection.
	extra := []grpc.ServerOption{grpc.MaxConcurrentStreams(maxStreamsPerConnection)}
	if internalTLS != nil {
		extra = append(extra, grpc.Creds(credentials.NewTLS(internalTLS)))
	}
	fe.grpc = newGRPCServer(cfg, c.tracing, logger, authenticateGRPC(authn), extra...)
	fe.inproc = newGRPCServer(cfg, c.tracing, logger, trustFrontEnd)
	ahv1.RegisterWebhookServiceServer(fe.grpc, &grpcWebhooks)
	for _, g := range []*grpc.Server{fe.grpc, fe.inproc} {
		ahv1.RegisterAccountHealthServiceServer(g, accounts)
		if c.notifier != nil {
			ahv1.RegisterNotificationServiceServer(g, &NotificationService{notifier: c.notifier, logger: logger})
		}
		healthpb.RegisterHealthServer(g, c.ready.health)
	}
	reflection.Register(fe.grpc)
}

// newHTTPHandlers makes the webhook listener's handler and the REST API's.
func (fe *frontEnds) newHTTPHandlers(cfg Config, c *core, webhooks *WebhookService, authn *auth.Authenticator, logger *slog.Logger) (webhook, api http.Handler, err error) {
	sources, err := auth.NewSourceFilter(cfg.WebhookAllowSources, cfg.TrustedProxies)
	if err != nil {
		return nil, nil, err
	}
	direct := newDirectWebhooks(webhooks, unaryInterceptors(logger, trustFrontEnd), c.tracing)
	webhook, err = newWebhookHandler(direct, webhookFront{
		sources: sources, readLimit: int64(cfg.MaxBodyBytes) + 1, inflight: fe.inflight, observer: c.metrics, tracing: c.tracing, logger: logger,
	}, c.ready)
	if err != nil {
		return nil, nil, err
	}
	rest := newMethodRouter(logger, runtime.WithMetadata(callerMetadata), runtime.WithErrorHandler(httpErrorHandler),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, newStreamJSON()))
	apiMux := rest.mux
	if err := ahv1.RegisterAccountHealthServiceHandler(context.Background(), apiMux, fe.conn); err != nil {
		return nil, nil, fmt.Errorf("api gateway: %w", err)
	}
	if err := ahv1.RegisterNotificationServiceHandler(context.Background(), apiMux, fe.conn); err != nil {
		return nil, nil, fmt.Errorf("api gateway: %w", err)
	}
	if err := handleProbes(apiMux, c.ready); err != nil {
		return nil, nil, err
	}
	if err := apiMux.HandlePath(http.MethodGet, "/openapi.json", serveOpenAPI); err != nil {
		return nil, nil, err
	}
	// Metrics only on the internal listener, authenticated like the API
	// (a scraper sends a bearer token or a client certificate).
	metricsHandler := c.metrics.Handler()
	if err := apiMux.HandlePath(http.MethodGet, "/metrics", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		metricsHandler.ServeHTTP(w, r)
	}); err != nil {
		return nil, nil, err
	}
	if cfg.Pprof {
		if err := handlePprof(apiMux); err != nil {
			return nil, nil, err
		}
	}
	sessions := ui.NewSessions(dashboardSessionLifetime)
	dashboard, err := ui.New(ui.Options{Sessions: sessions, Identify: identifyHTTP(authn), Logger: logger})
	if err != nil {
		return nil, nil, fmt.Errorf("dashboard: %w", err)
	}
	api = withDashboard(dashboard, authenticateHTTP(authn, sessions, logger, shortEnumNames(logger, rest)))
	// Browsers say where a request comes from (Sec-Fetch-Site, Origin): a
	// state-changing request from another site is refused, so no page
	// elsewhere can act with an operator's session, nor, in development
	// mode, with no credential at all. Other clients send neither header.
	return webhook, http.NewCrossOriginProtection().Handler(api), nil
}

// dashboardSessionLifetime is how long a dashboard login lasts.
const dashboardSessionLifetime = 12 * time.Hour

// withDashboard serves the dashboard under ui.Prefix and sends the root
// there; everything else goes to api. No ServeMux here: it would clean
// (and redirect) the API's paths, which carry account ids.
func withDashboard(dashboard, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			http.Redirect(w, r, ui.Prefix, http.StatusFound)
		case strings.HasPrefix(r.URL.Path, ui.Prefix):
			dashboard.ServeHTTP(w, r)
		default:
			api.ServeHTTP(w, r)
		}
	})
}

// handlePprof serves the CPU profile and the runtime's named profiles
// (heap, allocs, goroutine, ...).
func handlePprof(mux *runtime.ServeMux) error {
	return mux.HandlePath(http.MethodGet, "/debug/pprof/{name}", func(w http.ResponseWriter, r *http.Request, p map[string]string) {
		if p["name"] == "profile" {
			pprof.Profile(w, r)
			return
		}
		pprof.Handler(p["name"]).ServeHTTP(w, r)
	})
}

// serveOpenAPI serves the API's OpenAPI document, authenticated like the
// API it describes.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(accounthealth.OpenAPI)
}

// loadTLS builds the listeners' TLS configurations, nil without TLS: the
// webhook listener's (server certificate only) and the internal
// listeners' (also verifying client certificates when a CA is set).
func (fe *frontEnds) loadTLS(cfg Config) (public, internal *tls.Config, err error) {
	if cfg.TLSCertFile == "" {
		return nil, nil, nil
	}
	if fe.certs, err = auth.NewCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile); err != nil {
		return nil, nil, err
	}
	if public, err = auth.ServerTLS(fe.certs, ""); err != nil {
		return nil, nil, err
	}
	internal, err = auth.ServerTLS(fe.certs, cfg.TLSClientCAFile)
	return public, internal, err
}

// ReloadCertificates reloads the TLS certificate and key (on SIGHUP).
func (fe *frontEnds) ReloadCertificates() error {
	if fe.certs == nil {
		return nil
	}
	return fe.certs.Reload()
}

// streamWorkers is how many calls at once run on kept goroutines: enough
// for the callers a busy service has in flight, few enough that their
// grown stacks (tens of KB each) stay a small part of the memory.
const streamWorkers = 64

// newGRPCServer makes one of the two gRPC servers; authn is its
// authentication step.
func newGRPCServer(cfg Config, tr tracing, logger *slog.Logger, authn authStep, extra ...grpc.ServerOption) *grpc.Server {
	opts := append([]grpc.ServerOption{
		// Stream events are encoded once and shared by all subscribers.
		grpc.ForceServerCodecV2(newSharedCodec()),
		grpc.ChainUnaryInterceptor(unaryInterceptors(logger, authn)...),
		grpc.ChainStreamInterceptor(streamInterceptors(logger, authn)...),
		grpc.MaxRecvMsgSize(cfg.MaxBodyBytes + envelopeSlack),
		// What the REST gateway and clients accept, so that a response
		// too large for them fails here, not there.
		grpc.MaxSendMsgSize(accounthealth.MaxResponseBytes(cfg.MaxBodyBytes)),
		// Long-lived streams sit idle between events: ping idle connections
		// so dead peers are noticed, and let clients ping too (down to every
		// 10 s) to keep NATs and proxies from dropping them.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// Calls run on goroutines kept for the next call, whose stacks have
		// already grown to what a handler (SQLite's in particular) needs:
		// a new goroutine per call spent about a tenth of the service's CPU
		// growing and copying its stack. Calls beyond the workers get a
		// goroutine of their own, as without the option.
		grpc.NumStreamWorkers(streamWorkers),
	}, extra...)
	opts = append(opts, tr.serverOptions()...)
	return grpc.NewServer(opts...)
}

func listen(name, addr string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%s: %s is in use (is another accounthealth serve running?): stop what holds it, or give --%s a free address", name, addr, name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: cannot listen on %s: %w", name, addr, err)
	}
	return lis, nil
}

func newHTTPServer(h http.Handler, tlsConfig *tls.Config, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 5 * time.Second,
		// Webhook bodies are small; a slow body is a slowloris, not a sender.
		ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
