package metrics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// summaryTimeout bounds the store query of one scrape, well inside
// Prometheus' default scrape timeout (10 s).
const summaryTimeout = 3 * time.Second

// accountsCollector reports accounts by state, and HEALTHY ones by data
// freshness, from the store at scrape time. The store is the only truth across replicas, so nothing is counted
// in memory; instead an answer (or a failure) younger than maxAge is
// reused, so that frequent or concurrent scrapes cost the store one query
// per maxAge at most.
type accountsCollector struct {
	desc, freshDesc *prometheus.Desc
	summary         func(context.Context) (store.Summary, error)
	maxAge          time.Duration

	mu  sync.Mutex // held while reading: concurrent scrapes share one query
	at  time.Time  // of the last read; zero before the first
	sum store.Summary
	err error
}

func newAccountsCollector(summary func(context.Context) (store.Summary, error), maxAge time.Duration) *accountsCollector {
	return &accountsCollector{
		desc: prometheus.NewDesc(namespace+"_accounts",
			"Accounts by health state, read from the store at scrape time (cached briefly).",
			[]string{"state"}, nil),
		freshDesc: prometheus.NewDesc(namespace+"_healthy_accounts",
			"HEALTHY accounts by data freshness (FRESH, STALE, REFRESH_DISABLED, SYNC_FAILED), read with the accounts by state.",
			[]string{"freshness"}, nil),
		summary: summary,
		maxAge:  maxAge,
	}
}

func (c *accountsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc; ch <- c.freshDesc }

// Collect reports every state, zeros included, so that each series exists
// from the first scrape on; a failed read is reported to the handler.
func (c *accountsCollector) Collect(ch chan<- prometheus.Metric) {
	sum, err := c.read()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for s := health.StateConnecting; s <= health.StateRemoved; s++ {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(sum.ByState[s]), s.String())
	}
	for f := health.FreshnessFresh; f <= health.FreshnessSyncFailed; f++ {
		ch <- prometheus.MustNewConstMetric(c.freshDesc, prometheus.GaugeValue, float64(sum.ByFreshness[f]), f.String())
	}
}

func (c *accountsCollector) read() (store.Summary, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < c.maxAge {
		return c.sum, c.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), summaryTimeout)
	defer cancel()
	s, err := c.summary(ctx)
	c.at, c.sum, c.err = time.Now(), s, nil
	if err != nil {
		c.err = fmt.Errorf("accounts by state: %w", err)
	}
	return c.sum, c.err
}
