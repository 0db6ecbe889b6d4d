package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/accounthealth/accounthealth/server/auth"
	"github.com/accounthealth/accounthealth/server/notify"
	"github.com/accounthealth/accounthealth/server/rebuild"
	"github.com/accounthealth/accounthealth/server/reconnect"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/postgres"
	"github.com/accounthealth/accounthealth/server/store/sqlite"
	"github.com/accounthealth/accounthealth/server/tracing"
)

// secretList is a comma-separated list of secrets. It never prints them,
// not even as a default, and keeps empty items so that a stray comma is
// reported rather than silently ignored.
type secretList []string

func (s *secretList) String() string { return "" }

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

// notifyFlags defines the flags of the outbound webhooks (endpoints).
func notifyFlags(fs *flag.FlagSet, cfg *notify.Config) {
	fs.Var((*scheduleFlag)(&cfg.Schedule), "notify-retry-schedule", "when each attempt at an outbound webhook is made after the previous one failed, comma-separated (jittered by a tenth; a receiver's Retry-After wins)")
	fs.DurationVar(&cfg.Timeout, "notify-timeout", notify.DefaultTimeout, "how long an endpoint has to answer 2xx")
	fs.DurationVar(&cfg.DisableAfter, "notify-disable-after", notify.DefaultDisableAfter, "an endpoint whose every attempt failed for this long is disabled")
	fs.DurationVar(&cfg.PollInterval, "notify-poll-interval", notify.DefaultPollInterval, "how often outbound webhooks look for work without a wake-up (retries due, commits of other replicas)")
	fs.BoolVar(&cfg.AllowInsecure, "allow-insecure-endpoints", false, "accept http:// endpoint URLs to any host, not only to loopback ones (testing only)")
}

// scheduleFlag is --notify-retry-schedule.
type scheduleFlag []time.Duration

func (f *scheduleFlag) String() string {
	ds := *f
	if f == nil || *f == nil {
		ds = notify.DefaultSchedule
	}
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

func (f *scheduleFlag) Set(v string) error {
	ds, err := notify.ParseSchedule(v)
	if err != nil {
		return err
	}
	*f = ds
	return nil
}

// serveOptions are serve's flags that service.Config does not hold.
type serveOptions struct {
	dataDir, databaseURL, publicURL, tokensFile, tokensList *string
	otlpEndpoint, logLevel, logFormat                       *string
	otlpInsecure                                            *bool
}

// serveFlags defines serve's flags, filling cfg.
func serveFlags(fs *flag.FlagSet, cfg *service.Config) serveOptions {
	var o serveOptions
	fs.StringVar(&cfg.WebhookAddr, "webhook-addr", cfg.WebhookAddr, "internet-facing listener: POST "+service.WebhookPath+", GET /healthz and GET /readyz only")
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", cfg.GRPCAddr, "internal gRPC listener (all services, grpc.health.v1, reflection)")
	fs.StringVar(&cfg.APIAddr, "api-addr", cfg.APIAddr, "internal REST gateway for AccountHealthService, /healthz, /readyz and Prometheus /metrics (authenticated like the API)")
	o.dataDir, o.databaseURL = storeFlags(fs)
	fs.Var((*secretList)(&cfg.WebhookSecrets), "webhook-secret", "secret of the provider's webhook subscription; comma-separated to accept two while rotating")
	fs.BoolVar(&cfg.AllowUnsignedWebhooks, "allow-unsigned-webhooks", false, "accept deliveries without a signature (local testing only)")
	fs.IntVar(&cfg.MaxBodyBytes, "max-body-bytes", cfg.MaxBodyBytes, "largest delivery body accepted; larger ones get 413")
	fs.DurationVar(&cfg.StreamHeartbeat, "stream-heartbeat", cfg.StreamHeartbeat, "how often idle StreamDisconnections streams get a heartbeat")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long shutdown waits for in-flight requests")
	fs.DurationVar(&cfg.HealthCheckInterval, "health-check-interval", cfg.HealthCheckInterval, "how often the store is checked for grpc.health.v1 and /readyz")
	fs.DurationVar(&cfg.MetricsAccountsMaxAge, "metrics-accounts-max-age", cfg.MetricsAccountsMaxAge, "how long /metrics reuses its count of accounts by state before querying the store again")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve Go's runtime profiles under /debug/pprof/ on the internal REST listener, authenticated like the API (for profiling)")
	fs.DurationVar(&cfg.Retention, "retention", cfg.Retention, "how long delivery bodies, and outbound messages once delivered or dead-lettered, are kept, e.g. 2160h for 90 days; records, transitions and API actions are kept for ever (0: keep everything)")
	fs.DurationVar(&cfg.RemovedRetention, "removed-retention", cfg.RemovedRetention, "how long a removed account's delivery bodies and account object are kept after its removal (0: for ever)")
	fs.DurationVar(&cfg.StaleAfter, "stale-after", cfg.StaleAfter, "a HEALTHY account the provider has not scanned for longer has stale data (freshness STALE)")
	fs.DurationVar(&cfg.StaleSweepInterval, "stale-sweep-interval", cfg.StaleSweepInterval, "how often accounts whose data passed --stale-after are looked for")
	providerFlags(fs, cfg)
	natsFlags(fs, cfg)
	o.publicURL = fs.String("webhook-public-url", "", publicURLUsage+"; checked at start when a provider key is set")
	o.tokensFile = fs.String("api-tokens-file", "", `file of internal API tokens, one "name:sha256-hex" per line ('accounthealth token new NAME' makes one)`)
	o.tokensList = fs.String("api-tokens", "", `internal API tokens as comma-separated "name:sha256-hex" entries (hashes, never the tokens)`)
	fs.StringVar(&cfg.TLSCertFile, "tls-cert", "", "PEM certificate for every listener (reloaded on change and on SIGHUP)")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&cfg.TLSClientCAFile, "tls-client-ca", "", "PEM CA whose client certificates authenticate internal callers (mutual TLS)")
	fs.Var((*listFlag)(&cfg.WebhookAllowSources), "webhook-allow-sources", `admit deliveries only from these comma-separated addresses or CIDRs ("argyle": the provider's four documented addresses); default: any`)
	fs.Var((*listFlag)(&cfg.TrustedProxies), "trusted-proxies", "comma-separated addresses or CIDRs of proxies whose X-Forwarded-For is believed")
	o.otlpEndpoint = fs.String("otlp-endpoint", "", "OpenTelemetry collector (host:port, OTLP/gRPC) to send traces to; empty: tracing off")
	o.otlpInsecure = fs.Bool("otlp-insecure", false, "send traces to the collector without TLS")
	fs.String("config", "", `file of "setting = value" lines (the flags' names, # comments); flags and environment override it`)
	o.logLevel = fs.String("log-level", "info", "debug, info, warn or error")
	o.logFormat = fs.String("log-format", "text", "text or json")
	return o
}

// providerFlags are serve's settings of the provider's API and of what the
// service does with it.
func providerFlags(fs *flag.FlagSet, cfg *service.Config) {
	fs.StringVar(&cfg.Provider.BaseURL, "argyle-api-url", cfg.Provider.BaseURL, "the provider's v2 API: sandbox, production, or a fake provider's URL")
	fs.StringVar(&cfg.Provider.KeyID, "argyle-api-key-id", "", "provider API key id (needed to delete failed accounts, fetch accounts, backfill and reconcile, and reconnect links)")
	fs.StringVar(&cfg.Provider.KeySecret, "argyle-api-key-secret", "", "provider API key secret")
	fs.DurationVar(&cfg.InviteResendInterval, "invite-resend-interval", reconnect.DefaultResendInterval, "least time between two sends of a user's invite (reconnect-invite)")
	fs.BoolVar(&cfg.SyncOnStart, "sync-on-start", cfg.SyncOnStart, "with a provider key: backfill every account from the provider at start unless a backfill finished (see `accounthealth sync`)")
	fs.DurationVar(&cfg.ReconcileInterval, "reconcile-interval", cfg.ReconcileInterval, "with a provider key: how often accounts due are fetched from the provider (0: never)")
	fs.DurationVar(&cfg.ReconcileMaxAge, "reconcile-max-age", cfg.ReconcileMaxAge, "an account whose object was last seen longer ago is fetched again; unconfirmed ones always are")
	notifyFlags(fs, &cfg.Notify)
}

// natsFlags are serve's settings of the JetStream export.
func natsFlags(fs *flag.FlagSet, cfg *service.Config) {
	fs.StringVar(&cfg.JetStream.URL, "nats-url", "", "NATS server(s) to export every transition to, with JetStream (comma-separated, e.g. nats://127.0.0.1:4222); empty: no export")
	fs.StringVar(&cfg.JetStream.Stream, "nats-stream", cfg.JetStream.Stream, "JetStream stream of the export: created when missing (subjects PREFIX.>), else used as configured")
	fs.StringVar(&cfg.JetStream.SubjectPrefix, "nats-subject-prefix", cfg.JetStream.SubjectPrefix, "first tokens of the export's subjects: PREFIX.account.TYPE.USER.ACCOUNT")
	fs.DurationVar(&cfg.JetStream.Duplicates, "nats-duplicates", cfg.JetStream.Duplicates, "deduplication window (by Nats-Msg-Id) of the stream when the export creates it")
}

func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg := service.DefaultConfig()
	fs := newFlagSet("serve", "serve [flags]", stderr)
	o := serveFlags(fs, &cfg)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, err := newLogger(stderr, *o.logLevel, *o.logFormat)
	if err != nil {
		return usageError{err}
	}
	if cfg.APITokens, err = loadTokens(*o.tokensFile, *o.tokensList); err != nil {
		return usageError{err}
	}
	if err := errors.Join(cfg.Validate(), checkPublicURL(*o.publicURL)); err != nil {
		return usageError{err}
	}
	if *o.otlpEndpoint != "" {
		tp, stopTracing, err := tracing.New(ctx, *o.otlpEndpoint, *o.otlpInsecure)
		if err != nil {
			return usageError{err}
		}
		defer func() {
			// Flush what is buffered, but never hold up the exit for long.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = stopTracing(ctx)
		}()
		cfg.TracerProvider = tp
	}
	srv, err := newServer(ctx, cfg, *o.databaseURL, *o.dataDir, logger)
	if err != nil {
		return err
	}
	stopReload := reloadOnSIGHUP(srv, logger)
	defer stopReload()
	defer checkSubscriptionsAtStart(ctx, cfg, *o.publicURL, logger)()
	return srv.Run(ctx)
}

// newServer opens the store, rebuilds health under this binary's rules if
// it must, and builds the server over it.
func newServer(ctx context.Context, cfg service.Config, databaseURL, dataDir string, logger *slog.Logger) (*service.Server, error) {
	st, err := openStore(ctx, databaseURL, dataDir)
	if err != nil {
		return nil, err
	}
	cfg.StoreName = storeName(databaseURL, dataDir)
	// Before any traffic: records derived under older rules are rebuilt
	// from the log, so nothing is served or streamed under stale rules.
	if _, err := rebuild.Run(ctx, st, logger, rebuild.Options{}); err != nil {
		st.Close()
		return nil, fmt.Errorf("rebuild health from the log: %w; start again to resume it", err)
	}
	srv, err := service.New(cfg, st, logger)
	if err != nil {
		st.Close()
		return nil, err
	}
	if cfg.AllowUnsignedWebhooks {
		logger.Warn("unsigned webhook deliveries are accepted; never run like this where the webhook listener is reachable from outside")
	}
	return srv, nil
}

// loadTokens reads the internal API tokens from a file and a list (both
// may be given; a name must not repeat).
func loadTokens(file, list string) (*auth.Tokens, error) {
	var sources []string
	var readers []io.Reader
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("api-tokens-file: %w", err)
		}
		sources, readers = append(sources, file), append(readers, bytes.NewReader(b))
	}
	if list != "" {
		sources, readers = append(sources, "api-tokens"), append(readers, strings.NewReader(list))
	}
	if len(readers) == 0 {
		return nil, nil
	}
	// One reader so that a name used in both is caught as a repeat.
	return auth.ParseTokens(io.MultiReader(joinLines(readers)...), strings.Join(sources, " + "))
}

// joinLines puts a newline between readers so entries do not run together.
func joinLines(rs []io.Reader) []io.Reader {
	var out []io.Reader
	for i, r := range rs {
		if i > 0 {
			out = append(out, strings.NewReader("\n"))
		}
		out = append(out, r)
	}
	return out
}

// reloadOnSIGHUP reloads the TLS certificate when the process gets SIGHUP.
func reloadOnSIGHUP(srv *service.Server, logger *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				if err := srv.ReloadCertificates(); err != nil {
					logger.Error("certificate reload failed; the previous certificate stays in use", "error", err)
				} else {
					logger.Info("certificates reloaded")
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}

// openStore picks the driver: PostgreSQL when a database URL is given (the
// store several replicas share), else the embedded SQLite in dataDir.
// storeName names the store for the start-up line: the SQLite directory,
// or PostgreSQL's host and database, never its password.
func storeName(databaseURL, dataDir string) string {
	if databaseURL == "" {
		return "sqlite in " + dataDir
	}
	if u, err := url.Parse(databaseURL); err == nil && u.Host != "" {
		return "postgresql " + u.Host + u.Path
	}
	return "postgresql"
}

// storeFlags are the flags that choose the store, shared by the commands
// that open one.
func storeFlags(fs *flag.FlagSet) (dataDir, databaseURL *string) {
	dataDir = fs.String("data-dir", "./data", "directory of the embedded SQLite database (when no --database-url)")
	databaseURL = fs.String("database-url", "", "PostgreSQL URL (postgres://user:pass@host:5432/db); set it to share one database between replicas")
	return dataDir, databaseURL
}

func openStore(ctx context.Context, databaseURL, dataDir string) (store.Store, error) {
	switch {
	case databaseURL == "" && dataDir == "":
		return nil, usageError{errors.New("data-dir: must not be empty")}
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
