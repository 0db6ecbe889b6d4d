package main

import "testing"

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
		{"help says so", []string{"delete-failed", "--help"}, exitOK, nil, []string{"--force  [command line only]", "-o  [ACCOUNTHEALTH_OUTPUT]"}},
	})
}
