package providerfake

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ControlRoutes describes the control routes, for a person driving the
// fake by hand (the package doc has the same list).
const ControlRoutes = `Control routes (HTTP Basic auth with the API key, JSON bodies):
  POST   /_fake/accounts                {"id","user","status","error_code",...}: add an account, no webhook;
                                        "scanned_at" (null: never scanned; days ago: a stale account),
                                        "ongoing_refresh":"disabled", "failed_datasets":["paystubs"]
  POST   /_fake/accounts/{id}/{action}  connect, fail, disconnect or remove it, sending its webhooks;
                                        body {"error_code":"...","silently":true,"drop":["accounts.updated"]}
  POST   /_fake/accounts/{id}/scan      a periodic scan of a connected account: accounts.updated with the
                                        datasets in_progress, then with scanned_at now and their outcome;
                                        body {"failed_datasets":["paystubs"],"ongoing_refresh":"disabled",
                                        "silently":true,"drop":["accounts.updated"]}
  POST   /_fake/invites                 {"user","url","status",...}: add an invite
  POST   /_fake/faults                  {"route":"GET /v2/accounts/{id}","status":503,"times":3}: misbehave
  DELETE /_fake/faults                  clear the faults`

// logged logs each request the fake serves, with its answer.
func (f *Fake) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		f.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Serve serves the fake on ln until ctx ends, then closes the fake (which
// releases requests held by faults and ends deliveries) and shuts the
// server down gracefully, waiting up to 5s for requests in progress. It
// returns nil after a shutdown caused by ctx.
func (f *Fake) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           f.logged(f.handler),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		ErrorLog:          slog.NewLogLogger(f.log.Handler(), slog.LevelWarn),
	}
	f.log.Info("fake provider listening", "addr", ln.Addr().String(), "base_path", "/v2")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		f.Close()
		return err
	case <-ctx.Done():
	}
	f.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return errors.Join(err, srv.Close())
	}
	return nil
}
