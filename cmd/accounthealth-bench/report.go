package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// report is everything a run measured, written as JSON and as Markdown.
type report struct {
	Machine machine           `json:"machine"`
	Config  map[string]string `json:"config"`
	Rows    []row             `json:"rows"`
	Stores  []storeFigures    `json:"stores"`
	// Void, when set, says why the run's figures do not stand.
	Void string `json:"void,omitempty"`
}

type machine struct {
	Cores     int       `json:"cores"`
	GoVersion string    `json:"go_version"`
	OS        string    `json:"os"`
	Commit    string    `json:"commit"`
	Started   time.Time `json:"started"`
}

// row is one measured load: rates are operations answered OK per second,
// latencies those of the operations answered OK, CPU the cores the
// serving process (the service, or the no-op server for a baseline) used,
// the load (this process) used, and the whole machine was busy.
type row struct {
	Store       string  `json:"store"`
	Name        string  `json:"name"`
	Concurrency int     `json:"concurrency"`
	OK          int64   `json:"ok"`
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	Seconds     float64 `json:"seconds"`
	Rate        float64 `json:"rate"`
	P50MS       float64 `json:"p50_ms"`
	P99MS       float64 `json:"p99_ms"`
	CPUCores    float64 `json:"cpu_cores"`
	LoadCPU     float64 `json:"load_cpu_cores"`
	BusyCPU     float64 `json:"machine_busy_cores"`
	// Against the baseline row, when there is one.
	Baseline  string  `json:"baseline,omitempty"`
	RateRatio float64 `json:"rate_ratio,omitempty"`
	P99Ratio  float64 `json:"p99_ratio,omitempty"`
	// The stream row's events: for every subscriber, one per delivery in
	// error acknowledged during the row.
	EventsExpected int64 `json:"events_expected,omitempty"`
	EventsReceived int64 `json:"events_received,omitempty"`
	// The events' latency, from the service's receipt of the delivery
	// that caused one to a subscriber decoding it (2% buckets).
	EventP50MS float64 `json:"event_p50_ms,omitempty"`
	EventP99MS float64 `json:"event_p99_ms,omitempty"`
}

func newRow(store, name string, concurrency int, res result, base *row) row {
	rw := row{Store: store, Name: name, Concurrency: concurrency, OK: res.ops, Errors: res.errs,
		Seconds: res.elapsed.Seconds(), Rate: res.rate(),
		P50MS: ms(res.percentile(0.50)), P99MS: ms(res.percentile(0.99)), CPUCores: res.cpu, LoadCPU: res.loadCPU, BusyCPU: res.busyCPU}
	if res.firstErr != nil {
		rw.FirstError = res.firstErr.Error()
	}
	if base != nil && base.Rate > 0 && base.P99MS > 0 {
		rw.Baseline = base.Name
		rw.RateRatio, rw.P99Ratio = rw.Rate/base.Rate, rw.P99MS/base.P99MS
	}
	return rw
}

// storeFigures are a store's figures that are not rows of load.
type storeFigures struct {
	Store                string        `json:"store"`
	Accounts             int64         `json:"accounts"`
	StoreBytesPerAccount float64       `json:"store_bytes_per_account"`
	BodyBytesPerAccount  float64       `json:"body_bytes_per_account"`
	ReadyEmptyMS         float64       `json:"ready_empty_ms"`
	ReadyMS              float64       `json:"ready_ms"`
	ReadyRSSBytes        int64         `json:"ready_rss_bytes"`
	PeakRSSBytes         int64         `json:"peak_rss_bytes"`
	Ledger               ledgerSummary `json:"ledger"`
}

type ledgerSummary struct {
	Sent      int64         `json:"sent"`
	Acked     int64         `json:"acknowledged"`
	Refused   int64         `json:"refused"`
	RefusedBy map[int]int64 `json:"refused_by_status,omitempty"`
	NoAnswer  int64         `json:"no_answer"`
	NotFound  int64         `json:"acknowledged_not_found"`
}

func (l *ledger) summary(notFound int64) ledgerSummary {
	return ledgerSummary{Sent: l.sent.Load(), Acked: l.acked.Load(), Refused: l.refused.Load(), RefusedBy: l.refusedBy,
		NoAnswer: l.lost.Load(), NotFound: notFound}
}

func (c config) settings() map[string]string {
	return map[string]string{
		"accounts": fmt.Sprint(c.accounts), "duration": c.duration.String(), "senders": fmt.Sprint(c.senders),
		"concurrency": fmt.Sprint(c.concurrency), "stores": strings.Join(c.stores, ","),
		"fanout_subscribers": fmt.Sprint(c.fanoutSubscribers), "fanout_rate": fmt.Sprint(c.fanoutRate),
	}
}

// write writes the JSON file and the Markdown tables.
func (rep *report) write(cfg config, stdout io.Writer) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfg.jsonPath, append(b, '\n'), 0o644); err != nil {
		return err
	}
	out := stdout
	if cfg.markdown != "" {
		f, err := os.Create(cfg.markdown)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	return rep.markdown(out)
}

func (rep *report) markdown(w io.Writer) error {
	var b strings.Builder
	m := rep.Machine
	fmt.Fprintf(&b, "accounthealth-bench, %s: %d cores, %s, %s, commit %s; %s\n\n", m.Started.Format(time.RFC3339), m.Cores, m.GoVersion, m.OS, m.Commit, settingsLine(rep.Config))
	if rep.Void != "" {
		fmt.Fprintf(&b, "**VOID: %s**\n\n", rep.Void)
	}
	b.WriteString("| store | what | callers | per s | p50 ms | p99 ms | CPU (cores) | load's CPU | machine busy | vs baseline: rate | p99 | errors |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rep.Rows {
		ratio, p99 := "", ""
		if r.Baseline != "" {
			ratio, p99 = fmt.Sprintf("%.2f", r.RateRatio), fmt.Sprintf("%.2f×", r.P99Ratio)
		}
		name := r.Name
		if r.EventsExpected > 0 {
			name += fmt.Sprintf(" (events received: %d of %d; receipt to subscriber p50 %.1f ms, p99 %.1f ms)",
				r.EventsReceived, r.EventsExpected, r.EventP50MS, r.EventP99MS)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %s | %d |\n",
			r.Store, name, r.Concurrency, r.Rate, r.P50MS, r.P99MS, r.CPUCores, r.LoadCPU, r.BusyCPU, ratio, p99, r.Errors)
	}
	b.WriteString("\n| store | accounts | store bytes per account | body bytes per account | ratio | ready, empty | ready at accounts | RSS at ready | peak RSS | ledger: sent = acknowledged + refused, found |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range rep.Stores {
		l := s.Ledger
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %.2f× | %.0f ms | %.0f ms | %.0f MiB | %.0f MiB | %d = %d + %d, %d not found |\n",
			s.Store, s.Accounts, s.StoreBytesPerAccount, s.BodyBytesPerAccount, s.StoreBytesPerAccount/s.BodyBytesPerAccount,
			s.ReadyEmptyMS, s.ReadyMS, mib(s.ReadyRSSBytes), mib(s.PeakRSSBytes), l.Sent, l.Acked, l.Refused, l.NotFound)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func settingsLine(c map[string]string) string {
	return fmt.Sprintf("accounts %s, %s a row, senders %s, %s callers for reads, fan-out to %s subscribers at %s deliveries/s",
		c["accounts"], c["duration"], c["senders"], c["concurrency"], c["fanout_subscribers"], c["fanout_rate"])
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
