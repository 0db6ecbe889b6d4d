package main

import (
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

// Every table the client commands print fits 100 columns and keeps its
// columns under their headers whatever their content: a long error code
// is cut with "…", ids never are; --wide prints every cell whole, and
// health list --ids the ids alone, for a shell to use.
func TestTablesFitATerminal(t *testing.T) {
	s := serve(t, t.TempDir())
	env := []string{"ACCOUNTHEALTH_SERVER=" + s.grpc}
	longCode := strings.Repeat("an_unheard_of_error_code_", 4)
	longID := "account-with-an-id-longer-than-a-uuid-01234567890"
	watch := startBinary(t, "", env, "watch")
	watch.waitOutput(t, watch.stderr, "watching "+s.grpc, 1)
	wideWatch := startBinary(t, "", env, "watch", "--wide")
	wideWatch.waitOutput(t, wideWatch.stderr, "watching "+s.grpc, 1)
	s.deliver(t, failedJSON("acct-1", "user-1", "invalid_mfa"), failedJSON(longID, "user-2", longCode))
	watch.waitOutput(t, watch.stdout, "\n", 3)
	wideWatch.waitOutput(t, wideWatch.stdout, "\n", 3)

	for _, c := range []struct {
		name   string
		output string
		header string
		whole  []string // cells printed whole
		cut    bool     // the long code is cut
	}{
		{"list", stdoutOf(t, env, "health", "list"), "ACCOUNT", []string{longID, "invalid_mfa"}, true},
		{"list --wide", stdoutOf(t, env, "health", "list", "--wide"), "ACCOUNT", []string{longID, longCode, "RETRY_MFA", "user-2"}, false},
		{"events", stdoutOf(t, env, "events", longID), "SEQ", []string{"accounts.failed"}, true},
		{"events --wide", stdoutOf(t, env, "events", "--wide", longID), "SEQ", []string{"new → AUTH_FAILED (" + longCode + ")"}, false},
		{"watch", watch.stdout.String(), "TIME", []string{longID, "acct-1", "invalid_mfa", "RETRY_MFA"}, true},
		{"watch --wide", wideWatch.stdout.String(), "TIME", []string{longID, longCode, "user-2", "RETRY_MFA: "}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			lines := strings.Split(strings.TrimSuffix(c.output, "\n"), "\n")
			if !strings.HasPrefix(lines[0], c.header) {
				t.Fatalf("no header %s...:\n%s", c.header, c.output)
			}
			for _, cell := range c.whole {
				if !strings.Contains(c.output, cell) {
					t.Errorf("%q is not printed whole:\n%s", cell, c.output)
				}
			}
			if got := strings.Contains(c.output, "…"); got != c.cut {
				t.Errorf("the long code cut with …: %v, want %v\n%s", got, c.cut, c.output)
			}
			for _, line := range lines {
				// The long id is kept whole, and shifts the rest of its line
				// only in watch, whose widths are fixed before the events come.
				n := utf8.RuneCountInString(strings.Replace(line, longID, longID[:36], 1))
				if c.cut && n > terminalWidth {
					t.Errorf("%d columns, want at most %d: %q", n, terminalWidth, line)
				}
				if !strings.Contains(line, longID) || !strings.HasPrefix(c.name, "watch") {
					checkAligned(t, lines[0], line)
				}
			}
		})
	}

	// A record wraps its long values between words, under themselves.
	get := stdoutOf(t, env, "health", "get", "acct-1")
	for line := range strings.Lines(get) {
		if n := utf8.RuneCountInString(strings.TrimSuffix(line, "\n")); n > terminalWidth {
			t.Errorf("health get: %d columns, want at most %d: %q", n, terminalWidth, line)
		}
	}
	remedy := "remedy       RETRY_MFA: The multi-factor authentication answer was wrong; retry in Link and enter\n" +
		"             the correct code.\n"
	if !strings.Contains(get, remedy) {
		t.Errorf("health get does not wrap the remedy as\n%s\n%s", remedy, get)
	}

	// acct-1 entered its state first; by id it comes second.
	for order, want := range map[string]string{"": longID + "\nacct-1\n", "state_since_asc": "acct-1\n" + longID + "\n", "STATE_SINCE_DESC": longID + "\nacct-1\n"} {
		args := []string{"health", "list", "--ids", "--page-size", "1", "--all"}
		if order != "" {
			args = append(args, "--order", order)
		}
		if ids := stdoutOf(t, env, args...); ids != want {
			t.Errorf("health list --order %q printed %q, want %q", order, ids, want)
		}
	}
	for _, args := range [][]string{{"--ids"}, {"--ids", "-o", "json"}} {
		if ids := stdoutOf(t, env, append([]string{"health", "list", "--error-code", "invalid_mfa"}, args...)...); ids != "acct-1\n" {
			t.Errorf("health list %s printed %q, want the one id", args, ids)
		}
	}
}

// checkAligned fails unless each column of header (names two spaces
// apart) starts, in line, at the same place, after two spaces.
func checkAligned(t *testing.T, header, line string) {
	t.Helper()
	h, l := []rune(header), []rune(line)
	for i := 2; i < len(h); i++ {
		if h[i] == ' ' || h[i-1] != ' ' || h[i-2] != ' ' {
			continue
		}
		if i >= len(l) || l[i] == ' ' || l[i-1] != ' ' || l[i-2] != ' ' {
			t.Errorf("not aligned under %q:\n%s\n%s", string(h[i:]), header, line)
			return
		}
	}
}

// stdoutOf runs the binary, fails the test unless it exits 0, and returns its
// stdout.
func stdoutOf(t *testing.T, env []string, args ...string) string {
	t.Helper()
	code, stdout, stderr := runBinary(t, env, args...)
	if code != exitOK {
		t.Fatalf("%s: exit code %d\n%s%s", args, code, stdout, stderr)
	}
	return stdout
}

// The watch keeps a kind longer than its column whole (REMEDY_RESTORED
// was cut to "REMEDY_REST…"), the usual ones aligned under KIND.
func TestWatchKeepsLongKindsWhole(t *testing.T) {
	var out strings.Builder
	w := &watcher{c: &clientCommand{output: "text", stdout: &out}}
	for _, kind := range []ahv1.TransitionKind{ahv1.TransitionKind_TRANSITION_KIND_AUTH_FAILED, ahv1.TransitionKind_TRANSITION_KIND_REMEDY_RESTORED} {
		ev := &ahv1.DisconnectionEvent{Kind: kind, AccountId: "acct-1", OccurredAt: timestamppb.Now(),
			Remedy: &ahv1.Remedy{Action: ahv1.RemedyAction_REMEDY_ACTION_RECONNECT}}
		if err := w.print(ev); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], "REMEDY_RESTORED") || strings.Contains(out.String(), "…") {
		t.Fatalf("watch printed:\n%s", out.String())
	}
	checkAligned(t, lines[0], lines[1])
}
