package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/internal/eventually"
	"github.com/accounthealth/accounthealth/internal/freeport"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// binary is the accounthealth command built once for these tests, so they
// exercise exactly what a user runs.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "accounthealth-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "accounthealth")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build accounthealth:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const fixtureSecret = "fixture-secret-do-not-use"

// runBinary runs the binary to completion and returns its exit code and output.
func runBinary(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

// cleanEnv is the test's environment without any ACCOUNTHEALTH_ setting
// that could leak in from the developer's shell.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ACCOUNTHEALTH_") {
			out = append(out, kv)
		}
	}
	return out
}

func TestUsageAndExitCodes(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	inUse := held.Addr().String()
	cases := []struct {
		name   string
		env    []string
		args   []string
		code   int
		output string // a part of stdout+stderr
	}{
		{"no command", nil, nil, exitUsage, "Commands:"},
		{"unknown command", nil, []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"help", nil, []string{"--help"}, exitOK, "serve"},
		{"serve help lists env and defaults", nil, []string{"serve", "--help"}, exitOK, "ACCOUNTHEALTH_WEBHOOK_ADDR]"},
		{"serve without a secret", nil, []string{"serve", "--data-dir", t.TempDir()}, exitUsage, "webhook-secret: required"},
		{"bad flag", nil, []string{"serve", "--no-such-flag"}, exitUsage, "no-such-flag"},
		{"bad env value names the variable", []string{"ACCOUNTHEALTH_MAX_BODY_BYTES=lots"}, []string{"serve"}, exitUsage, "ACCOUNTHEALTH_MAX_BODY_BYTES"},
		{"bad address", []string{"ACCOUNTHEALTH_WEBHOOK_SECRET=x"}, []string{"serve", "--grpc-addr", "nowhere"}, exitUsage, "grpc-addr"},
		{"bad NATS URL", []string{"ACCOUNTHEALTH_WEBHOOK_SECRET=x"}, []string{"serve", "--nats-url", "http://127.0.0.1:4222"}, exitUsage, "nats-url: \"http://127.0.0.1:4222\": the scheme must be nats, tls, ws or wss"},
		{"bad NATS subject prefix", []string{"ACCOUNTHEALTH_WEBHOOK_SECRET=x", "ACCOUNTHEALTH_NATS_URL=127.0.0.1:4222"}, []string{"serve", "--nats-subject-prefix", "ah.>"}, exitUsage, "nats-subject-prefix"},
		{"stray comma in secrets", nil, []string{"serve", "--webhook-secret", "a,"}, exitUsage, "secret 2 of 2 is empty"},
		{"address in use", []string{"ACCOUNTHEALTH_WEBHOOK_SECRET=x", "ACCOUNTHEALTH_GRPC_ADDR=127.0.0.1:0", "ACCOUNTHEALTH_API_ADDR=127.0.0.1:0"},
			[]string{"serve", "--data-dir", t.TempDir(), "--webhook-addr", inUse}, exitError,
			"webhook-addr: " + inUse + " is in use (is another accounthealth serve running?): stop what holds it, or give --webhook-addr a free address"},
		{"fake provider's address in use", nil, []string{"fake-provider", "--addr", inUse}, exitError,
			"addr: " + inUse + " is in use (is another fake-provider running?)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runBinary(t, c.env, c.args...)
			if code != c.code {
				t.Errorf("exit code %d, want %d\n%s%s", code, c.code, stdout, stderr)
			}
			if !strings.Contains(stdout+stderr, c.output) {
				t.Errorf("output does not contain %q:\n%s%s", c.output, stdout, stderr)
			}
		})
	}
}

// logWatch collects a process's output, and lets a test wait for a line.
type logWatch struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed, and replaced, at each write: every waiter wakes
}

func newLogWatch() *logWatch { return &logWatch{changed: make(chan struct{})} }

func (w *logWatch) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	close(w.changed)
	w.changed = make(chan struct{})
	return len(b), nil
}

func (w *logWatch) String() string {
	s, _ := w.snapshot()
	return s
}

// snapshot returns the output so far and a channel closed at the next write.
func (w *logWatch) snapshot() (string, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String(), w.changed
}

// waitFor returns the output once cond holds for it; it fails the test
// when a minute passes first, as only a hung process takes that long.
func (w *logWatch) waitFor(t *testing.T, what string, cond func(string) bool) string {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		out, changed := w.snapshot()
		if cond(out) {
			return out
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no %s within a minute:\n%s", what, out)
		}
	}
}

// waitForText waits for s in the output (see waitFor).
func (w *logWatch) waitForText(t *testing.T, s string) string {
	t.Helper()
	return w.waitFor(t, fmt.Sprintf("%q", s), func(out string) bool { return strings.Contains(out, s) })
}

// server is a running `accounthealth serve` process.
type server struct {
	cmd                 *exec.Cmd
	stderr              *logWatch
	webhook, grpc, rest string
	dataDir             string
}

// freePort is an address for a server the test may restart on it.
func freePort(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// serve starts the binary configured through the environment, as a
// container would run it, and waits until it answers.
func serve(t *testing.T, dataDir string, env ...string) *server {
	t.Helper()
	return serveOn(t, freePort(t), freePort(t), freePort(t), dataDir, env...)
}

// serveOn is serve on the given addresses (a restart keeps them).
func serveOn(t *testing.T, webhook, grpc, rest, dataDir string, env ...string) *server {
	t.Helper()
	s := &server{webhook: webhook, grpc: grpc, rest: rest, dataDir: dataDir, stderr: newLogWatch()}
	s.cmd = exec.Command(binary, "serve")
	s.cmd.Env = append(cleanEnv(),
		"ACCOUNTHEALTH_WEBHOOK_ADDR="+s.webhook, "ACCOUNTHEALTH_GRPC_ADDR="+s.grpc, "ACCOUNTHEALTH_API_ADDR="+s.rest,
		"ACCOUNTHEALTH_DATA_DIR="+dataDir, "ACCOUNTHEALTH_WEBHOOK_SECRET=old-secret,"+fixtureSecret)
	s.cmd.Env = append(s.cmd.Env, env...)
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.cmd.Process.Kill() })
	eventually.Until(t, 20*time.Second, "the server comes up", func() (bool, string) {
		res, err := http.Get("http://" + s.webhook + "/healthz")
		if err != nil {
			return false, fmt.Sprintf("%v\n%s", err, s.stderr)
		}
		res.Body.Close()
		return true, ""
	})
	return s
}

// stop sends SIGTERM and expects a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v\n%s", err, s.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not stop within 20s of SIGTERM\n%s", s.stderr)
	}
}

func (s *server) post(t *testing.T, body []byte) int {
	t.Helper()
	code, err := s.tryPost(body)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// tryPost is post for goroutines other than the test's.
func (s *server) tryPost(body []byte) (int, error) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.webhook+"/v1/webhooks/argyle", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(fixtureSecret, body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

func (s *server) grpcState(t *testing.T, accountID string) ahv1.HealthState {
	t.Helper()
	conn, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := ahv1.NewAccountHealthServiceClient(conn).GetAccountHealth(t.Context(), &ahv1.GetAccountHealthRequest{AccountId: accountID})
	if err != nil {
		t.Fatalf("GetAccountHealth(%s): %v", accountID, err)
	}
	return resp.GetAccountHealth().GetState()
}

// restGet returns the status and body of a GET on the REST gateway.
func (s *server) restGet(t *testing.T, path string) (int, string) {
	t.Helper()
	res, err := http.Get("http://" + s.rest + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// restBody is a GET that must succeed.
func (s *server) restBody(t *testing.T, path string) string {
	t.Helper()
	code, body := s.restGet(t, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	return body
}

// The built binary takes signed deliveries over HTTP, serves health over
// gRPC and REST, stops cleanly on SIGTERM and finds everything again after
// a restart.
func TestServeEndToEnd(t *testing.T) {
	const failedAccount = "0190a1e3-2b7e-7d03-a1c4-3e8f5a6b7c22"
	dataDir := t.TempDir()
	s := serve(t, dataDir)
	for _, f := range []string{"01_accounts_added.json", "02_accounts_connected_with_resource.json",
		"03_accounts_failed_invalid_mfa_with_resource.json", "04_accounts_failed_mfa_timeout_no_resource.json"} {
		body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "fixtures", "deliveries", f))
		if err != nil {
			t.Fatal(err)
		}
		if code := s.post(t, body); code != http.StatusOK {
			t.Fatalf("POST %s: %d\n%s", f, code, s.stderr)
		}
	}
	if got := s.grpcState(t, failedAccount); got != ahv1.HealthState_HEALTH_STATE_AUTH_FAILED {
		t.Errorf("gRPC state = %s", got)
	}
	if got := s.restBody(t, "/v1/accounts/"+failedAccount+"/health"); !strings.Contains(got, `"consecutiveFailures":2`) {
		t.Errorf("REST health = %s", got)
	}
	s.stop(t)
	if strings.Contains(s.stderr.String(), fixtureSecret) {
		t.Error("the webhook secret appears in the server's log")
	}

	again := serve(t, dataDir)
	if got := again.grpcState(t, failedAccount); got != ahv1.HealthState_HEALTH_STATE_AUTH_FAILED {
		t.Errorf("after restart: state = %s", got)
	}
	again.stop(t)
}
