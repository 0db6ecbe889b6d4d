package providerfake

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Serve serves the fake on ln until ctx ends, then closes the fake (which
// releases requests held by faults and ends deliveries) and shuts the
// server down gracefully, waiting up to 5s for requests in progress. It
// returns nil after a shutdown caused by ctx.
func (f *Fake) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           f.handler,
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
