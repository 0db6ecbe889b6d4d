package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/auth"
	"github.com/accounthealth/accounthealth/server/provider/providerfake"
)

// failedJSON is an accounts.failed delivery: a new account's login failed.
func failedJSON(account, user, code string) []byte {
	return fmt.Appendf(nil, `{"event":"accounts.failed","name":"cli-test","data":{"account":%q,"user":%q,"error_code":%q,"error_message":"Login failed."}}`,
		account, user, code)
}

// connectedJSON is an accounts.connected delivery.
func connectedJSON(account, user string) []byte {
	return fmt.Appendf(nil, `{"event":"accounts.connected","name":"cli-test","data":{"account":%q,"user":%q}}`, account, user)
}

func (s *server) deliver(t *testing.T, bodies ...[]byte) {
	t.Helper()
	for _, b := range bodies {
		if code := s.post(t, b); code != 200 {
			t.Fatalf("delivery answered %d\n%s", code, s.stderr)
		}
	}
}

// process is the binary running in the background, its output collected.
type process struct {
	cmd            *exec.Cmd
	stdout, stderr *logWatch
	done           chan struct{}
	exit           int // once done is closed
}

// startBinary starts the binary in dir (the test's own when empty).
func startBinary(t *testing.T, dir string, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir, cmd.Env = dir, append(cleanEnv(), env...)
	return startProcess(t, cmd)
}

// startProcess starts cmd with its output collected; it is killed at the
// end of the test if still running.
func startProcess(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{cmd: cmd, stdout: newLogWatch(), stderr: newLogWatch(), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		err := p.cmd.Wait()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			p.exit = exit.ExitCode()
		}
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// stop sends sig and returns the exit code.
func (p *process) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.exit
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not stop within 20s\n%s", p.cmd.Args, p.stderr)
		return 0
	}
}

// waitOutput waits until out holds want n times.
func (p *process) waitOutput(t *testing.T, out *logWatch, want string, n int) {
	t.Helper()
	out.waitFor(t, fmt.Sprintf("%d × %q from %s (stdout:\n%s\nstderr:\n%s)", n, want, p.cmd.Args[1:], p.stdout, p.stderr),
		func(s string) bool { return strings.Count(s, want) >= n })
}

// The client commands against a served binary: what each prints, and the
// exit code and advice for each kind of failure.
func TestClientCommands(t *testing.T) {
	s := serve(t, t.TempDir())
	s.deliver(t, failedJSON("acct-1", "user-1", "invalid_credentials"), failedJSON("acct-2", "user-1", "invalid_mfa"),
		connectedJSON("acct-3", "user-2"))
	env := []string{"ACCOUNTHEALTH_SERVER=" + s.grpc}
	closed := freePort(t)

	cases := []cliCase{
		{"get", []string{"health", "get", "acct-1"}, exitOK,
			[]string{"account      acct-1", "state        AUTH_FAILED since ", "error        invalid_credentials: Login failed.", "remedy       RETRY_LOGIN: ", "connected    never", "unconfirmed  a delivery came without the account object"}, nil},
		{"get as json", []string{"health", "get", "-o", "json", "acct-1"}, exitOK, []string{`{"accountId":"acct-1","userId":"user-1","state":"HEALTH_STATE_AUTH_FAILED"`}, nil},
		{"get unknown", []string{"health", "get", "nobody"}, exitNotFound, nil,
			[]string{"account nobody not found: no delivery named it yet — check the id"}},
		{"get without id", []string{"health", "get"}, exitUsage, nil, []string{"missing the ID argument"}},
		{"get with a bad id", []string{"health", "get", "a b"}, exitUsage, nil, []string{"the account id: contains spaces"}},
		{"list", []string{"health", "list"}, exitOK,
			[]string{"ACCOUNT  STATE        ERROR/FRESHNESS      SINCE\n", "acct-1   AUTH_FAILED  invalid_credentials  20", "acct-3   HEALTHY      FRESH                20"}, nil},
		{"list filtered", []string{"health", "list", "--state", "auth_failed", "--error-code", "invalid_mfa,mfa_timeout"}, exitOK, []string{"acct-2"}, nil},
		{"list filtered to nothing", []string{"health", "list", "--user", "user-9"}, exitOK, nil, []string{"no account matches these filters"}},
		{"list a page", []string{"health", "list", "--page-size", "2"}, exitOK, []string{"acct-2"}, []string{"more accounts: --page-token "}},
		{"list all pages as json", []string{"health", "list", "--all", "--page-size", "1", "-o", "json"}, exitOK, []string{`"accountId":"acct-3"`}, nil},
		{"list with a bad page size", []string{"health", "list", "--page-size", "1000"}, exitUsage, nil, []string{"--page-size: must be between 0 and 500"}},
		{"list with a bad state", []string{"health", "list", "--state", "sick"}, exitUsage, nil, []string{`"sick" is not one of CONNECTING, HEALTHY, AUTH_FAILED`}},
		{"summary", []string{"health", "summary"}, exitOK, []string{"AUTH_FAILED   2", "all           3", "invalid_mfa          1"}, nil},
		{"events", []string{"events", "acct-1"}, exitOK, []string{"accounts.failed  APPLIED  new → AUTH_FAILED (invalid_credentials)"}, nil},
		{"dry run", []string{"delete-failed", "acct-1", "--dry-run"}, exitOK, []string{"would delete account acct-1 (user user-1, AUTH_FAILED since "}, nil},
		{"delete without a provider", []string{"delete-failed", "acct-1"}, exitError, nil,
			[]string{"the provider API is not configured", "`accounthealth fake-provider` stands in"}},
		{"delete a healthy account", []string{"delete-failed", "--dry-run", "acct-3"}, exitError, nil, []string{"account acct-3 is HEALTHY; only an account whose login failed"}},
		{"purge without a duration", []string{"purge-failed"}, exitUsage, nil, []string{"older-than: required"}},
		{"purge too recent", []string{"purge-failed", "--older-than", "1s"}, exitUsage, nil, []string{"--older-than: is required and must be at least 1m"}},
		{"purge nothing", []string{"purge-failed", "--older-than", "720h", "--dry-run"}, exitOK, nil, []string{"idle for 720h: nothing to purge"}},
		{"server given as a URL", []string{"health", "summary", "--server", "http://" + s.grpc}, exitUsage, nil,
			[]string{`is a URL; it takes the gRPC address as host:port (serve's --grpc-addr), e.g. ` + s.grpc}},
		{"server is the REST listener", []string{"health", "summary", "--server", s.rest}, exitError, nil,
			[]string{"answered HTTP/1.1, not gRPC: is it the REST listener (serve's --api-addr)"}},
		{"server down", []string{"health", "summary", "--server", closed}, exitError, nil,
			[]string{"cannot reach the server at " + closed, "connection refused", "is `accounthealth serve` running? (--server / ACCOUNTHEALTH_SERVER)"}},
		{"token in plaintext off loopback", []string{"health", "summary", "--server", "10.1.2.3:9090", "--plaintext", "--token", "t"}, exitUsage, nil,
			[]string{"refusing to send a token in plaintext to 10.1.2.3:9090"}},
		{"bad output", []string{"health", "summary", "-o", "yaml"}, exitUsage, nil, []string{`-o: "yaml" is not table or json`, "Run 'accounthealth health summary --help'"}},
		{"mistyped flag", []string{"health", "list", "--stat", "X"}, exitUsage, nil,
			[]string{"unknown flag --stat; did you mean --state?\nRun 'accounthealth health list --help' for usage."}},
		{"bad duration", []string{"health", "summary", "--timeout", "5"}, exitUsage, nil, []string{`--timeout: "5" is not a duration: write it with its unit, e.g. 5s, 2m`}},
		{"bad boolean", []string{"health", "summary", "--tls=maybe"}, exitUsage, nil, []string{`--tls: "maybe" is not true or false`}},
		{"flag without its value", []string{"health", "list", "--page-size"}, exitUsage, nil, []string{"--page-size needs a value"}},
		{"no subcommand", []string{"health"}, exitUsage, nil, []string{"Subcommands:", "name a subcommand"}},
		{"unknown subcommand", []string{"health", "check"}, exitUsage, nil, []string{`unknown subcommand "check"`}},
	}
	runCases(t, env, cases)
}

// cliCase is one run of the binary and what it must print.
type cliCase struct {
	name           string
	args           []string
	code           int
	stdout, stderr []string // parts of each
}

// runCases runs each case as a subtest with env.
func runCases(t *testing.T, env []string, cases []cliCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runBinary(t, env, c.args...)
			if code != c.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, stdout, stderr)
			}
			for _, want := range c.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout does not contain %q:\n%s", want, stdout)
				}
			}
			for _, want := range c.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not contain %q:\n%s", want, stderr)
				}
			}
		})
	}
}

// Deliveries whose text is not valid (lone surrogate escapes, invalid
// UTF-8) or holding repeated keys or numbers beyond float64, in data and in
// the account object, are accepted, and every command shows them: with
// U+FFFD where the text was not valid, and the health they call for.
func TestClientCommandsPoisonedDeliveries(t *testing.T) {
	s := serve(t, t.TempDir())
	env := []string{"ACCOUNTHEALTH_SERVER=" + s.grpc}
	w := startBinary(t, "", env, "watch", "-o", "json")
	w.waitOutput(t, w.stderr, "watching "+s.grpc, 1)
	s.deliver(t, connectedJSON("acct-0", "user-1"),
		[]byte(`{"event":"accounts.failed","name":"cli-test","data":{"account":"acct-1","user":"user-1","error_code":"invalid_credentials",`+
			`"error_message":"Caf\udce9 login failed","attempts":1e400,"resource":{"id":"acct-1","employers":["Caf\udce9"],"item":"i","item":"item_9",`+
			`"connection":{"status":"error","error_code":"invalid_credentials","error_message":"Caf\udce9 login failed"}}}}`),
		connectedJSON("acct-2", "user-1"),
		[]byte(`{"event":"accounts.updated","name":"cli-test","data":{"account":"acct-2","user":"user-1","note":"`+"\xff"+`","resource":{"id":"acct-2",`+
			`"employers":["Caf`+"\xe9"+`"],"balance":-1E+999,"updated_at":"2026-11-02T00:00:00Z","connection":{"status":"error","error_code":"auth_required",`+
			`"error_message":"Logged out \ud83d","updated_at":"2026-11-02T00:00:00Z"}}}}`),
		connectedJSON("acct-3", "user-1"))
	w.waitOutput(t, w.stdout, "\n", 2)
	w.stop(t, syscall.SIGINT)
	for _, want := range []string{`"accountId":"acct-1","userId":"user-1","kind":"TRANSITION_KIND_AUTH_FAILED"`, "\"errorMessage\":\"Caf\uFFFD login failed\"",
		`"accountId":"acct-2"`, "\"errorMessage\":\"Logged out \uFFFD\""} {
		if !strings.Contains(w.stdout.String(), want) {
			t.Errorf("watch output does not contain %q:\n%s", want, w.stdout)
		}
	}

	cases := []struct {
		name   string
		args   []string
		stdout []string // parts of it
	}{
		{"get", []string{"health", "get", "acct-1"}, []string{"state       AUTH_FAILED since ", "error       invalid_credentials: Caf\uFFFD login failed"}},
		{"get the other", []string{"health", "get", "acct-2"}, []string{"state       DISCONNECTED since ", "error       auth_required: Logged out \uFFFD"}},
		{"get as json", []string{"health", "get", "-o", "json", "acct-1"}, []string{"\"employers\":[\"Caf\uFFFD\"]", `"item":"item_9"`}},
		{"get the other as json", []string{"health", "get", "-o", "json", "acct-2"}, []string{`"balance":"-1E+999"`, "\"employers\":[\"Caf\uFFFD\"]"}},
		{"list", []string{"health", "list"}, []string{"acct-0", "acct-1   AUTH_FAILED   invalid_credentials", "acct-2   DISCONNECTED  auth_required", "acct-3"}},
		{"list as json", []string{"health", "list", "-o", "json"}, []string{"\"errorMessage\":\"Caf\uFFFD login failed\"", "\"errorMessage\":\"Logged out \uFFFD\""}},
		{"events", []string{"events", "acct-1"}, []string{"accounts.failed  APPLIED  new → AUTH_FAILED (invalid_credentials)"}},
		{"events as json", []string{"events", "-o", "json", "acct-1"}, []string{`"attempts":"1e400"`, "\"error_message\":\"Caf\uFFFD login failed\""}},
		{"events of the other as json", []string{"events", "-o", "json", "acct-2"}, []string{"\"note\":\"\uFFFD\"", `"balance":"-1E+999"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runBinary(t, env, c.args...)
			if code != exitOK {
				t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			for _, want := range c.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout does not contain %q:\n%s", want, stdout)
				}
			}
		})
	}
}

// Against a server that wants a token, the commands say to set one, and
// work with it.
func TestClientToken(t *testing.T) {
	token, entry, err := auth.NewToken("cli")
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, t.TempDir(), "ACCOUNTHEALTH_API_TOKENS="+entry)
	env := []string{"ACCOUNTHEALTH_SERVER=" + s.grpc}
	code, _, stderr := runBinary(t, env, "health", "summary")
	if code != exitError || !strings.Contains(stderr, "the server wants a valid token") || !strings.Contains(stderr, "set --token (ACCOUNTHEALTH_TOKEN)") {
		t.Errorf("without a token: exit %d\n%s", code, stderr)
	}
	if code, stdout, stderr := runBinary(t, append(env, "ACCOUNTHEALTH_TOKEN="+token), "health", "summary"); code != exitOK {
		t.Errorf("with the token: exit %d\n%s%s", code, stdout, stderr)
	}
}

// Every command and subcommand answers --help with its flags and exit 0.
func TestClientHelp(t *testing.T) {
	for _, args := range [][]string{
		{"health", "--help"}, {"health", "get", "--help"}, {"health", "list", "--help"}, {"health", "summary", "--help"},
		{"events", "--help"}, {"watch", "--help"}, {"delete-failed", "--help"}, {"purge-failed", "--help"},
		{"webhooks", "--help"}, {"webhooks", "list", "--help"}, {"webhooks", "create", "--help"}, {"webhooks", "delete", "--help"},
	} {
		code, stdout, stderr := runBinary(t, nil, args...)
		if code != exitOK || !strings.Contains(stdout+stderr, "Usage: accounthealth "+args[0]) {
			t.Errorf("%s: exit code %d\n%s%s", args, code, stdout, stderr)
		}
		if len(args) == 3 && args[0] != "webhooks" && !strings.Contains(stderr, "[ACCOUNTHEALTH_SERVER]") {
			t.Errorf("%s: the help does not list --server\n%s", args, stderr)
		}
	}
}

// A watch prints each event once; stopped and started again with its
// resume file, it prints exactly the events it missed.
func TestWatchCommand(t *testing.T) {
	s := serve(t, t.TempDir())
	dir := t.TempDir()
	resume := filepath.Join(dir, "watch.cursor")
	env := []string{"ACCOUNTHEALTH_SERVER=" + s.grpc, "ACCOUNTHEALTH_RESUME_FILE=" + resume}
	watch := func() *process {
		w := startBinary(t, dir, env, "watch", "-o", "json", "--include-recoveries")
		w.waitOutput(t, w.stderr, "watching "+s.grpc, 1)
		return w
	}
	accounts := func(p *process) []string {
		var ids []string
		for line := range strings.Lines(p.stdout.String()) {
			var ev struct{ AccountID, Kind, Cursor string }
			if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Cursor == "" {
				t.Fatalf("line %q: %v", line, err)
			}
			ids = append(ids, ev.AccountID+" "+strings.TrimPrefix(ev.Kind, "TRANSITION_KIND_"))
		}
		return ids
	}

	first := watch()
	s.deliver(t, failedJSON("acct-1", "user-1", "invalid_credentials"), failedJSON("acct-2", "user-1", "invalid_mfa"))
	first.waitOutput(t, first.stdout, "\n", 2)
	if code := first.stop(t, syscall.SIGINT); code != exitOK {
		t.Errorf("watch exited %d on Ctrl-C\n%s", code, first.stderr)
	}
	if b, err := os.ReadFile(resume); err != nil || len(bytes.TrimSpace(b)) == 0 {
		t.Fatalf("resume file: %q %v", b, err)
	}

	s.deliver(t, connectedJSON("acct-1", "user-1")) // while no watch runs
	second := watch()
	if !strings.Contains(second.stderr.String(), "resuming after the cursor in "+resume) {
		t.Errorf("the second watch does not say it resumes:\n%s", second.stderr)
	}
	s.deliver(t, failedJSON("acct-3", "user-2", "mfa_timeout"))
	second.waitOutput(t, second.stdout, "\n", 2)
	second.stop(t, syscall.SIGINT)

	got := strings.Join(append(accounts(first), accounts(second)...), ", ")
	if want := "acct-1 AUTH_FAILED, acct-2 AUTH_FAILED, acct-1 RECOVERED, acct-3 AUTH_FAILED"; got != want {
		t.Errorf("events %s, want %s", got, want)
	}

	// A restart of the server: watch says what happens and comes back
	// by itself, within seconds.
	third := watch()
	s.stop(t)
	third.waitOutput(t, third.stderr, "the server at "+s.grpc+" is shutting down; reconnecting in ", 1)
	s = serveOn(t, s.webhook, s.grpc, s.rest, s.dataDir)
	third.waitOutput(t, third.stderr, "reconnected; resuming right after the last event printed", 1)
	third.stop(t, syscall.SIGINT)
	if strings.Contains(third.stderr.String(), "try again") {
		t.Errorf("watch tells the user to try again while it does so itself:\n%s", third.stderr)
	}

	if err := os.WriteFile(resume, []byte("not-a-cursor\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runBinary(t, env, "watch")
	if code != exitError || !strings.Contains(stderr, "is not one this server issued") || !strings.Contains(stderr, "delete the file") {
		t.Errorf("a bad resume file: exit %d\n%s", code, stderr)
	}
}

// stubAPI answers with fixed results, for what a real server cannot easily
// be made to answer here.
type stubAPI struct {
	ahv1.UnimplementedAccountHealthServiceServer
}

func (stubAPI) GetHealthSummary(context.Context, *ahv1.GetHealthSummaryRequest) (*ahv1.GetHealthSummaryResponse, error) {
	return &ahv1.GetHealthSummaryResponse{Total: 7}, nil
}

// PurgeFailedAccounts streams a purge's results: one deleted, one skipped,
// one failed.
func (stubAPI) PurgeFailedAccounts(_ *ahv1.PurgeFailedAccountsRequest, out ahv1.AccountHealthService_PurgeFailedAccountsServer) error {
	results := []*ahv1.PurgeResult{
		{AccountId: "acct-1", UserId: "user-1", Outcome: ahv1.DeletionOutcome_DELETION_OUTCOME_DELETED},
		{AccountId: "acct-2", UserId: "user-1", Outcome: ahv1.DeletionOutcome_DELETION_OUTCOME_SKIPPED, Message: "account acct-2 is HEALTHY"},
		{AccountId: "acct-3", UserId: "user-2", Outcome: ahv1.DeletionOutcome_DELETION_OUTCOME_FAILED, Message: "the provider could not be reached"},
	}
	for i, r := range results {
		if err := out.Send(&ahv1.PurgeFailedAccountsResponse{Result: r, Processed: int32(i + 1), Total: int32(len(results))}); err != nil {
			return err
		}
	}
	return nil
}

// serveStub serves stubAPI on a loopback port and returns its address.
func serveStub(t *testing.T, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	ahv1.RegisterAccountHealthServiceServer(srv, stubAPI{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// A purge prints a line per account, progress and a summary, and fails
// when an account could not be deleted.
func TestPurgeOutput(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"purge-failed", "--server", serveStub(t), "--older-than", "720h"}, &stdout, &stderr)
	if code != exitError {
		t.Errorf("exit code %d, want %d", code, exitError)
	}
	row := func(cells ...string) string {
		return fmt.Sprintf("%-12s  %-36s  %-19s  %s\n", cells[0], cells[1], cells[2], cells[3])
	}
	for _, want := range []string{row("OUTCOME", "ACCOUNT", "LAST EVENT", "MESSAGE") + row("DELETED", "acct-1", "-", "-"),
		row("SKIPPED", "acct-2", "-", "account acct-2 is HEALTHY"), "FAILED        acct-3"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout does not contain %q:\n%s", want, stdout.String())
		}
	}
	for _, want := range []string{"progress: 1 of 3 accounts\n", "progress: 3 of 3 accounts\n",
		"purged 3 accounts: 1 deleted, 0 already gone, 1 skipped (changed since listed), 1 failed",
		"1 of 3 accounts could not be deleted (their lines above say why); run the same command again to retry them"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not contain %q:\n%s", want, stderr.String())
		}
	}
}

// The TLS flags reach a server that uses TLS, and a mismatch says which
// flag to change.
func TestClientTLS(t *testing.T) {
	borrowed := httptest.NewTLSServer(http.NotFoundHandler()) // for its certificate for 127.0.0.1
	borrowed.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: borrowed.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := serveStub(t, grpc.Creds(credentials.NewServerTLSFromCert(&borrowed.TLS.Certificates[0])))
	cases := []struct {
		name   string
		flags  []string
		code   int
		output string
	}{
		{"trusted CA", []string{"--tls-ca", ca}, exitOK, "all    7\n"},
		// The cause after "server preface" is EOF or a reset, as the TLS
		// server happens to close; the advice is what matters.
		{"plaintext", nil, exitError, "— if it uses TLS (serve --tls-cert), add --tls or --tls-ca"},
		{"system roots", []string{"--tls"}, exitError, "no TLS connection with the server at " + addr + ": authentication handshake failed: tls: failed to verify certificate"},
		{"no such CA file", []string{"--tls-ca", ca + ".missing"}, exitUsage, "tls-ca: open "},
		{"both", []string{"--tls", "--plaintext"}, exitUsage, "plaintext: cannot be combined with --tls"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"health", "summary", "--server", addr}, c.flags...)
			if code := run(context.Background(), args, &stdout, &stderr); code != c.code || !strings.Contains(stdout.String()+stderr.String(), c.output) {
				t.Errorf("exit %d, want %d with %q\n%s%s", code, c.code, c.output, stdout.String(), stderr.String())
			}
		})
	}
}

// The webhooks subcommands manage subscriptions at the provider, here the
// fake, with the same flags and environment as serve.
func TestWebhooksCommands(t *testing.T) {
	fake := providerfake.New(providerfake.Options{})
	t.Cleanup(fake.Close)
	api := httptest.NewServer(fake.Handler())
	t.Cleanup(api.Close)
	env := []string{"ACCOUNTHEALTH_ARGYLE_API_URL=" + api.URL + "/v2", "ACCOUNTHEALTH_ARGYLE_API_KEY_ID=" + providerfake.DefaultKeyID,
		"ACCOUNTHEALTH_ARGYLE_API_KEY_SECRET=" + providerfake.DefaultKeySecret, "ACCOUNTHEALTH_WEBHOOK_SECRET=old," + fixtureSecret}
	const url = "https://hooks.example.com/v1/webhooks/argyle"

	code, stdout, stderr := runBinary(t, env, "webhooks", "create", "--url", url)
	if code != exitOK || !strings.Contains(stdout, "(accounthealth): accounts.added, accounts.connected, accounts.failed, accounts.updated, accounts.removed to "+url) {
		t.Fatalf("create: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runBinary(t, env, "webhooks", "list", "-o", "json")
	var hook struct {
		ID     string
		URL    string
		Events []string
		Config struct {
			IncludeResource bool `json:"include_resource"`
		}
	}
	if err := json.Unmarshal([]byte(stdout), &hook); code != exitOK || err != nil || hook.URL != url || len(hook.Events) != 5 || !hook.Config.IncludeResource {
		t.Fatalf("list: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	if code, stdout, _ := runBinary(t, env, "webhooks", "list"); code != exitOK || !strings.Contains(stdout, "subscription    "+hook.ID+"\nname            accounthealth\nurl             "+url+"\nevents          accounts.added, ") {
		t.Errorf("list as a table: exit %d\n%s", code, stdout)
	}
	if code, stdout, stderr := runBinary(t, env, "webhooks", "delete", hook.ID); code != exitOK || stdout != "deleted webhook "+hook.ID+"\n" {
		t.Errorf("delete: exit %d\n%s%s", code, stdout, stderr)
	}

	cases := []struct {
		name   string
		env    []string
		args   []string
		code   int
		stderr string
	}{
		{"delete again", env, []string{"delete", hook.ID}, exitError, "webhook " + hook.ID + " not found at the provider — `accounthealth webhooks list` shows the ids"},
		{"create without url or secret", env[:3], []string{"create"}, exitUsage, "url: required"},
		{"wrong key", append(env, "ACCOUNTHEALTH_ARGYLE_API_KEY_SECRET=wrong"), []string{"list"}, exitError, "401 Unauthorized"},
		{"no key", nil, []string{"list"}, exitUsage, "argyle-api-key-id: required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runBinary(t, c.env, append([]string{"webhooks"}, c.args...)...)
			if code != c.code || !strings.Contains(stderr, c.stderr) {
				t.Errorf("exit %d, want %d; stderr should contain %q\n%s%s", code, c.code, c.stderr, stdout, stderr)
			}
		})
	}
}
