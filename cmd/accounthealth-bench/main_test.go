package main

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
)

func TestMain(m *testing.M) {
	// The tool starts its own executable as its helper processes: under
	// go test, that is this binary.
	if child() {
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// smoke runs the tool's smoke mode with args and checks that every row ran
// and the ledger balanced; it asserts no figure.
func smoke(t *testing.T, args ...string) {
	dir := t.TempDir()
	jsonPath, mdPath := filepath.Join(dir, "bench.json"), filepath.Join(dir, "bench.md")
	var stderr strings.Builder
	err := run(t.Context(), append([]string{"-smoke", "-json", jsonPath, "-markdown", mdPath}, args...), os.Stdout, &stderr)
	if err != nil {
		t.Fatalf("the smoke run failed: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("the JSON file: %v", err)
	}
	if rep.Void != "" || rep.Machine.Cores == 0 || rep.Machine.Commit == "" || len(rep.Stores) != 1 {
		t.Fatalf("report: void %q, machine %+v, %d stores", rep.Void, rep.Machine, len(rep.Stores))
	}
	// Per row name, how many: the smoke has two numbers of senders, and
	// fan-out rows for 1 and 4 subscribers, one in ten an event, and for 4
	// every delivery an event. The
	// fill row appears only when the intake rows made fewer accounts than
	// asked for, which depends on the machine's speed.
	want := map[string]int{
		"no-op POST via grpc-gateway -> gRPC": 2, "signed intake into an empty store": 2, "signed intake at": 1, "signed intake while": 1,
		"stream fan-out": 3, "no-op unary gRPC": 1, "GetAccountHealth (gRPC)": 1, "GetAccountHealth, answers not decoded (gRPC)": 1, "ListAccountHealth": 1, "GetHealthSummary (gRPC)": 1, "GET /metrics": 1,
	}
	got := map[string]int{}
	for _, r := range rep.Rows {
		name := r.Name
		for prefix := range want {
			if strings.HasPrefix(r.Name, prefix) {
				name = prefix
			}
		}
		if !strings.HasPrefix(name, "signed intake, filling") {
			got[name]++
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("rows by name: %v, want %v", got, want)
	}
	var busy float64
	for _, r := range rep.Rows {
		busy += r.BusyCPU
		if r.OK == 0 || r.Errors > 0 {
			t.Errorf("row %q at %d: %d answered, %d errors (%s)", r.Name, r.Concurrency, r.OK, r.Errors, r.FirstError)
		}
		stream := strings.HasPrefix(r.Name, "signed intake while") || strings.HasPrefix(r.Name, "stream fan-out")
		if stream && (r.EventsExpected == 0 || r.EventsReceived != r.EventsExpected || r.EventP99MS <= 0) {
			t.Errorf("row %q: the subscribers received %d of %d events", r.Name, r.EventsReceived, r.EventsExpected)
		}
	}
	if busy <= 0 {
		t.Errorf("no row measured the machine busy")
	}
	l := rep.Stores[0].Ledger
	if l.Sent == 0 || l.Sent != l.Acked+l.Refused || l.NoAnswer != 0 || l.NotFound != 0 || rep.Stores[0].Accounts != l.Acked {
		t.Errorf("ledger %+v, %d accounts", l, rep.Stores[0].Accounts)
	}
	md, err := os.ReadFile(mdPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| signed intake into an empty store |") || !strings.Contains(string(md), "ledger") {
		t.Errorf("the Markdown lacks the tables:\n%s", md)
	}
}

func TestSmokeSQLite(t *testing.T) {
	profiles := t.TempDir()
	smoke(t, "-stores", "sqlite", "-profile", profiles)
	for _, name := range []string{"sqlite-intake-cpu.pprof", "sqlite-intake-allocs.pprof", "sqlite-GetAccountHealth-cpu.pprof", "sqlite-GetAccountHealth-allocs.pprof", "sqlite-fanout-cpu.pprof", "sqlite-fanout-allocs.pprof"} {
		if info, err := os.Stat(filepath.Join(profiles, name)); err != nil || info.Size() == 0 {
			t.Errorf("profile %s: %v", name, err)
		}
	}
}

func TestSmokePostgres(t *testing.T) {
	smoke(t, "-stores", "postgres", "-database-url", pgtest.URL(t))
}

// A delivery without an answer, or one counted neither acknowledged nor
// refused, makes the ledger fail to balance, and with it the run.
func TestLedgerBalance(t *testing.T) {
	cases := []struct {
		name                           string
		sent, acked, refused, noAnswer int64
		balances                       bool
	}{
		{"all acknowledged", 3, 3, 0, 0, true},
		{"some refused", 3, 2, 1, 0, true},
		{"one without an answer", 3, 2, 0, 1, false},
		{"one unaccounted for", 3, 1, 1, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var l ledger
			l.sent.Store(c.sent)
			l.acked.Store(c.acked)
			l.refused.Store(c.refused)
			l.lost.Store(c.noAnswer)
			if err := l.balance(); (err == nil) != c.balances {
				t.Errorf("balance() = %v, want balanced %v", err, c.balances)
			}
		})
	}
}

func TestBusyOf(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := busyOf("cpu  100 2 30 5000 40 6 7 8 90 1")
	if err != nil || got != 100+2+30+6+7+8 {
		t.Errorf("busyOf = %d, %v; want 153", got, err)
	}
	for _, line := range []string{"", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if _, err := busyOf(line); err == nil {
			t.Errorf("busyOf(%q) took it", line)
		}
	}
}
