package service

import (
	"errors"
	"fmt"
	"net"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/accounthealth/accounthealth"
	"github.com/accounthealth/accounthealth/server/auth"
	"github.com/accounthealth/accounthealth/server/freshness"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/intake"
	"github.com/accounthealth/accounthealth/server/natsexport"
	"github.com/accounthealth/accounthealth/server/notify"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/reconcile"
	"github.com/accounthealth/accounthealth/server/store"
)

// Config is everything `accounthealth serve` needs. Flags and environment
// variables fill it (cmd/accounthealth); Validate checks it in one place.
type Config struct {
	// WebhookAddr is the internet-facing listener: the webhook route and
	// the probes (/healthz, /readyz), nothing else.
	WebhookAddr string
	// GRPCAddr is the internal gRPC listener (all services, grpc.health.v1,
	// reflection).
	GRPCAddr string
	// APIAddr is the internal REST gateway for AccountHealthService, with
	// the probes and Prometheus /metrics (authenticated like the API).
	APIAddr string
	// WebhookSecrets verify deliveries; two at once while rotating.
	WebhookSecrets []string
	// AllowUnsignedWebhooks accepts deliveries without a signature.
	AllowUnsignedWebhooks bool
	// MaxBodyBytes caps a delivery's body.
	MaxBodyBytes int
	// ShutdownTimeout bounds the graceful part of shutdown; after it,
	// remaining RPCs are cut.
	ShutdownTimeout time.Duration
	// StreamHeartbeat is how often an idle stream gets a heartbeat, so
	// proxies and load balancers do not cut it.
	StreamHeartbeat time.Duration
	// WebhookAllowSources, when set, admits deliveries only from these
	// addresses or CIDRs ("argyle": the provider's documented addresses).
	// TrustedProxies are the proxies whose X-Forwarded-For is believed.
	WebhookAllowSources, TrustedProxies []string
	// HealthCheckInterval is how often the store is pinged to answer
	// grpc.health.v1 and /readyz; probes themselves never reach the store.
	HealthCheckInterval time.Duration
	// MetricsAccountsMaxAge is how long a count of accounts by state is
	// reused for /metrics, so that scrapes do not query the store each
	// time; 0 counts at every scrape.
	MetricsAccountsMaxAge time.Duration
	// Pprof serves Go's runtime profiles under /debug/pprof/ on the
	// internal REST listener, authenticated like the API: for profiling
	// under load (bench/run -profile). Off by default.
	Pprof bool
	// APITokens authenticate internal callers (nil: none).
	APITokens *auth.Tokens
	// TracerProvider receives the service's spans; nil: tracing off.
	TracerProvider trace.TracerProvider
	// TLSCertFile and TLSKeyFile, when set, serve every listener over TLS;
	// TLSClientCAFile verifies client certificates on the internal
	// listeners (mutual TLS), as an alternative to tokens.
	TLSCertFile, TLSKeyFile, TLSClientCAFile string
	// Provider configures the provider's REST API client, used to delete
	// failed accounts, fetch accounts and bring users back to Link. Without
	// a key id the API is not called.
	Provider provider.Config
	// StoreName says which store the server runs on, for its start-up
	// line (never a password): e.g. "sqlite ./data/accounthealth.db".
	StoreName string
	// InviteResendInterval is the least time between two sends of a
	// user's invite (ResendInvite); 0: reconnect.DefaultResendInterval.
	InviteResendInterval time.Duration
	// SyncOnStart backfills from the provider's account list at start when
	// a provider key is configured and no backfill has finished yet.
	SyncOnStart bool
	// ReconcileInterval is how often accounts are reconciled with the
	// provider (0: never); ReconcileMaxAge, how old an account's last
	// confirmation may grow before it is fetched again.
	ReconcileInterval, ReconcileMaxAge time.Duration
	// Retention is how long delivery bodies are kept (0: for ever);
	// RemovedRetention, how long a removed account's bodies and account
	// object are (0: for ever). See store.RunPrune for what stays.
	// PruneInterval is how often a pruning pass runs (0:
	// retention.DefaultInterval).
	Retention, RemovedRetention, PruneInterval time.Duration
	// JetStream, when its URL is set, exports every transition to a NATS
	// JetStream stream (server/natsexport); its Logger and Name are the
	// service's.
	JetStream natsexport.Options
	// Notify configures the outbound webhooks (retry schedule, timeout,
	// auto-disable, plain-http endpoints).
	Notify notify.Config
	// ItemRules are the thresholds of the item outage derivation; the zero
	// value means health.DefaultItemRules. ItemWatchInterval is how often
	// items' outages are derived and logged when no commit asks sooner (0:
	// items.DefaultWatchInterval).
	ItemRules         health.ItemRules
	ItemWatchInterval time.Duration
	// StaleAfter is how long a HEALTHY account may go unscanned by the
	// provider before its data is stale; StaleSweepInterval, how often the
	// sweeper looks for such accounts (server/freshness).
	StaleAfter, StaleSweepInterval time.Duration
}

func (c Config) itemRules() health.ItemRules {
	if c.ItemRules == (health.ItemRules{}) {
		return health.DefaultItemRules
	}
	return c.ItemRules
}

// minRetention is the shortest retention: well beyond the time within
// which a redelivery is recognised by its body (store.DefaultRedeliveryWindow)
// and the provider's retries of a delivery.
const minRetention = time.Hour

// DefaultConfig is what `serve` runs with when nothing is set.
func DefaultConfig() Config {
	return Config{
		WebhookAddr:           "127.0.0.1:8080",
		GRPCAddr:              "127.0.0.1:9090",
		APIAddr:               "127.0.0.1:8081",
		MaxBodyBytes:          intake.DefaultMaxBodyBytes,
		ShutdownTimeout:       15 * time.Second,
		StreamHeartbeat:       15 * time.Second,
		HealthCheckInterval:   5 * time.Second,
		MetricsAccountsMaxAge: 5 * time.Second,
		Provider:              provider.Config{BaseURL: provider.DefaultBaseURL},
		SyncOnStart:           true,
		ReconcileInterval:     reconcile.DefaultInterval,
		ReconcileMaxAge:       reconcile.DefaultMaxAge,
		RemovedRetention:      store.DefaultRemovedRetention,
		StaleAfter:            freshness.DefaultStaleAfter,
		StaleSweepInterval:    freshness.DefaultInterval,
		JetStream: natsexport.Options{
			Stream: natsexport.DefaultStream, SubjectPrefix: natsexport.DefaultSubjectPrefix, Duplicates: natsexport.DefaultDuplicates,
		},
	}
}

// Validate reports every problem at once, each naming its setting.
func (c Config) Validate() error {
	var errs []error
	for _, a := range []struct{ name, addr string }{
		{"webhook-addr", c.WebhookAddr}, {"grpc-addr", c.GRPCAddr}, {"api-addr", c.APIAddr},
	} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port: %w", a.name, a.addr, err))
		}
	}
	for i, s := range c.WebhookSecrets {
		if s == "" {
			errs = append(errs, fmt.Errorf("webhook-secret: secret %d of %d is empty (check for a stray comma)", i+1, len(c.WebhookSecrets)))
		}
	}
	if len(c.WebhookSecrets) == 0 && !c.AllowUnsignedWebhooks {
		errs = append(errs, errors.New("webhook-secret: required; set it to the secret of the provider's webhook subscription (or pass --allow-unsigned-webhooks for local testing only)"))
	}
	switch {
	case c.MaxBodyBytes < 1024:
		errs = append(errs, fmt.Errorf("max-body-bytes: %d is too small; deliveries are up to a few KB, use at least 1024", c.MaxBodyBytes))
	case c.MaxBodyBytes > accounthealth.MaxBodyBytesLimit:
		errs = append(errs, fmt.Errorf("max-body-bytes: %d is too large; deliveries are up to a few KB, use at most %d (16 MiB)", c.MaxBodyBytes, accounthealth.MaxBodyBytesLimit))
	}
	if c.StreamHeartbeat < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("stream-heartbeat: %s is too short; use at least 100ms (proxies cut idle streams after 30-60s, so 15s suits most)", c.StreamHeartbeat))
	}
	if c.HealthCheckInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("health-check-interval: %s is too short; use at least 10ms (load balancers probe every few seconds, so 5s suits most)", c.HealthCheckInterval))
	}
	if c.MetricsAccountsMaxAge < 0 {
		errs = append(errs, fmt.Errorf("metrics-accounts-max-age: must not be negative, got %s", c.MetricsAccountsMaxAge))
	}
	for _, r := range []struct {
		name string
		d    time.Duration
	}{{"retention", c.Retention}, {"removed-retention", c.RemovedRetention}} {
		if r.d != 0 && r.d < minRetention {
			errs = append(errs, fmt.Errorf("%s: %s is too short; use 0 to keep everything, or at least %s (bodies are pruned by age in days, e.g. 2160h for 90 days)", r.name, r.d, minRetention))
		}
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("shutdown-timeout: must be positive, got %s", c.ShutdownTimeout))
	}
	switch {
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		errs = append(errs, errors.New("tls-cert, tls-key: set both or neither"))
	case c.TLSClientCAFile != "" && c.TLSCertFile == "":
		errs = append(errs, errors.New("tls-client-ca: needs tls-cert and tls-key (client certificates are checked in the TLS handshake)"))
	}
	if (c.APITokens == nil || c.APITokens.Len() == 0) && c.TLSClientCAFile == "" {
		// Without credentials the internal API may only listen where no
		// one else can reach it.
		for _, a := range []struct{ name, addr string }{{"grpc-addr", c.GRPCAddr}, {"api-addr", c.APIAddr}} {
			if !loopback(a.addr) {
				errs = append(errs, fmt.Errorf("%s: %s is not a loopback address and no internal authentication is configured: set --api-tokens-file (or ACCOUNTHEALTH_API_TOKENS) or --tls-client-ca, or listen on 127.0.0.1", a.name, a.addr))
			}
		}
	}
	if _, err := auth.NewSourceFilter(c.WebhookAllowSources, c.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	if c.Provider.KeyID != "" || c.Provider.KeySecret != "" {
		if _, err := provider.New(c.Provider); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ReconcileInterval < 0 || (c.ReconcileInterval > 0 && c.ReconcileMaxAge <= 0) {
		errs = append(errs, fmt.Errorf("reconcile-interval/reconcile-max-age: %v/%v; the interval is 0 (off) or positive, and then the max age positive (e.g. 1m and 24h)", c.ReconcileInterval, c.ReconcileMaxAge))
	}
	if c.JetStream.URL != "" {
		errs = append(errs, c.JetStream.Validate())
	}
	if err := c.Notify.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(append(errs, c.validateFreshness())...)
}

// minStaleAfter is the shortest stale-after age: the provider scans an
// account a few times a day at most, so a shorter age calls every
// account stale between its scans.
const minStaleAfter = time.Hour

func (c Config) validateFreshness() error {
	var errs []error
	if c.StaleAfter < minStaleAfter {
		errs = append(errs, fmt.Errorf("stale-after: %s is too short; the provider rescans accounts about daily, so use at least %s (72h by default)", c.StaleAfter, minStaleAfter))
	}
	if c.StaleSweepInterval <= 0 {
		errs = append(errs, fmt.Errorf("stale-sweep-interval: must be positive, got %s (1m by default)", c.StaleSweepInterval))
	}
	return errors.Join(errs...)
}

// loopback reports whether addr's host can only be reached from this
// machine. An empty host (":9090") listens everywhere, so it is not.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
