package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/postgres"
	"github.com/accounthealth/accounthealth/server/store/sqlite"
)

// secretList is a comma-separated list of webhook secrets.
type secretList []string

func (s *secretList) String() string { return "" } // never print secrets, not even as a default

func (s *secretList) Set(v string) error {
	*s = nil
	if v == "" {
		return nil
	}
	for _, part := range strings.Split(v, ",") {
		*s = append(*s, strings.TrimSpace(part))
	}
	return nil
}

func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg := service.DefaultConfig()
	fs := newFlagSet("serve", "serve [flags]", stderr)
	fs.StringVar(&cfg.WebhookAddr, "webhook-addr", cfg.WebhookAddr, "internet-facing listener: POST "+service.WebhookPath+" and GET /healthz only")
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", cfg.GRPCAddr, "internal gRPC listener (all services, grpc.health.v1, reflection)")
	fs.StringVar(&cfg.APIAddr, "api-addr", cfg.APIAddr, "internal REST gateway for AccountHealthService")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory of the embedded SQLite database (when no --database-url)")
	databaseURL := fs.String("database-url", "", "PostgreSQL URL (postgres://user:pass@host:5432/db); set it to share one database between replicas")
	fs.Var((*secretList)(&cfg.WebhookSecrets), "webhook-secret", "secret of the provider's webhook subscription; comma-separated to accept two while rotating")
	fs.BoolVar(&cfg.AllowUnsignedWebhooks, "allow-unsigned-webhooks", false, "accept deliveries without a signature (local testing only)")
	fs.IntVar(&cfg.MaxBodyBytes, "max-body-bytes", cfg.MaxBodyBytes, "largest delivery body accepted; larger ones get 413")
	fs.DurationVar(&cfg.StreamHeartbeat, "stream-heartbeat", cfg.StreamHeartbeat, "how often idle StreamDisconnections streams get a heartbeat")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long shutdown waits for in-flight requests")
	fs.StringVar(&cfg.Provider.BaseURL, "argyle-api-url", cfg.Provider.BaseURL, "the provider's v2 API: sandbox, production, or a fake provider's URL")
	fs.StringVar(&cfg.Provider.KeyID, "argyle-api-key-id", "", "provider API key id (needed to delete failed accounts)")
	fs.StringVar(&cfg.Provider.KeySecret, "argyle-api-key-secret", "", "provider API key secret")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return usageError{err}
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}

	st, err := openStore(ctx, *databaseURL, cfg.DataDir)
	if err != nil {
		return err
	}
	srv, err := service.New(cfg, st, logger)
	if err != nil {
		st.Close()
		return err
	}
	if cfg.AllowUnsignedWebhooks {
		logger.Warn("unsigned webhook deliveries are accepted; never run like this where the webhook listener is reachable from outside")
	}
	return srv.Run(ctx)
}

// openStore picks the driver: PostgreSQL when a database URL is given (the
// store several replicas share), else the embedded SQLite in dataDir.
func openStore(ctx context.Context, databaseURL, dataDir string) (store.Store, error) {
	switch {
	case databaseURL != "":
		st, err := postgres.Open(ctx, databaseURL, store.Options{})
		if err != nil {
			return nil, fmt.Errorf("database-url: %w", err)
		}
		return st, nil
	default:
		st, err := sqlite.Open(ctx, dataDir, store.Options{})
		if err != nil {
			return nil, fmt.Errorf("data-dir: open the store in %s: %w", dataDir, err)
		}
		return st, nil
	}
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log-format: %q is not text or json", format)
}

var _ flag.Value = (*secretList)(nil)
