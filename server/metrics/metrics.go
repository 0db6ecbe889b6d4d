// Package metrics is the service's Prometheus instrumentation. Each Metrics
// owns its registry, never the global default one: tests run many servers
// in one process, and a replica's metrics are its own. The parts it
// measures (intake, stream, provider) do not import Prometheus; they call
// narrow hooks that the service wires to the methods here.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/accounthealth/accounthealth/server/buildinfo"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

const namespace = "accounthealth"

// Bucket layouts. Label values are fixed vocabularies (outcomes, reasons,
// states, kinds, HTTP methods), never account or user ids, so the number
// of series stays bounded.
var (
	// latencyBuckets (seconds) reach from a commit of a few milliseconds to
	// the 30-second bounds of a stuck store or a provider call.
	latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// batchBuckets reach the batcher's largest commit (intake.DefaultMaxBatch).
	batchBuckets = prometheus.ExponentialBuckets(1, 2, 9)
	// lagBuckets (changes): 0 is a live subscriber; beyond the stream's
	// ring (4096 by default) one that reads the log from the store.
	lagBuckets = []float64{0, 1, 10, 100, 1000, 10000, 100000}
)

// Metrics holds the service's metrics and serves them. Its methods are
// safe for concurrent use.
type Metrics struct {
	registry *prometheus.Registry
	logger   *slog.Logger

	received    prometheus.Counter
	accepted    *prometheus.CounterVec
	rejected    *prometheus.CounterVec
	intake      prometheus.Histogram
	batchSize   prometheus.Histogram
	commit      prometheus.Histogram
	transitions *prometheus.CounterVec
	subscribers prometheus.Gauge
	lag         prometheus.Histogram
	sent        prometheus.Counter
	calls       *prometheus.CounterVec
	callSeconds *prometheus.HistogramVec
	syncMetrics
	pruneMetrics
	notifyMetrics
}

// New registers the metrics. summary counts accounts by state for the
// accounts gauge, read at scrape time at most once per maxAge (0: at
// every scrape); logger gets the errors of scrapes.
func New(summary func(context.Context) (store.Summary, error), maxAge time.Duration, logger *slog.Logger) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newAccountsCollector(summary, maxAge),
	)
	f := promauto.With(reg)
	build := buildinfo.Get()
	f.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1; its labels name the running build.",
		ConstLabels: prometheus.Labels{"version": build.Version, "revision": build.Revision, "go_version": build.GoVersion},
	}).Set(1)
	return &Metrics{
		registry: reg,
		logger:   logger,
		received: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "webhook_deliveries_received_total",
			Help: "Webhook deliveries received, over HTTP or gRPC, before any check.",
		}),
		accepted: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "webhook_deliveries_accepted_total",
			Help: "Webhook deliveries stored and acknowledged, by what they did to the account (APPLIED, STALE, DUPLICATE, ...).",
		}, []string{"outcome"}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "webhook_deliveries_rejected_total",
			Help: "Webhook deliveries refused, by reason (missing_signature, invalid_signature, malformed, too_large, store_unavailable, ...).",
		}, []string{"reason"}),
		intake: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "webhook_intake_seconds",
			Help:    "Time from a delivery's receipt by the intake pipeline to its acknowledgement (verify, decode, durable commit), accepted deliveries only.",
			Buckets: latencyBuckets,
		}),
		batchSize: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "store_commit_batch_size",
			Help:    "Deliveries per group commit.",
			Buckets: batchBuckets,
		}),
		commit: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "store_commit_seconds",
			Help:    "Duration of one group commit in the store.",
			Buckets: latencyBuckets,
		}),
		transitions: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "transitions_total",
			Help: "Health transitions committed by this process, by kind.",
		}, []string{"kind"}),
		subscribers: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "stream_subscribers",
			Help: "Open StreamDisconnections streams.",
		}),
		lag: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "stream_lag_changes",
			Help:    "For each event sent, how many changes of the log already lay past it: 0 for a subscriber that keeps up.",
			Buckets: lagBuckets,
		}),
		sent: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "stream_events_sent_total",
			Help: "Disconnection events sent to stream subscribers (heartbeats not counted).",
		}),
		calls: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "provider_requests_total",
			Help: "Calls to the provider's API, retries included in one call, by HTTP method and outcome (ok, not_found, unauthorized, rate_limited, unavailable, canceled, error).",
		}, []string{"method", "outcome"}),
		callSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "provider_request_seconds",
			Help:    "Duration of calls to the provider's API, retries and waits included.",
			Buckets: latencyBuckets,
		}, []string{"method"}),
		syncMetrics:   newSyncMetrics(f),
		pruneMetrics:  newPruneMetrics(f),
		notifyMetrics: newNotifyMetrics(reg),
	}
}

// Handler serves the registry in the Prometheus formats. A collector that
// fails (the store cannot count accounts) is logged and left out; the
// other metrics are still served, since an outage is when they matter.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.registry,
	})
}

// DeliveryReceived, DeliveryAccepted and DeliveryRejected implement
// intake.Observer.
func (m *Metrics) DeliveryReceived() { m.received.Inc() }

func (m *Metrics) DeliveryAccepted(outcome health.Outcome, elapsed time.Duration) {
	m.accepted.WithLabelValues(outcome.String()).Inc()
	m.intake.Observe(elapsed.Seconds())
}

func (m *Metrics) DeliveryRejected(reason string) { m.rejected.WithLabelValues(reason).Inc() }

// Committed is the batcher's intake.CommitObserver.
func (m *Metrics) Committed(size int, elapsed time.Duration, results []store.Result) {
	m.batchSize.Observe(float64(size))
	m.commit.Observe(elapsed.Seconds())
	for _, r := range results {
		if r.Change != nil {
			m.transitions.WithLabelValues(r.Change.Kind.String()).Inc()
		}
	}
}

// StreamOpened and StreamClosed bracket one stream subscriber.
func (m *Metrics) StreamOpened() { m.subscribers.Inc() }
func (m *Metrics) StreamClosed() { m.subscribers.Dec() }

// StreamSent counts an event sent to a subscriber that was behind changes
// behind the tail of the log (stream.Item.Behind).
func (m *Metrics) StreamSent(behind int64) {
	m.sent.Inc()
	m.lag.Observe(float64(behind))
}

// ProviderCall is the provider client's Config.Observer.
func (m *Metrics) ProviderCall(method, outcome string, elapsed time.Duration) {
	m.calls.WithLabelValues(method, outcome).Inc()
	m.callSeconds.WithLabelValues(method).Observe(elapsed.Seconds())
}
