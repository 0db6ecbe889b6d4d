package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/accounthealth/accounthealth/server/store"
)

// pruneMetrics measure retention's pruning passes (server/retention).
type pruneMetrics struct {
	pruned       *prometheus.CounterVec
	prunedBytes  prometheus.Counter
	pruneFailed  prometheus.Counter
	pruneLast    prometheus.Gauge
	pruneSeconds prometheus.Gauge
}

func newPruneMetrics(f promauto.Factory) pruneMetrics {
	return pruneMetrics{
		pruned: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "pruned_total",
			Help: "What pruning passes of this process removed: entries deleted, entries' bodies removed (the entry kept), removed accounts' objects, outbound messages done with (with their attempts).",
		}, []string{"what"}),
		prunedBytes: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "pruned_bytes_total",
			Help: "Bytes of delivery bodies and account objects that pruning passes of this process removed.",
		}),
		pruneFailed: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "prune_failures_total",
			Help: "Pruning passes of this process that failed; the next pass goes on where it stopped.",
		}),
		pruneLast: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "prune_last_success_timestamp_seconds",
			Help: "When this process's last pruning pass finished without error, as a Unix time; 0 before the first.",
		}),
		pruneSeconds: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "prune_last_duration_seconds",
			Help: "How long this process's last pruning pass took.",
		}),
	}
}

// Pruned records one pruning pass that ended at end after elapsed, with
// what it removed (up to its error, if any).
func (m *Metrics) Pruned(r store.PruneReport, end time.Time, elapsed time.Duration, err error) {
	m.pruned.WithLabelValues("entries_deleted").Add(float64(r.Deleted))
	m.pruned.WithLabelValues("bodies_removed").Add(float64(r.Stripped))
	m.pruned.WithLabelValues("objects_removed").Add(float64(r.Objects))
	m.pruned.WithLabelValues("messages_removed").Add(float64(r.Messages))
	m.prunedBytes.Add(float64(r.Bytes))
	m.pruneSeconds.Set(elapsed.Seconds())
	if err != nil {
		m.pruneFailed.Inc()
		return
	}
	m.pruneLast.Set(float64(end.UnixNano()) / 1e9)
}
