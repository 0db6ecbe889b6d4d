package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The completion scripts are valid in their shells, and bash's completes
// commands, subcommands and flags as the help lists them.
func TestCompletion(t *testing.T) {
	dir := t.TempDir()
	scripts := map[string]string{}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, script, stderr := runBinary(t, nil, "completion", shell)
		if code != exitOK {
			t.Fatalf("completion %s: exit code %d\n%s", shell, code, stderr)
		}
		scripts[shell] = filepath.Join(dir, "accounthealth."+shell)
		if err := os.WriteFile(scripts[shell], []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Run(shell+" -n", func(t *testing.T) {
			if _, err := exec.LookPath(shell); err != nil {
				t.Skipf("%s is not installed", shell)
			}
			if out, err := exec.Command(shell, "-n", scripts[shell]).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", shell, err, out)
			}
		})
	}

	for _, c := range []struct {
		words []string // the last one is being completed
		want  string
	}{
		{[]string{"he"}, "health"},
		{[]string{"c"}, "check completion"},
		{[]string{"health", "li"}, "list"},
		{[]string{"health", "list", "--err"}, "--error-code"},
		{[]string{"health", "list", "--all", "--pa"}, "--page-size --page-token"},
		{[]string{"purge-failed", "--older"}, "--older-than"},
		{[]string{"watch", "--wi"}, "--wide"},
		{[]string{"health", "list", "--fr"}, "--freshness"},
		{[]string{"watch", "--include-f"}, "--include-freshness-events"},
		{[]string{"serve", "--webhook-se"}, "--webhook-secret"},
		{[]string{"health", "list", "g"}, ""}, // subcommands only right after their group
		{[]string{"nosuch", "--"}, ""},
	} {
		t.Run(strings.Join(c.words, " "), func(t *testing.T) {
			line := "source " + scripts["bash"] + `; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _accounthealth; echo "${COMPREPLY[*]}"`
			cmd := exec.Command("bash", append([]string{"-c", line, "bash", binary}, c.words...)...)
			cmd.Env = cleanEnv()
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, exitStderr(err))
			}
			if got := strings.TrimSpace(string(out)); got != c.want {
				t.Errorf("completes %q, want %q", got, c.want)
			}
		})
	}

	if code, _, stderr := runBinary(t, nil, "completion", "powershell"); code != exitUsage || !strings.Contains(stderr, "say 'completion bash', 'completion zsh' or 'completion fish'") {
		t.Errorf("completion powershell: exit code %d, want %d with the shells it knows\n%s", code, exitUsage, stderr)
	}
}
