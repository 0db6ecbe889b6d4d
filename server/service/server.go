// Package service wires the parts of the server together: the gRPC
// services, the webhook route and the REST gateway, the interceptors, and
// the order of start-up and shutdown. It owns no domain logic.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/intake"
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
	grpc       *grpc.Server
	health     *health.Server
	conn       *grpc.ClientConn // the gateways' connection to our own gRPC listener
	// refresher fetches accounts whose health is unconfirmed; nil without
	// a provider API key.
	refresher *refresh.Refresher
	// stopWorkers ends background work that commits (refreshes); workers
	// is done when it has stopped.
	stopWorkers context.CancelFunc
	workers     sync.WaitGroup

	grpcLis    net.Listener
	webhookLis net.Listener
	apiLis     net.Listener
	webhookSrv *http.Server
	apiSrv     *http.Server
}

// New binds the listeners and builds the server over s, which it owns from
// here on (Run closes it). Binding here, not in Run, lets callers learn the
// real addresses (port 0 in tests) before serving.
func New(cfg Config, s store.Store, logger *slog.Logger) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger = slog.New(contextHandler{logger.Handler()})
	srv := &Server{cfg: cfg, logger: logger, store: s}
	defer func() {
		if err != nil {
			srv.closeListeners()
		}
	}()
	if srv.grpcLis, err = listen("grpc-addr", cfg.GRPCAddr); err != nil {
		return nil, err
	}
	if srv.webhookLis, err = listen("webhook-addr", cfg.WebhookAddr); err != nil {
		return nil, err
	}
	if srv.apiLis, err = listen("api-addr", cfg.APIAddr); err != nil {
		return nil, err
	}

	srv.broker = stream.New(s, stream.Options{HeartbeatInterval: cfg.StreamHeartbeat, Logger: logger})
	srv.brokerDone = make(chan struct{})
	srv.batcher = intake.NewBatcher(s, 0, srv.broker.Notify)
	pipeline, err := intake.NewPipeline(intake.Config{
		Secrets: cfg.WebhookSecrets, AllowUnsigned: cfg.AllowUnsignedWebhooks, MaxBodyBytes: cfg.MaxBodyBytes,
	}, srv.batcher.Submit)
	if err != nil {
		srv.batcher.Close()
		return nil, err
	}

	srv.grpc = grpc.NewServer(
		// Stream events are encoded once and shared by all subscribers.
		grpc.ForceServerCodecV2(newSharedCodec()),
		grpc.ChainUnaryInterceptor(unaryInterceptors(logger)...),
		grpc.ChainStreamInterceptor(streamInterceptors(logger)...),
		// Room for the largest accepted body plus the envelope.
		grpc.MaxRecvMsgSize(cfg.MaxBodyBytes+64<<10),
		// Long-lived streams sit idle between events: ping idle connections
		// so dead peers are noticed, and let clients ping too (down to every
		// 10 s) to keep NATs and proxies from dropping them.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	del := &deleter{store: s, commit: srv.batcher.Submit, logger: logger, now: time.Now}
	if cfg.Provider.KeyID != "" {
		client, err := provider.New(cfg.Provider)
		if err != nil {
			srv.batcher.Close()
			return nil, err
		}
		del.provider = client
		srv.refresher = refresh.New(client, srv.batcher.Submit, logger, refreshQueueLimit)
	}
	ahv1.RegisterWebhookServiceServer(srv.grpc, &WebhookService{pipeline: pipeline, refresher: srv.refresher, logger: logger})
	ahv1.RegisterAccountHealthServiceServer(srv.grpc, &AccountHealthService{
		store: s, deleter: del, broker: srv.broker, encoded: newEncodedEvents(8192), logger: logger,
	})
	srv.health = health.NewServer()
	healthpb.RegisterHealthServer(srv.grpc, srv.health)
	reflection.Register(srv.grpc)

	// The gateways dial our own listener so HTTP requests pass through the
	// same interceptors as gRPC callers.
	srv.conn, err = grpc.NewClient(srv.grpcLis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(cfg.MaxBodyBytes+64<<10)))
	if err != nil {
		srv.batcher.Close()
		return nil, fmt.Errorf("gateway connection: %w", err)
	}

	webhookMux, err := newWebhookMux(ahv1.NewWebhookServiceClient(srv.conn), pipeline.MaxBodyBytes(), logger)
	if err != nil {
		return nil, srv.abort(err)
	}
	apiMux := runtime.NewServeMux()
	if err := ahv1.RegisterAccountHealthServiceHandler(context.Background(), apiMux, srv.conn); err != nil {
		return nil, srv.abort(fmt.Errorf("api gateway: %w", err))
	}
	if err := apiMux.HandlePath(http.MethodGet, "/healthz", liveness); err != nil {
		return nil, srv.abort(err)
	}
	srv.webhookSrv = newHTTPServer(webhookMux, logger)
	srv.apiSrv = newHTTPServer(apiMux, logger)
	return srv, nil
}

func (s *Server) abort(err error) error {
	s.conn.Close()
	s.batcher.Close()
	return err
}

func listen(name, addr string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot listen on %s: %w", name, addr, err)
	}
	return lis, nil
}

func (s *Server) closeListeners() {
	for _, l := range []net.Listener{s.grpcLis, s.webhookLis, s.apiLis} {
		if l != nil {
			l.Close()
		}
	}
}

func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		// Webhook bodies are small; a slow body is a slowloris, not a sender.
		ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

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
	go func() { serveErr <- wrapServe("grpc", s.grpc.Serve(s.grpcLis)) }()
	go func() { serveErr <- wrapServe("webhook", s.webhookSrv.Serve(s.webhookLis)) }()
	go func() { serveErr <- wrapServe("api", s.apiSrv.Serve(s.apiLis)) }()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.logger.Info("serving", "webhook_addr", s.webhookLis.Addr().String(), "grpc_addr", s.grpcLis.Addr().String(),
		"api_addr", s.apiLis.Addr().String(), "unsigned_webhooks_allowed", s.cfg.AllowUnsignedWebhooks)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
		s.logger.Error("listener failed; shutting down", "error", runErr)
	}
	return errors.Join(runErr, s.shutdown())
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

	s.health.Shutdown()
	errs := []error{s.webhookSrv.Shutdown(ctx)}
	s.broker.Close()

	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.logger.Warn("graceful stop timed out; cutting remaining RPCs", "timeout", s.cfg.ShutdownTimeout)
		s.grpc.Stop()
		<-stopped
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
