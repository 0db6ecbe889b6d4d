package client_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/internal/freeport"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/sqlite"
	"github.com/accounthealth/accounthealth/server/webhook"
)

const webhookSecret = "client-test-secret"

// server is an accounthealth running in this process on loopback ports
// over a SQLite store in dir. restart stops it and starts it again on the
// same ports and data, as a deploy would.
type server struct {
	cfg  service.Config
	api  string // the REST gateway's address, bound at start
	dir  string
	st   store.Store  // while it runs
	stop func() error // ends Run; nil while stopped
}

// newServer starts a server; configure may change its config (e.g. the
// provider) before it starts.
func newServer(dir string, configure ...func(*service.Config)) (*server, error) {
	cfg := service.DefaultConfig()
	var err error
	if cfg.GRPCAddr, err = freeport.Addr(); err != nil {
		return nil, err
	}
	if cfg.WebhookAddr, err = freeport.Addr(); err != nil {
		return nil, err
	}
	cfg.APIAddr = "127.0.0.1:0"
	cfg.WebhookSecrets = []string{webhookSecret}
	cfg.StreamHeartbeat = 100 * time.Millisecond
	cfg.ShutdownTimeout = 5 * time.Second
	for _, c := range configure {
		c(&cfg)
	}
	s := &server{cfg: cfg, dir: dir}
	return s, s.start()
}

// startServer is newServer for a test, stopped at its end.
func startServer(t *testing.T, configure ...func(*service.Config)) *server {
	t.Helper()
	s, err := newServer(t.TempDir(), configure...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.shutdown(); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
	})
	return s
}

func (s *server) start() error {
	st, err := sqlite.Open(context.Background(), s.dir, store.Options{})
	if err != nil {
		return err
	}
	srv, err := service.New(s.cfg, st, slog.New(slog.DiscardHandler))
	if err != nil {
		st.Close()
		return err
	}
	s.api = srv.Addrs().API
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	s.st = st
	s.stop = func() error { cancel(); return <-done }
	return nil
}

// lastChange is the position of the newest change in the server's log.
func (s *server) lastChange(t *testing.T) int64 {
	t.Helper()
	seq, err := s.st.LastChangeSeq(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// shutdown stops the server if it runs.
func (s *server) shutdown() error {
	if s.stop == nil {
		return nil
	}
	err := s.stop()
	s.stop = nil
	return err
}

// target is the gRPC address clients dial.
func (s *server) target() string { return s.cfg.GRPCAddr }

// deliver posts a signed delivery to the webhook route, as the provider does.
func (s *server) deliver(body []byte) error {
	req, err := http.NewRequest(http.MethodPost, "http://"+s.cfg.WebhookAddr+service.WebhookPath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(webhookSecret, body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("delivery refused: %d %s", res.StatusCode, b)
	}
	return nil
}

// mustDeliver delivers each body or fails the test.
func (s *server) mustDeliver(t *testing.T, bodies ...[]byte) {
	t.Helper()
	for _, b := range bodies {
		if err := s.deliver(b); err != nil {
			t.Fatal(err)
		}
	}
}

// failedLogin is an accounts.failed delivery: a new account's login failed.
func failedLogin(account, user, code string) []byte {
	return fmt.Appendf(nil, `{"event":"accounts.failed","name":"client-test","data":{"account":%q,"user":%q,"error_code":%q,"error_message":"Login failed."}}`,
		account, user, code)
}

// connected is an accounts.connected delivery.
func connected(account, user string) []byte {
	return fmt.Appendf(nil, `{"event":"accounts.connected","name":"client-test","data":{"account":%q,"user":%q}}`, account, user)
}

// scanned is an accounts.updated delivery of a connected account last
// scanned at at, whose object ends with extra (e.g. `,"availability":{...}`).
func scanned(account, user string, at time.Time, extra string) []byte {
	ts := at.UTC().Format(time.RFC3339Nano)
	return fmt.Appendf(nil, `{"event":"accounts.updated","name":"client-test","data":{"account":%q,"user":%q,"resource":{"id":%q,"user":%q,"updated_at":%q,"scanned_at":%q,"connection":{"status":"connected","error_code":null,"error_message":null,"updated_at":%q}%s}}}`,
		account, user, account, user, ts, ts, ts, extra)
}

// exampleTarget is the server the examples call, seeded in TestMain.
var exampleTarget string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

// runTests runs the tests with the examples' server up, so that its
// deferred cleanup runs before os.Exit.
func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "accounthealth-client-examples")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	s, err := newServer(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "example server:", err)
		return 1
	}
	defer s.shutdown()
	for _, b := range [][]byte{
		failedLogin("acct-1", "user-1", "invalid_mfa"),
		connected("acct-2", "user-1"),
		failedLogin("acct-3", "user-2", "invalid_credentials"),
		connected("acct-3", "user-2"),
		failedLogin("acct-4", "user-2", "invalid_credentials"),
	} {
		if err := s.deliver(b); err != nil {
			fmt.Fprintln(os.Stderr, "seeding the example server:", err)
			return 1
		}
	}
	exampleTarget = s.target()
	return m.Run()
}
