package main

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDashboardFirstRender measures, for docs/benchmarks.md, the
// overview's weight (HTML, CSS and JavaScript as transferred) and its time
// to first render (navigation start to the counts and the chart drawn)
// over a store of ACCOUNTHEALTH_UI_BENCH_ACCOUNTS accounts. It is skipped
// without that variable. ACCOUNTHEALTH_UI_BENCH_DIR keeps the store for
// the next run (writing 1,000,000 accounts takes minutes).
func TestDashboardFirstRender(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ACCOUNTHEALTH_UI_BENCH_ACCOUNTS"))
	if n <= 0 {
		t.Skip("set ACCOUNTHEALTH_UI_BENCH_ACCOUNTS to the number of accounts")
	}
	dir := os.Getenv("ACCOUNTHEALTH_UI_BENCH_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	if _, err := os.Stat(filepath.Join(dir, "seeded")); err != nil {
		start := time.Now()
		seedHistory(t, dir, n)
		if err := os.WriteFile(filepath.Join(dir, "seeded"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("seeded %d accounts in %v", n, time.Since(start).Round(time.Second))
	}
	browser := startBrowser(t)
	s := serve(t, dir)
	total, _, _ := summaryJSON(t, s)
	t.Logf("store: %d accounts", total)
	// The overview's three API calls, alone.
	end := time.Now().Truncate(time.Hour).Add(time.Hour)
	for _, path := range []string{
		"/v1/health/summary",
		"/v1/transitions:count?bucketWidth=3600s&startTime=" + end.Add(-24*time.Hour).UTC().Format(time.RFC3339) + "&endTime=" + end.UTC().Format(time.RFC3339),
		"/v1/transitions:count?bucketWidth=86400s&startTime=" + end.Add(-30*24*time.Hour).UTC().Format(time.RFC3339) + "&endTime=" + end.UTC().Format(time.RFC3339),
	} {
		for run := range 2 {
			start := time.Now()
			s.restBody(t, path)
			t.Logf("GET %s: %v (run %d)", path, time.Since(start).Round(time.Millisecond), run+1)
		}
	}
	for run := range 3 {
		tab := openTab(t, browser) // a fresh browser context: an empty cache
		browse(t, tab, "open the overview", chromedp.Navigate("http://"+s.rest+"/ui/"))
		// The time since navigation start when the counts and the chart are
		// drawn, and the bytes that came over the wire for the page.
		ms := waitJS[float64](t, tab, `document.querySelector('main').dataset.drawn === '#/' && !!document.querySelector('#chart g.bar') && performance.now()`)
		weight := evalJS[map[string]float64](t, tab, `(() => {
			const page = [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource').filter(e => /\.(css|js)$/.test(e.name))];
			return {files: page.length, transfer: page.reduce((n, e) => n + e.transferSize, 0), encoded: page.reduce((n, e) => n + e.encodedBodySize, 0), decoded: page.reduce((n, e) => n + e.decodedBodySize, 0)};
		})()`)
		// Where the time went: the API reads start once the scripts ran and
		// the session is known.
		api := evalJS[map[string]float64](t, tab, `(() => {
			const api = performance.getEntriesByType('resource').filter(e => /summary|transitions/.test(e.name));
			return {start: Math.min(...api.map(e => e.startTime)), end: Math.max(...api.map(e => e.responseEnd))};
		})()`)
		t.Logf("run %d: first render %.0f ms (API reads %.0f..%.0f ms); %v files, %v bytes transferred (%v bytes of bodies, %v uncompressed)",
			run+1, ms, api["start"], api["end"], weight["files"], weight["transfer"], weight["encoded"], weight["decoded"])
	}
}
