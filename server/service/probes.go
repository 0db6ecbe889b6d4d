package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/store"
)

// pingTimeout bounds one store check: a store that takes longer to answer
// a trivial query is not one to send traffic to.
const pingTimeout = 5 * time.Second

// Why the server is not ready, as /readyz says it. Never the store's own
// error: the webhook listener faces the internet; the log has the cause.
const (
	notReadyCommits      = "not ready: commits fail: the store is full or unreachable; the server log has the cause"
	notReadyStore        = "not ready: the store does not answer or cannot commit a write; the server log has the cause"
	notReadyShuttingDown = "not ready: shutting down"
)

// readiness answers "may this server take traffic?" for grpc.health.v1
// (the whole server, "", and each service by name) and for /readyz alike.
// Two things say no: the last check, which reads the store and commits a
// heartbeat (store.Ping) every interval, failed; or the last commit of
// deliveries failed in a way a retry can fix (full, unreachable, hung).
// A replica whose commits fail is out of the load balancer's rotation
// until a commit or a check succeeds: the check's heartbeat notices that
// writes work again even though no delivery reaches it any more. Probes,
// however many and from wherever, never reach the store themselves.
type readiness struct {
	store    store.Store
	health   *grpchealth.Server
	interval time.Duration
	logger   *slog.Logger

	mu          sync.Mutex
	checkFailed bool   // the last check failed
	commitsFail bool   // the last commit failed, and no check passed since
	notReady    string // why not, as published; "" when ready
	stopped     bool   // shutting down: nothing changes the answer any more
}

// healthServices are the names grpc.health.v1 answers for.
var healthServices = []string{"", ahv1.AccountHealthService_ServiceDesc.ServiceName, ahv1.WebhookService_ServiceDesc.ServiceName}

func newReadiness(s store.Store, interval time.Duration, logger *slog.Logger) *readiness {
	return &readiness{store: s, health: grpchealth.NewServer(), interval: interval, logger: logger}
}

// run checks the store every interval until ctx ends.
func (r *readiness) run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.check(ctx)
		}
	}
}

// check pings the store once and publishes the answer. A passing check
// committed a write, so it also clears failed commits.
func (r *readiness) check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	err := r.store.Ping(ctx)

	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkFailed = err != nil
	if err == nil {
		r.commitsFail = false
	}
	r.publish(err)
}

// committed hears each commit's outcome (see intake.CommitObserver). Only
// failures a retry can fix count: a delivery that trips a bug says nothing
// about whether this replica can store the next one.
func (r *readiness) committed(err error) {
	if err != nil && !errors.Is(err, store.ErrUnavailable) {
		return
	}
	failed := err != nil
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.commitsFail == failed {
		return // the usual case, once per commit: nothing to publish
	}
	r.commitsFail = failed
	r.publish(err)
}

// publish sets the answer from the two signals, logging once per change of
// it, not per failure; cause is the latest signal's error. r.mu is held.
func (r *readiness) publish(cause error) {
	if r.stopped {
		return
	}
	notReady := ""
	switch {
	case r.commitsFail:
		notReady = notReadyCommits
	case r.checkFailed:
		notReady = notReadyStore
	}
	switch {
	case notReady == r.notReady:
	case notReady == "":
		r.logger.Info("ready again: the store answers and commits; health checks say SERVING")
	default:
		r.logger.Error("not ready; health checks say NOT_SERVING", "reason", notReady, "error", cause)
	}
	r.notReady = notReady
	status := healthpb.HealthCheckResponse_SERVING
	if notReady != "" {
		status = healthpb.HealthCheckResponse_NOT_SERVING
	}
	for _, name := range healthServices {
		r.health.SetServingStatus(name, status)
	}
}

// shutdown says NOT_SERVING for good, first thing in shutdown, so that
// load balancers stop sending traffic before the listeners close.
func (r *readiness) shutdown() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped, r.notReady = true, notReadyShuttingDown
	r.health.Shutdown()
}

// serveReadyz is /readyz: 200 while the last check passed, else 503 with
// the reason in the service's JSON error shape.
func (r *readiness) serveReadyz(w http.ResponseWriter, req *http.Request, _ map[string]string) {
	r.mu.Lock()
	notReady := r.notReady
	r.mu.Unlock()
	if notReady != "" {
		target := errNotReady
		if notReady == notReadyShuttingDown {
			target = errShuttingDown
		}
		writeError(req.Context(), r.logger, w, errorf(target, "%s", notReady))
		return
	}
	liveness(w, req, nil)
}

// liveness is /healthz: the process answers. It checks nothing else, so
// that an orchestrator never restarts a server over a database outage.
func liveness(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

// handleProbes serves the load balancers' probes, /healthz and /readyz, on
// one of the HTTP listeners.
func handleProbes(mux *runtime.ServeMux, ready *readiness) error {
	if err := mux.HandlePath(http.MethodGet, "/healthz", liveness); err != nil {
		return err
	}
	return mux.HandlePath(http.MethodGet, "/readyz", ready.serveReadyz)
}
