package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/accounthealth/accounthealth/server/store"
)

// Outbound webhooks: attempts counted as they are made in this process;
// what waits, read from the store (shared by every replica) at scrape
// time. The endpoint id is the only label beside a fixed outcome, and the
// service holds at most notify.MaxEndpoints endpoints, so series stay
// bounded.

type notifyMetrics struct {
	attempts *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	disabled *prometheus.CounterVec
}

func newNotifyMetrics(reg *prometheus.Registry) notifyMetrics {
	m := notifyMetrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "webhook_endpoint_attempts_total",
			Help: "Outbound webhook attempts made by this process, by endpoint and outcome (delivered, failed).",
		}, []string{"endpoint", "outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "webhook_endpoint_attempt_seconds",
			Help:    "Duration of outbound webhook attempts, from the request to the receiver's answer, by endpoint.",
			Buckets: latencyBuckets,
		}, []string{"endpoint"}),
		disabled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "webhook_endpoints_disabled_total",
			Help: "Endpoints this process disabled (410 Gone, or failing for longer than --notify-disable-after).",
		}, []string{"endpoint"}),
	}
	reg.MustRegister(m.attempts, m.seconds, m.disabled)
	return m
}

// WebhookAttempt counts one outbound webhook attempt.
func (m *Metrics) WebhookAttempt(endpointID string, delivered bool, latency time.Duration) {
	outcome := "failed"
	if delivered {
		outcome = "delivered"
	}
	m.attempts.WithLabelValues(endpointID, outcome).Inc()
	m.seconds.WithLabelValues(endpointID).Observe(latency.Seconds())
}

// WebhookEndpointDisabled counts an endpoint the service disabled.
func (m *Metrics) WebhookEndpointDisabled(endpointID string) {
	m.disabled.WithLabelValues(endpointID).Inc()
}

// WatchOutbox reports, at scrape time, what each endpoint's messages
// wait for, from stats (read at most once per maxAge, like the accounts).
func (m *Metrics) WatchOutbox(stats func(context.Context) ([]store.EndpointStats, error), maxAge time.Duration) {
	m.registry.MustRegister(&outboxCollector{stats: stats, maxAge: maxAge,
		pending: prometheus.NewDesc(namespace+"_webhook_endpoint_pending_messages",
			"Messages not yet delivered to the endpoint (retrying ones included).", []string{"endpoint"}, nil),
		retrying: prometheus.NewDesc(namespace+"_webhook_endpoint_retrying_messages",
			"Pending messages that failed at least once.", []string{"endpoint"}, nil),
		exhausted: prometheus.NewDesc(namespace+"_webhook_endpoint_dead_letters",
			"Messages whose retries are exhausted (ListMessages status EXHAUSTED).", []string{"endpoint"}, nil),
		oldest: prometheus.NewDesc(namespace+"_webhook_endpoint_oldest_pending_seconds",
			"Age of the endpoint's oldest pending message; 0 when none waits.", []string{"endpoint"}, nil),
	})
}

type outboxCollector struct {
	stats                                func(context.Context) ([]store.EndpointStats, error)
	maxAge                               time.Duration
	pending, retrying, exhausted, oldest *prometheus.Desc

	mu   sync.Mutex
	at   time.Time
	last []store.EndpointStats
	err  error
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.retrying
	ch <- c.exhausted
	ch <- c.oldest
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	stats, err := c.read()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.pending, err)
		return
	}
	now := time.Now()
	for _, s := range stats {
		age := 0.0
		if !s.OldestAt.IsZero() {
			age = max(now.Sub(s.OldestAt).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(s.Pending), s.EndpointID)
		ch <- prometheus.MustNewConstMetric(c.retrying, prometheus.GaugeValue, float64(s.Retrying), s.EndpointID)
		ch <- prometheus.MustNewConstMetric(c.exhausted, prometheus.GaugeValue, float64(s.Exhausted), s.EndpointID)
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age, s.EndpointID)
	}
}

func (c *outboxCollector) read() ([]store.EndpointStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < c.maxAge {
		return c.last, c.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), summaryTimeout)
	defer cancel()
	c.last, c.err = c.stats(ctx)
	c.at = time.Now()
	return c.last, c.err
}
