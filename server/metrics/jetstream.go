package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/accounthealth/accounthealth/server/natsexport"
)

// jetstreamCollector reports the JetStream export's state, read from the
// exporter at scrape time, so that the export keeps no second count.
type jetstreamCollector struct {
	status                                                      func() natsexport.Status
	exported, failures, lastSeq, lagChanges, lagSeconds, paused *prometheus.Desc
}

// WatchJetStreamExport adds the metrics of a JetStream export, whose
// state status returns.
func (m *Metrics) WatchJetStreamExport(status func() natsexport.Status) {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_jetstream_export_"+name, help, nil, nil)
	}
	m.registry.MustRegister(&jetstreamCollector{
		status:     status,
		exported:   desc("messages_total", "Transitions this process appended to the JetStream stream."),
		failures:   desc("failures_total", "Failed export attempts (the broker unreachable, a publish refused or unacknowledged); the export retries and resumes where the stream ends."),
		lastSeq:    desc("last_seq", "The change-log position of the last transition in the stream, as this process last saw it."),
		lagChanges: desc("lag_changes", "Changes of the log past the last one in the stream, at the export's last look (not updated while it is paused)."),
		lagSeconds: desc("lag_seconds", "Seconds since the export last found the stream holding every change of the log; 0 while it does."),
		paused:     desc("paused", "1 while the export is paused by a broker outage or a refusal (the log says why), else 0."),
	})
}

func (c *jetstreamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.exported, c.failures, c.lastSeq, c.lagChanges, c.lagSeconds, c.paused} {
		ch <- d
	}
}

func (c *jetstreamCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	lag := 0.0
	if !st.Current {
		lag = time.Since(st.CurrentAt).Seconds()
	}
	paused := 0.0
	if st.Paused {
		paused = 1
	}
	ch <- prometheus.MustNewConstMetric(c.exported, prometheus.CounterValue, float64(st.Exported))
	ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(st.Failures))
	ch <- prometheus.MustNewConstMetric(c.lastSeq, prometheus.GaugeValue, float64(st.LastSeq))
	ch <- prometheus.MustNewConstMetric(c.lagChanges, prometheus.GaugeValue, float64(st.Behind))
	ch <- prometheus.MustNewConstMetric(c.lagSeconds, prometheus.GaugeValue, lag)
	ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused)
}
