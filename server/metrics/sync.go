package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// syncMetrics measure what the service learns from the provider without
// webhooks: the backfill and the reconciliation rounds.
type syncMetrics struct {
	backfillPages    prometheus.Counter
	backfillSeen     prometheus.Counter
	backfillApplied  prometheus.Counter
	backfillWaiting  prometheus.Gauge
	reconcileFetched *prometheus.CounterVec
	reconcileLag     prometheus.Gauge
	judgedStale      prometheus.Counter
}

func newSyncMetrics(f promauto.Factory) syncMetrics {
	return syncMetrics{
		backfillPages: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "backfill_pages_total",
			Help: "Pages of the provider's account list committed by backfills of this process.",
		}),
		backfillSeen: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "backfill_accounts_seen_total",
			Help: "Accounts listed by the provider and recorded by backfills of this process.",
		}),
		backfillApplied: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "backfill_accounts_applied_total",
			Help: "Accounts whose account object a backfill applied (the others were duplicates or older than what was held).",
		}),
		backfillWaiting: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "backfill_waiting_for_provider",
			Help: "1 while a backfill waits for a failing provider, else 0.",
		}),
		reconcileFetched: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "reconcile_accounts_fetched_total",
			Help: "Accounts fetched by reconciliation, by outcome (changed, unchanged, removed, failed).",
		}, []string{"outcome"}),
		reconcileLag: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "reconcile_oldest_unconfirmed_seconds",
			Help: "How long the oldest unconfirmed account has waited for a fetch; 0 when none waits.",
		}),
		judgedStale: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "freshness_judged_stale_total",
			Help: "HEALTHY accounts this process judged stale: not scanned by the provider for longer than --stale-after.",
		}),
	}
}

// BackfillPage counts one committed page of a backfill.
func (m *Metrics) BackfillPage(seen, applied int) {
	m.backfillPages.Inc()
	m.backfillSeen.Add(float64(seen))
	m.backfillApplied.Add(float64(applied))
}

// BackfillWaiting says whether a backfill waits for the provider.
func (m *Metrics) BackfillWaiting(waiting bool) {
	v := 0.0
	if waiting {
		v = 1
	}
	m.backfillWaiting.Set(v)
}

// ReconcileFetched counts one account fetched by reconciliation.
func (m *Metrics) ReconcileFetched(outcome string) { m.reconcileFetched.WithLabelValues(outcome).Inc() }

// ReconcileLag sets the wait of the oldest unconfirmed account.
func (m *Metrics) ReconcileLag(d time.Duration) { m.reconcileLag.Set(d.Seconds()) }

// JudgedStale counts the accounts a freshness sweep judged stale.
func (m *Metrics) JudgedStale(n int) { m.judgedStale.Add(float64(n)) }
