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

	"github.com/accounthealth/accounthealth/server/buildinfo"
	"github.com/accounthealth/accounthealth/server/store"
)

// Server is a running accounthealth: the core, and three listeners that
// serve it.
type Server struct {
	cfg    Config
	logger *slog.Logger
	*core
	*frontEnds

	brokerDone chan struct{} // closed when the broker's Run returned
	// stopWorkers ends background work that commits (refreshes); workers
	// is done when it has stopped.
	stopWorkers context.CancelFunc
	workers     sync.WaitGroup
}

// New binds the listeners and builds the server over s, which it owns from
// here on (Run closes it); on error the caller still owns s. Binding here,
// not in Run, lets callers learn the real addresses (port 0 in tests)
// before serving.
func New(cfg Config, s store.Store, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger = slog.New(contextHandler{logger.Handler()})
	c, err := newCore(cfg, s, logger)
	if err != nil {
		return nil, err
	}
	fe, err := newFrontEnds(cfg, c, logger)
	if err != nil {
		c.batcher.Close()
		return nil, err
	}
	srv := &Server{cfg: cfg, logger: logger, core: c, frontEnds: fe, brokerDone: make(chan struct{})}
	a := srv.Addrs()
	c.listeners.Store(&[]string{a.Webhook, a.GRPC, a.API})
	return srv, nil
}

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
	if s.reconciler != nil {
		s.workers.Go(func() { s.reconciler.Run(workCtx) })
	}
	if s.pruner != nil {
		s.workers.Go(func() { s.pruner.Run(workCtx) })
	}
	s.workers.Go(func() { s.watcher.Run(workCtx) })
	s.workers.Go(func() { s.sweeper.Run(workCtx) })
	if s.exporter != nil {
		s.workers.Go(func() { s.export(workCtx) })
	}
	if s.notifier != nil {
		s.workers.Go(func() { s.notifier.Run(workCtx) })
	}
	if s.backfill != nil && s.cfg.SyncOnStart {
		s.workers.Go(func() { s.syncOnStart(workCtx) })
	}
	// The first check comes before serving, so that the first probe
	// already gets the store's answer.
	s.ready.check(workCtx)
	s.workers.Go(func() { s.ready.run(workCtx) })
	// Logged before serving starts: the listeners are bound, so a request
	// that reaches them queues, and whoever reads the log sees this line
	// before any answer.
	providerAPI := "none (deletions, fetches, sync and reconnect links are off)"
	if s.cfg.Provider.KeyID != "" {
		providerAPI = s.cfg.Provider.BaseURL
	}
	s.logger.Info("serving", "version", buildinfo.Get().Version, "store", s.cfg.StoreName, "provider_api", providerAPI,
		"webhook_addr", s.webhookLis.Addr().String(), "grpc_addr", s.grpcLis.Addr().String(),
		"api_addr", s.apiLis.Addr().String(), "tls", s.certs != nil, "unsigned_webhooks_allowed", s.cfg.AllowUnsignedWebhooks)

	go func() { serveErr <- wrapServe("grpc", s.grpc.Serve(s.grpcLis)) }()
	go func() { serveErr <- wrapServe("in-process grpc", s.inproc.Serve(s.inprocLis)) }()
	go func() { serveErr <- wrapServe("webhook", serveHTTP(s.webhookSrv, s.webhookLis)) }()
	go func() { serveErr <- wrapServe("api", serveHTTP(s.apiSrv, s.apiLis)) }()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
		s.logger.Error("listener failed; shutting down", "error", runErr)
	}
	return errors.Join(runErr, s.shutdown())
}

// syncOnStart backfills when none has finished, beside the listeners:
// webhooks are served meanwhile, and the ordering rules keep the two from
// undoing each other.
func (s *Server) syncOnStart(ctx context.Context) {
	if pending, err := s.backfill.Pending(ctx); err != nil || !pending {
		return
	}
	s.logger.Info("backfilling accounts from the provider (--sync-on-start)")
	st, err := s.backfill.Run(ctx, false, nil)
	switch {
	case err != nil && ctx.Err() != nil:
		s.logger.Info("backfill stopped by shutdown; the next start resumes it", "pages", st.Pages, "seen", st.Seen)
	case err != nil:
		s.logger.Error("backfill failed; the next start or `accounthealth sync` resumes it", "error", err, "pages", st.Pages, "seen", st.Seen)
	default:
		s.logger.Info("backfill done", "pages", st.Pages, "seen", st.Seen, "applied", st.Applied)
	}
}

// export runs the JetStream export beside the listeners: it only reads the
// log, so intake never waits for the broker. It ends with the broker's
// streams in shutdown, after the webhook listener stopped, once its
// in-flight publishes are acknowledged or time out.
func (s *Server) export(ctx context.Context) {
	if err := s.exporter.Run(ctx); err != nil {
		s.logger.Error("JetStream export stopped; transitions are not exported until a restart", "error", err)
	}
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
