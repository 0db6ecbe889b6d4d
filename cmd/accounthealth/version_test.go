package main

import (
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	runCases(t, nil, []cliCase{
		{"version", []string{"version"}, exitOK, []string{"accounthealth ", "(commit ", " go1."}, nil},
		{"--version", []string{"--version"}, exitOK, []string{"accounthealth "}, nil},
		{"version with an argument", []string{"version", "x"}, exitUsage, nil, []string{`unexpected argument "x"`}},
	})
}

// Settings that change what a command does to data come from the command
// line only: a variable left in a shell never forces a deletion.
func TestDataChangingFlagsIgnoreTheEnvironment(t *testing.T) {
	s := serve(t, t.TempDir())
	s.deliver(t, connectedJSON("acct-1", "user-1"))
	env := []string{"ACCOUNTHEALTH_SERVER=" + s.grpc, "ACCOUNTHEALTH_FORCE=true", "ACCOUNTHEALTH_DRY_RUN=true", "ACCOUNTHEALTH_OUTPUT=json"}
	runCases(t, env, []cliCase{
		// Not a dry run, not forced: the healthy account is refused as such.
		{"delete ignores FORCE and DRY_RUN", []string{"delete-failed", "acct-1"}, exitError, nil, []string{"account acct-1 is HEALTHY; only an account whose login failed"}},
		{"output from OUTPUT", []string{"health", "get", "acct-1"}, exitOK, []string{`{"accountId":"acct-1"`}, nil},
		{"help says so", []string{"delete-failed", "--help"}, exitOK, nil, []string{"--force  [command line only]", "-o STRING  [ACCOUNTHEALTH_OUTPUT]"}},
	})
}

func TestHelpTexts(t *testing.T) {
	runCases(t, nil, []cliCase{
		{"token help", []string{"token", "--help"}, exitOK, nil, []string{"Usage: accounthealth token new NAME", "takes no flags"}},
		{"token new help", []string{"token", "new", "--help"}, exitOK, nil, []string{"Usage: accounthealth token new NAME"}},
		{"client help names exit code 3", []string{"health", "get", "--help"}, exitOK, nil, []string{"3 the account is unknown to the server"}},
		{"a required flag shows no default", []string{"purge-failed", "--help"}, exitOK, nil, []string{"e.g. 720h for 30 days\n"}},
		{"flags name the kind of value they take", []string{"watch", "--help"}, exitOK, nil,
			[]string{"--since STRING  [", "--kind LIST  [", "--timeout DURATION  [", "--include-recoveries  ["}},
		{"page size range", []string{"health", "list", "--help"}, exitOK, nil, []string{"accounts per page, 0..500 (0: the server's default, 50)"}},
	})
	for _, args := range [][]string{{"version", "--help"}, {"completion", "--help"}} {
		if _, _, stderr := runBinary(t, nil, args...); strings.Contains(stderr, "Flags") {
			t.Errorf("%s prints a flags header, but it has no flags:\n%s", args, stderr)
		}
	}
}
