package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

const readmeSection = "## Try it in five minutes"

// readmeSteps returns the command lines of the README section's sh blocks,
// in order.
func readmeSteps(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []string
	in, block := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == readmeSection:
			in = true
		case !in:
		case strings.HasPrefix(line, "## "):
			return steps
		case line == "```sh":
			block = true
		case line == "```":
			block = false
		case block && strings.TrimSpace(line) != "":
			steps = append(steps, line)
		}
	}
	if len(steps) == 0 {
		t.Fatalf("README.md has no sh blocks under %q", readmeSection)
	}
	return steps
}

// uuid finds the provider's account ids in a table.
var uuid = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// The README's quick tour works as written: its command lines run in a
// shell, in order, in a fresh directory holding ./accounthealth, as a
// newcomer would paste them. Servers and the watch run in the background as
// in their own terminals; a second serve replaces the first, as the README
// says to stop it. Default addresses become free ports through the
// environment, and in the one URL the README spells out; ID=$(...) must
// keep the id of the invalid_mfa row in the list shown before it.
func TestReadmeFiveMinutes(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink(binary, filepath.Join(dir, "accounthealth")); err != nil {
		t.Fatal(err)
	}
	webhookAddr, grpcAddr, fakeAddr := freePort(t), freePort(t), freePort(t)
	env := append(cleanEnv(), "ACCOUNTHEALTH_WEBHOOK_ADDR="+webhookAddr, "ACCOUNTHEALTH_GRPC_ADDR="+grpcAddr,
		"ACCOUNTHEALTH_API_ADDR="+freePort(t), "ACCOUNTHEALTH_SERVER="+grpcAddr, "ACCOUNTHEALTH_ADDR="+fakeAddr)
	// simulate takes the listener's base URL, fake-provider the route's.
	commandEnv := map[string]string{
		"simulate":      "ACCOUNTHEALTH_WEBHOOK_URL=http://" + webhookAddr,
		"fake-provider": "ACCOUNTHEALTH_WEBHOOK_URL=http://" + webhookAddr + "/v1/webhooks/argyle",
	}
	// ready says when a background command is up, as its terminal would show.
	ready := map[string]func(p *process){
		"serve":         func(p *process) { p.waitOutput(t, p.stderr, "msg=serving", 1) },
		"watch":         func(p *process) { p.waitOutput(t, p.stderr, "watching "+grpcAddr, 1) },
		"fake-provider": func(p *process) { p.waitOutput(t, p.stdout, "fake provider API on", 1) },
	}

	background := map[string]*process{}
	outputs := map[string]string{} // stdout of each foreground command
	last, id := "", ""
	for _, line := range readmeSteps(t) {
		fields := strings.Fields(line)
		switch {
		case line == "go build -o accounthealth ./cmd/accounthealth":
			continue // TestMain built it from this tree
		case strings.HasPrefix(line, "ID=$(") && strings.HasSuffix(line, ")"):
			listed := uuid.FindString(lineWith(last, "invalid_mfa"))
			if listed == "" {
				t.Fatalf("no invalid_mfa account in the output before %q:\n%s", line, last)
			}
			cmd := exec.Command("sh", "-c", "exec "+strings.TrimSuffix(strings.TrimPrefix(line, "ID=$("), ")"))
			cmd.Dir, cmd.Env = dir, env
			out, err := cmd.Output()
			if id = strings.TrimSpace(string(out)); err != nil || id != listed {
				t.Fatalf("README step %q: ID=%q (%v), want the invalid_mfa row's %s\n%s", line, id, err, listed, exitStderr(err))
			}
			env = append(env, "ID="+id)
			continue
		case fields[0] != "./accounthealth":
			t.Fatalf("README step %q does not run ./accounthealth; teach this test how to run it", line)
		}
		command := fields[1]
		cmd := exec.Command("sh", "-c", "exec "+strings.ReplaceAll(line, "127.0.0.1:8090", fakeAddr))
		cmd.Dir, cmd.Env = dir, append(env, commandEnv[command])
		if wait, ok := ready[command]; ok {
			if prev := background[command]; prev != nil {
				if code := prev.stop(t, syscall.SIGINT); code != exitOK {
					t.Fatalf("%s exited %d on Ctrl-C\n%s", command, code, prev.stderr)
				}
			}
			background[command] = startProcess(t, cmd)
			wait(background[command])
			continue
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("README step %q: %v\n%s%s", line, err, out, exitStderr(err))
		}
		last = string(out)
		outputs[strings.Join(fields[1:], " ")] = last
	}

	for step, want := range map[string][]string{
		"simulate --webhook-secret change-me all": {"accounts.failed", "200 APPLIED"},
		"health list":                 {"ACCOUNT", "AUTH_FAILED", "DISCONNECTED", "REMOVED"},
		"health get $ID":              {"account     " + id, "state       AUTH_FAILED", "RETRY_MFA: "},
		"events $ID":                  {"accounts.failed", "CONNECTING → AUTH_FAILED (invalid_mfa)"},
		"delete-failed $ID --dry-run": {"would delete account " + id},
		"delete-failed $ID":           {"it is now marked REMOVED"},
	} {
		out, ran := outputs[step]
		if !ran {
			t.Errorf("the README no longer runs %q; update this test with it", step)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: the output does not contain %q:\n%s", step, w, out)
			}
		}
	}
	// The warning the README says the second serve logs.
	serve := background["serve"]
	serve.waitOutput(t, serve.stderr, "no subscription delivers account events", 1)
	watch := background["watch"]
	watch.waitOutput(t, watch.stdout, "REMOVED", 2) // the revoked account's, then ours
	watch.waitOutput(t, watch.stderr, "reconnected", 1)
	if n := strings.Count(watch.stdout.String(), id); n != 2 {
		t.Errorf("the watch printed %d lines for %s, want 2 (failed, removed):\n%s", n, id, watch.stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "watch.cursor")); err != nil {
		t.Errorf("the watch's resume file: %v", err)
	}
	for name, p := range background {
		if code := p.stop(t, syscall.SIGINT); code != exitOK && name != "fake-provider" {
			t.Errorf("%s exited %d on Ctrl-C\n%s", name, code, p.stderr)
		}
	}
}

// lineWith returns the first line of out containing s.
func lineWith(out, s string) string {
	for line := range strings.Lines(out) {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

func exitStderr(err error) string {
	if exit, ok := err.(*exec.ExitError); ok {
		return string(exit.Stderr)
	}
	return ""
}
