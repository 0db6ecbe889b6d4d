package service

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/accounthealth/accounthealth/server/backfill"
	"github.com/accounthealth/accounthealth/server/deletion"
	"github.com/accounthealth/accounthealth/server/freshness"
	"github.com/accounthealth/accounthealth/server/intake"
	"github.com/accounthealth/accounthealth/server/items"
	"github.com/accounthealth/accounthealth/server/metrics"
	"github.com/accounthealth/accounthealth/server/natsexport"
	"github.com/accounthealth/accounthealth/server/notify"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/rebuild"
	"github.com/accounthealth/accounthealth/server/reconcile"
	"github.com/accounthealth/accounthealth/server/reconnect"
	"github.com/accounthealth/accounthealth/server/refresh"
	"github.com/accounthealth/accounthealth/server/retention"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/stream"
)

// core is what the front ends serve: the store and the domain parts over
// it, wired to one another.
type core struct {
	store    store.Store
	metrics  *metrics.Metrics
	tracing  tracing
	ready    *readiness // grpc.health.v1 and /readyz
	broker   *stream.Broker
	batcher  *intake.Batcher
	pipeline *intake.Pipeline
	deleter  *deletion.Deleter
	// refresher fetches accounts whose health is unconfirmed, and
	// reconnector brings users back to Link; nil without a provider API key.
	refresher   *refresh.Refresher
	reconnector *reconnect.Reconnector
	backfill    *backfill.Runner
	items       *items.Service
	watcher     *items.Watcher        // logs items' outages
	sweeper     *freshness.Sweeper    // judges accounts' data stale
	reconciler  *reconcile.Reconciler // nil also when turned off
	pruner      *retention.Runner     // nil when nothing is pruned
	exporter    *natsexport.Exporter  // nil without a NATS URL
	// notifier delivers outbound webhooks; nil on a store without an
	// outbox (a test's wrapper), and then NotificationService is not served.
	notifier *notify.Notifier
	// listeners are the bound addresses, once known: endpoints there are
	// refused.
	listeners atomic.Pointer[[]string]
}

// newCore builds the core over s. On error nothing is left running.
func newCore(cfg Config, s store.Store, logger *slog.Logger) (_ *core, err error) {
	outbox, hasOutbox := s.(store.Outbox)
	s = boundReads(s)
	c := &core{store: s, tracing: newTracing(cfg.TracerProvider)}
	if c.items, err = items.New(s, cfg.itemRules(), nil); err != nil {
		return nil, err
	}
	c.metrics = metrics.New(s.Summary, cfg.MetricsAccountsMaxAge, logger)
	c.ready = newReadiness(s, cfg.HealthCheckInterval, logger)
	if hasOutbox {
		c.notifier = notify.New(s, outbox, notify.Options{
			Config: cfg.Notify, Holder: replicaName(), Logger: logger,
			OwnAddrs: func() []string { return *c.listeners.Load() },
			Observer: notify.Observer{Attempted: c.metrics.WebhookAttempt, Disabled: c.metrics.WebhookEndpointDisabled},
		})
		c.metrics.WatchOutbox(c.notifier.Stats, cfg.MetricsAccountsMaxAge)
	}
	c.broker = stream.New(s, stream.Options{HeartbeatInterval: cfg.StreamHeartbeat, Logger: logger, OnTail: c.wakeNotifier})
	c.listeners.Store(&[]string{cfg.WebhookAddr, cfg.GRPCAddr, cfg.APIAddr})
	c.watcher = items.NewWatcher(c.items, s, func(ctx context.Context, d store.Delivery) (store.Result, error) {
		return c.batcher.Submit(ctx, d)
	}, cfg.ItemWatchInterval, logger)
	c.sweeper = freshness.New(s, func(ctx context.Context, d store.Delivery) (store.Result, error) {
		return c.batcher.Submit(ctx, d)
	}, freshness.Options{StaleAfter: cfg.StaleAfter, Interval: cfg.StaleSweepInterval, Logger: logger, Judged: c.metrics.JudgedStale})
	// Every commit may move an item's accounts or bring its report, or an
	// account object scanned long ago: the watcher and the sweeper take a
	// look (at most a pass a second each).
	c.batcher = intake.NewBatcher(s, 0, c.broker.Notify, func(size int, elapsed time.Duration, results []store.Result, err error) {
		c.metrics.Committed(size, elapsed, results)
		c.ready.committed(err)
		c.watcher.Notify()
		c.sweeper.Notify()
	})
	defer func() {
		if err != nil {
			c.batcher.Close()
		}
	}()
	if cfg.Retention > 0 || cfg.RemovedRetention > 0 {
		c.pruner = retention.New(s, retention.Options{
			Retention: cfg.Retention, RemovedRetention: cfg.RemovedRetention, Interval: cfg.PruneInterval,
			Decode: rebuild.Decode, Observer: c.metrics.Pruned, Logger: logger,
		})
	}
	if cfg.JetStream.URL != "" {
		opts := cfg.JetStream
		opts.Logger, opts.Name = logger, "accounthealth "+replicaName()
		if c.exporter, err = natsexport.New(c.broker, s, opts); err != nil {
			return nil, err
		}
		c.metrics.WatchJetStreamExport(c.exporter.Status)
	}
	c.pipeline, err = intake.NewPipeline(intake.Config{
		Secrets: cfg.WebhookSecrets, AllowUnsigned: cfg.AllowUnsignedWebhooks, MaxBodyBytes: cfg.MaxBodyBytes,
		Observer: c.metrics, Tracer: c.tracing.tracer,
	}, c.batcher.Submit)
	if err != nil {
		return nil, err
	}
	if err := c.useProvider(cfg, s, logger); err != nil {
		return nil, err
	}
	return c, nil
}

// useProvider builds what calls the provider's API: the deleter (which
// without a key only refuses), and with a key the refresher, reconnector,
// backfill and reconciler.
func (c *core) useProvider(cfg Config, s store.Store, logger *slog.Logger) error {
	if cfg.Provider.KeyID == "" {
		c.deleter = deletion.New(s, nil, c.batcher.Submit, logger)
		return nil
	}
	pcfg := cfg.Provider
	pcfg.Observer = c.metrics.ProviderCall
	client, err := provider.New(pcfg)
	if err != nil {
		return err
	}
	c.deleter = deletion.New(s, client, c.batcher.Submit, logger)
	c.refresher = refresh.New(client, s, c.batcher.Submit, logger, refreshQueueLimit)
	c.reconnector = reconnect.New(s, client, c.batcher.Submit, logger, reconnect.Options{ResendInterval: cfg.InviteResendInterval})
	c.backfill = backfill.NewRunner(s, client, c.batcher.Submit, backfill.Options{
		Logger: logger, Progress: backfillMetrics(c.metrics), Expected: knownAccounts(s),
	})
	if cfg.ReconcileInterval > 0 {
		c.reconciler = reconcile.New(s, c.refresher, reconcile.Options{
			Holder: replicaName(), Interval: cfg.ReconcileInterval, MaxAge: cfg.ReconcileMaxAge, Logger: logger,
			Observer: reconcile.Observer{Fetched: c.metrics.ReconcileFetched, Lag: c.metrics.ReconcileLag},
		})
	}
	return nil
}

// wakeNotifier has the outbound webhooks read the log: the broker's tail
// moved.
func (c *core) wakeNotifier() {
	if c.notifier != nil {
		c.notifier.Notify()
	}
}

// backfillMetrics counts the pages a backfill reports. Runs do not overlap
// (backfill.Runner), and a restart begins its counts anew.
func backfillMetrics(m *metrics.Metrics) func(backfill.Progress) {
	var last store.SyncState
	return func(p backfill.Progress) {
		m.BackfillWaiting(p.Waiting != nil)
		if p.Pages < last.Pages {
			last = store.SyncState{}
		}
		if p.Pages > last.Pages {
			m.BackfillPage(int(p.Seen-last.Seen), int(p.Applied-last.Applied))
			last = p.SyncState
		}
	}
}

// knownAccounts guesses the provider's account count from the store's.
func knownAccounts(s store.Store) func(context.Context) int64 {
	return func(ctx context.Context) int64 {
		sum, err := s.Summary(ctx)
		if err != nil {
			return 0
		}
		return int64(sum.Total)
	}
}

// replicaName names this process in the store's reconciliation leases:
// the host, the process id and a random suffix, unique across restarts.
func replicaName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), newRequestID()[:8])
}

// refreshQueueLimit bounds the accounts waiting for a provider refresh.
const refreshQueueLimit = 10000
