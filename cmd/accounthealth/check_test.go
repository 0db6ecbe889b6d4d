package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accounthealth/accounthealth/server/store/sqlite"
)

// TestCheck: `accounthealth check` passes a store that only the service
// wrote, and fails, naming the account and what to do, one derived under
// older rules or tampered with behind the service's back.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	seedUnderOlderRules(t, dir)
	if code, out, errOut := runBinary(t, nil, "check", "--data-dir", dir); code != exitError || !strings.Contains(out, "rebuild them, then check again") {
		t.Errorf("check under older rules: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runBinary(t, nil, "rebuild", "--data-dir", dir); code != exitOK {
		t.Fatalf("rebuild: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runBinary(t, nil, "check", "--data-dir", dir); code != exitOK || !strings.Contains(out, "checked 3 accounts, 5 entries, ") || !strings.Contains(out, ": clean") {
		t.Errorf("check after the rebuild: exit %d\n%s%s", code, out, errOut)
	}

	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), `UPDATE records SET consecutive_failures = 7 WHERE account_id = 'acct-ok'`); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runBinary(t, nil, "check", "--data-dir", dir)
	if code != exitError || !strings.Contains(out, `account "acct-ok": the record stored differs from the one its log derives: ConsecutiveFailures stored 7, derived 0`+"\n") ||
		!strings.Contains(errOut, "problems found: 1; `accounthealth rebuild --force` re-derives records") {
		t.Errorf("check of a tampered record: exit %d\n%s%s", code, out, errOut)
	}
	missing := filepath.Join(dir, "missing")
	if code, _, errOut := runBinary(t, nil, "check", "--data-dir", missing); code != exitError || !strings.Contains(errOut, "no store to check in "+missing) {
		t.Errorf("check of a directory without a store: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("check created %s", missing)
	}
	if code, _, errOut := runBinary(t, nil, "check", "--data-dir", dir, "now"); code != exitUsage || !strings.Contains(errOut, `unexpected argument "now"`) {
		t.Errorf("check with an argument: exit %d: %s", code, errOut)
	}
}
