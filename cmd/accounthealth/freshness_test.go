package main

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// A HEALTHY account's data freshness through the binary: watch
// --include-freshness-events prints one readable FRESHNESS_LOST line when a dataset
// fails to sync, a watch without it prints none; health list --freshness
// selects HEALTHY accounts by it (not a fresh one, nor a disconnected one
// whose datasets failed too), any case, comma-separated; a value it does
// not know is a usage error naming those it does; get, list (in the error
// code's place), summary and events show it.
func TestFreshnessCommands(t *testing.T) {
	s := serve(t, t.TempDir())
	env := []string{"ACCOUNTHEALTH_SERVER=" + s.grpc}
	freshness := startBinary(t, "", env, "watch", "--include-freshness-events")
	plain := startBinary(t, "", env, "watch")
	for _, w := range []*process{freshness, plain} {
		w.waitOutput(t, w.stderr, "watching "+s.grpc, 1)
	}
	const syncFailed = `"availability":{"paystubs":{"status":"sync_failed"},"gigs":{"status":"synced"}}`
	at := time.Now().Add(-2 * time.Hour)
	s.deliver(t, updatedJSON("fresh-1", "user-1", "connected", "", at),
		withFields(updatedJSON("refresh-off", "user-1", "connected", "", at), `"ongoing_refresh":{"status":"disabled"}`),
		updatedJSON("failing-1", "user-1", "connected", "", at),
		withFields(updatedJSON("failing-1", "user-1", "connected", "", at.Add(time.Hour)), syncFailed),
		updatedJSON("disconnected-1", "user-2", "connected", "", at),
		withFields(updatedJSON("disconnected-1", "user-2", "error", "auth_required", at.Add(time.Hour)), syncFailed))

	// The disconnection comes after the freshness event in the log: once
	// the plain watch prints it, it has passed the other by.
	plain.waitOutput(t, plain.stdout, "disconnected-1", 1)
	freshness.waitOutput(t, freshness.stdout, "disconnected-1", 1)
	freshness.stop(t, syscall.SIGINT)
	plain.stop(t, syscall.SIGINT)
	if lost := lineWith(freshness.stdout.String(), "FRESHNESS_LOST"); !strings.Contains(lost, "  failing-1  ") || !strings.Contains(lost, "  SYNC_FAILED(paystubs)  NONE") {
		t.Errorf("watch --include-freshness-events: no line FRESHNESS_LOST failing-1 SYNC_FAILED(paystubs) NONE:\n%s", freshness.stdout)
	}
	if n := strings.Count(freshness.stdout.String(), "FRESHNESS_"); n != 1 {
		t.Errorf("watch --include-freshness-events printed %d freshness events, want 1:\n%s", n, freshness.stdout)
	}
	if strings.Contains(plain.stdout.String(), "FRESHNESS_") {
		t.Errorf("watch without --include-freshness-events printed a freshness event:\n%s", plain.stdout)
	}

	runCases(t, env, []cliCase{
		{"list shows freshness", []string{"health", "list"}, exitOK, []string{"STATE         ERROR/FRESHNESS        SINCE\n",
			"disconnected-1  DISCONNECTED  auth_required          20", "failing-1       HEALTHY       SYNC_FAILED(paystubs)  20",
			"fresh-1         HEALTHY       FRESH                  20", "refresh-off     HEALTHY       REFRESH_DISABLED       20"}, nil},
		{"list as json", []string{"health", "list", "--freshness", "sync_failed", "-o", "json"}, exitOK,
			[]string{`"freshness":{"status":"FRESHNESS_STATUS_SYNC_FAILED"`, `"failedDatasets":["paystubs"]`}, nil},
		{"list a bad freshness", []string{"health", "list", "--freshness", "fresh,rotten"}, exitUsage, nil,
			[]string{`--freshness: "fresh,rotten": "rotten" is not one of FRESH, STALE, REFRESH_DISABLED, SYNC_FAILED`, "Run 'accounthealth health list --help'"}},
		{"get", []string{"health", "get", "failing-1"}, exitOK,
			[]string{"state        HEALTHY since ", "freshness    SYNC_FAILED since ", "failed data  paystubs\n", "last scan    "}, nil},
		{"summary", []string{"health", "summary"}, exitOK,
			[]string{"FRESHNESS         HEALTHY ACCOUNTS\nFRESH             1\nSTALE             0\nREFRESH_DISABLED  1\nSYNC_FAILED       1\n"}, nil},
		{"events", []string{"events", "failing-1"}, exitOK, []string{"APPLIED  FRESH → SYNC_FAILED(paystubs)"}, nil},
	})
	for filter, want := range map[string]string{"sync_failed": "failing-1\n", "REFRESH_DISABLED,stale": "refresh-off\n", "Fresh": "fresh-1\n"} {
		if got := stdoutOf(t, env, "health", "list", "--ids", "--freshness", filter); got != want {
			t.Errorf("health list --freshness %s listed %q, want %q", filter, got, want)
		}
	}
	if get := stdoutOf(t, env, "health", "get", "disconnected-1"); strings.Contains(get, "freshness") {
		t.Errorf("health get of a DISCONNECTED account shows a freshness:\n%s", get)
	}
}
