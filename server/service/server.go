// Package service wires the parts of the server together: the gRPC
// services, the webhook route and the REST gateway, the interceptors, and
// the order of start-up and shutdown. It owns no domain logic.
package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/test/bufconn"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/auth"
	"github.com/accounthealth/accounthealth/server/intake"
	"github.com/accounthealth/accounthealth/server/metrics"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/refresh"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/stream"
)

// Server is a running accounthealth: three listeners over one store.
type Server struct {
	cfg    Config
	logger *slog.Logger
	store  store.Store

	batcher    *intake.Batcher
	broker     *stream.Broker
	brokerDone chan struct{} // closed when the broker's Run returned
	// grpc serves callers on the gRPC listener, authenticated; inproc
	// serves the two HTTP front ends (webhook route, REST gateway) over an
	// in-memory connection, trusting the caller they authenticated. Both
	// run the same services and interceptors but for authentication.
	grpc, inproc *grpc.Server
	inprocLis    *bufconn.Listener
	ready        *readiness       // grpc.health.v1 and /readyz
	metrics      *metrics.Metrics // served on the API listener only
	tracing      tracing
	conn         *grpc.ClientConn // the front ends' connection to inproc
	// refresher fetches accounts whose health is unconfirmed; nil without
	// a provider API key.
	refresher *refresh.Refresher
	// stopWorkers ends background work that commits (refreshes); workers
	// is done when it has stopped.
	stopWorkers context.CancelFunc
	workers     sync.WaitGroup
	certs       *auth.CertReloader // nil without TLS

	grpcLis    net.Listener
	webhookLis net.Listener
	apiLis     net.Listener
	webhookSrv *http.Server
	apiSrv     *http.Server
}

// New binds the listeners and builds the server over s, which it owns from
// here on (Run closes it); on error the caller still owns s. Binding here,
// not in Run, lets callers learn the real addresses (port 0 in tests)
// before serving.
func New(cfg Config, s store.Store, logger *slog.Logger) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger = slog.New(contextHandler{logger.Handler()})
	srv := &Server{cfg: cfg, logger: logger, store: s}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	publicTLS, internalTLS, err := srv.loadTLS()
	if err != nil {
		return nil, err
	}
	for _, l := range []struct {
		name, addr string
		lis        *net.Listener
	}{{"grpc-addr", cfg.GRPCAddr, &srv.grpcLis}, {"webhook-addr", cfg.WebhookAddr, &srv.webhookLis}, {"api-addr", cfg.APIAddr, &srv.apiLis}} {
		if *l.lis, err = listen(l.name, l.addr); err != nil {
			return nil, err
		}
		undo = append(undo, func() { (*l.lis).Close() })
	}

	srv.metrics = metrics.New(s.Summary, cfg.MetricsAccountsMaxAge, logger)
	srv.ready = newReadiness(s, cfg.HealthCheckInterval, logger)
	srv.broker = stream.New(s, stream.Options{HeartbeatInterval: cfg.StreamHeartbeat, Logger: logger})
	srv.brokerDone = make(chan struct{})
	srv.batcher = intake.NewBatcher(s, 0, srv.broker.Notify, srv.metrics.Committed)
	undo = append(undo, srv.batcher.Close)
	srv.tracing = newTracing(cfg.TracerProvider)
	pipeline, err := intake.NewPipeline(intake.Config{
		Secrets: cfg.WebhookSecrets, AllowUnsigned: cfg.AllowUnsignedWebhooks, MaxBodyBytes: cfg.MaxBodyBytes,
		Observer: srv.metrics, Tracer: srv.tracing.tracer,
	}, srv.batcher.Submit)
	if err != nil {
		return nil, err
	}
	del := &deleter{store: s, commit: srv.batcher.Submit, logger: logger, now: time.Now}
	if cfg.Provider.KeyID != "" {
		pcfg := cfg.Provider
		pcfg.Observer = srv.metrics.ProviderCall
		client, err := provider.New(pcfg)
		if err != nil {
			return nil, err
		}
		del.provider = client
		srv.refresher = refresh.New(client, srv.batcher.Submit, logger, refreshQueueLimit)
	}
	webhooks := &WebhookService{pipeline: pipeline, refresher: srv.refresher, logger: logger}
	accounts := &AccountHealthService{tracing: srv.tracing, store: s, deleter: del, broker: srv.broker, encoded: newEncodedEvents(8192), metrics: srv.metrics, logger: logger}

	authn := auth.NewAuthenticator(cfg.APITokens, cfg.TLSClientCAFile != "")
	if authn.Open() {
		logger.Warn("internal API runs without authentication (development mode): configure --api-tokens-file or --tls-client-ca before exposing it", "grpc_addr", cfg.GRPCAddr, "api_addr", cfg.APIAddr)
	}
	// Streams are long-lived: cap them per connection so one client cannot
	// hold unbounded server resources. The in-process server is exempt: all
	// REST callers share its one connection.
	extra := []grpc.ServerOption{grpc.MaxConcurrentStreams(maxStreamsPerConnection)}
	if internalTLS != nil {
		extra = append(extra, grpc.Creds(credentials.NewTLS(internalTLS)))
	}
	srv.grpc = srv.newGRPCServer(authenticateGRPC(authn), extra...)
	srv.inproc = srv.newGRPCServer(trustFrontEnd)
	for _, g := range []*grpc.Server{srv.grpc, srv.inproc} {
		ahv1.RegisterWebhookServiceServer(g, webhooks)
		ahv1.RegisterAccountHealthServiceServer(g, accounts)
		healthpb.RegisterHealthServer(g, srv.ready.health)
	}
	reflection.Register(srv.grpc)

	// The front ends reach the services in memory: no port to protect, no
	// TLS to a listener of our own, and the same interceptors as gRPC.
	srv.inprocLis = bufconn.Listen(1 << 20)
	srv.conn, err = grpc.NewClient("passthrough:///inproc", append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return srv.inprocLis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(cfg.MaxBodyBytes + 64<<10)),
	}, srv.tracing.dialOptions()...)...)
	if err != nil {
		return nil, fmt.Errorf("in-process connection: %w", err)
	}
	undo = append(undo, func() { srv.conn.Close() })

	sources, err := auth.NewSourceFilter(cfg.WebhookAllowSources, cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	webhookMux, err := newWebhookMux(ahv1.NewWebhookServiceClient(srv.conn), pipeline, sources, srv.tracing, srv.ready, logger)
	if err != nil {
		return nil, err
	}
	apiMux := runtime.NewServeMux(runtime.WithMetadata(callerMetadata))
	if err := ahv1.RegisterAccountHealthServiceHandler(context.Background(), apiMux, srv.conn); err != nil {
		return nil, fmt.Errorf("api gateway: %w", err)
	}
	if err := handleProbes(apiMux, srv.ready); err != nil {
		return nil, err
	}
	// Metrics only on the internal listener, authenticated like the API
	// (a scraper sends a bearer token or a client certificate).
	metricsHandler := srv.metrics.Handler()
	if err := apiMux.HandlePath(http.MethodGet, "/metrics", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		metricsHandler.ServeHTTP(w, r)
	}); err != nil {
		return nil, err
	}
	srv.webhookSrv = newHTTPServer(webhookMux, publicTLS, logger)
	srv.apiSrv = newHTTPServer(authenticateHTTP(authn, apiMux), internalTLS, logger)
	return srv, nil
}

// loadTLS builds the listeners' TLS configurations, nil without TLS: the
// webhook listener's (server certificate only) and the internal
// listeners' (also verifying client certificates when a CA is set).
func (s *Server) loadTLS() (public, internal *tls.Config, err error) {
	if s.cfg.TLSCertFile == "" {
		return nil, nil, nil
	}
	if s.certs, err = auth.NewCertReloader(s.cfg.TLSCertFile, s.cfg.TLSKeyFile); err != nil {
		return nil, nil, err
	}
	if public, err = auth.ServerTLS(s.certs, ""); err != nil {
		return nil, nil, err
	}
	internal, err = auth.ServerTLS(s.certs, s.cfg.TLSClientCAFile)
	return public, internal, err
}

// ReloadCertificates reloads the TLS certificate and key (on SIGHUP).
func (s *Server) ReloadCertificates() error {
	if s.certs == nil {
		return nil
	}
	return s.certs.Reload()
}

// newGRPCServer makes one of the two gRPC servers; authn is its
// authentication step.
func (s *Server) newGRPCServer(authn authStep, extra ...grpc.ServerOption) *grpc.Server {
	opts := append([]grpc.ServerOption{
		// Stream events are encoded once and shared by all subscribers.
		grpc.ForceServerCodecV2(newSharedCodec()),
		grpc.ChainUnaryInterceptor(unaryInterceptors(s.logger, authn)...),
		grpc.ChainStreamInterceptor(streamInterceptors(s.logger, authn)...),
		// Room for the largest accepted body plus the envelope.
		grpc.MaxRecvMsgSize(s.cfg.MaxBodyBytes + 64<<10),
		// Long-lived streams sit idle between events: ping idle connections
		// so dead peers are noticed, and let clients ping too (down to every
		// 10 s) to keep NATs and proxies from dropping them.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}, extra...)
	opts = append(opts, s.tracing.serverOptions()...)
	return grpc.NewServer(opts...)
}

func listen(name, addr string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
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

// maxStreamsPerConnection bounds concurrent calls on one gRPC connection;
// a client with more subscribers opens more connections.
const maxStreamsPerConnection = 1000

// refreshQueueLimit bounds the accounts waiting for a provider refresh.
const refreshQueueLimit = 10000

// Addrs are the bound addresses, useful when the config asked for port 0.
type Addrs struct{ Webhook, GRPC, API string }

// Addrs returns where the server listens.
func (s *Server) Addrs() Addrs {
	return Addrs{Webhook: s.webhookLis.Addr().String(), GRPC: s.grpcLis.Addr().String(), API: s.apiLis.Addr().String()}
}

// Run serves until ctx is done, then shuts down in order and returns. It
// returns early with an error if a listener fails.
func (s *Server) Run(ctx context.Context) error {
	serveErr := make(chan error, 4)
	go func() {
		defer close(s.brokerDone)
		if err := s.broker.Run(context.Background()); err != nil {
			serveErr <- fmt.Errorf("stream broker: %w", err)
		}
	}()
	var workCtx context.Context
	workCtx, s.stopWorkers = context.WithCancel(context.Background())
	if s.refresher != nil {
		s.workers.Go(func() { s.refresher.Run(workCtx) })
	}
	// The first check comes before serving, so that the first probe
	// already gets the store's answer.
	s.ready.check(workCtx)
	s.workers.Go(func() { s.ready.run(workCtx) })
	go func() { serveErr <- wrapServe("grpc", s.grpc.Serve(s.grpcLis)) }()
	go func() { serveErr <- wrapServe("in-process grpc", s.inproc.Serve(s.inprocLis)) }()
	go func() { serveErr <- wrapServe("webhook", serveHTTP(s.webhookSrv, s.webhookLis)) }()
	go func() { serveErr <- wrapServe("api", serveHTTP(s.apiSrv, s.apiLis)) }()
	s.logger.Info("serving", "webhook_addr", s.webhookLis.Addr().String(), "grpc_addr", s.grpcLis.Addr().String(),
		"api_addr", s.apiLis.Addr().String(), "tls", s.certs != nil, "unsigned_webhooks_allowed", s.cfg.AllowUnsignedWebhooks)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
		s.logger.Error("listener failed; shutting down", "error", runErr)
	}
	return errors.Join(runErr, s.shutdown())
}

// serveHTTP serves plain HTTP, or HTTPS when the server has a TLS config.
func serveHTTP(srv *http.Server, lis net.Listener) error {
	if srv.TLSConfig != nil {
		return srv.ServeTLS(lis, "", "")
	}
	return srv.Serve(lis)
}

func wrapServe(name string, err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return fmt.Errorf("%s listener: %w", name, err)
}

// shutdown stops in the order that loses nothing acknowledged: tell load
// balancers first, stop taking webhooks (in-flight ones finish and commit),
// end the streams (UNAVAILABLE: clients resume from their cursor elsewhere;
// GracefulStop would wait for them forever), drain RPCs, stop the API
// gateway, then commit what is queued and close the store.
func (s *Server) shutdown() error {
	s.logger.Info("shutting down")
	deadline := time.Now().Add(s.cfg.ShutdownTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	s.ready.shutdown()
	errs := []error{s.webhookSrv.Shutdown(ctx)}
	s.broker.Close()

	for _, g := range []*grpc.Server{s.grpc, s.inproc} {
		stopped := make(chan struct{})
		go func() { g.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			s.logger.Warn("graceful stop timed out; cutting remaining RPCs", "timeout", s.cfg.ShutdownTimeout)
			g.Stop()
			<-stopped
		}
	}
	errs = append(errs, s.apiSrv.Shutdown(ctx), s.conn.Close())
	s.stopWorkers()
	s.workers.Wait()
	s.batcher.Close()
	<-s.brokerDone
	errs = append(errs, s.store.Close())
	s.logger.Info("stopped")
	return errors.Join(errs...)
}
