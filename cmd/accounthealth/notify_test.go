package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/accounthealth/accounthealth/server/outbound"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
)

// hookReceiver records every verified message, in arrival order.
type hookReceiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	got    []hookMessage
	count  map[string]int // deliveries per webhook-id
	more   chan struct{}  // signalled at each message
	// From holdFrom distinct messages on, requests are held until gate
	// closes: they are in flight when the test kills the server.
	holdFrom int
	gate     chan struct{}
	held     map[string]bool
}

type hookMessage struct{ id, account string }

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{t: t, count: map[string]int{}, more: make(chan struct{}, 1), gate: make(chan struct{}), held: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		wh, err := standardwebhooks.NewWebhook(r.secret)
		if err == nil {
			err = wh.Verify(body, req.Header)
		}
		if err != nil {
			t.Errorf("message does not verify: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var msg struct {
			Data struct {
				AccountID string `json:"account_id"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &msg)
		id := req.Header.Get("webhook-id")
		if r.holdFrom > 0 && len(r.count) >= r.holdFrom && !isClosed(r.gate) {
			r.held[id] = true
			r.signal()
			r.mu.Unlock()
			<-r.gate // the server dies meanwhile: this answer never reaches it
			r.mu.Lock()
		}
		r.got = append(r.got, hookMessage{id: id, account: msg.Data.AccountID})
		r.count[id]++
		r.signal()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) signal() {
	select {
	case r.more <- struct{}{}:
	default:
	}
}

// waitDistinct waits until n distinct messages arrived.
func (r *hookReceiver) waitDistinct(t *testing.T, n int) {
	t.Helper()
	r.waitFor(t, fmt.Sprintf("%d distinct messages", n), func() bool { return len(r.count) >= n })
}

// waitFor waits until done, called with r.mu held, holds.
func (r *hookReceiver) waitFor(t *testing.T, what string, done func() bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		r.mu.Lock()
		ok := done()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("no %s within 60 s", what)
		}
	}
}

// addEndpoint creates an endpoint for r through the CLI and keeps its secret.
func (r *hookReceiver) addEndpoint(t *testing.T, s *server) string {
	t.Helper()
	code, out, errOut := runBinary(t, nil, "endpoints", "add", r.srv.URL+"/hook", "--server", s.grpc, "--include-recoveries", "-o", "json")
	if code != 0 {
		t.Fatalf("endpoints add: exit %d: %s", code, errOut)
	}
	var created struct {
		Endpoint struct{ ID string } `json:"endpoint"`
		Secret   string              `json:"secret"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Secret == "" {
		t.Fatalf("endpoints add printed %q: %v", out, err)
	}
	r.mu.Lock()
	r.secret = created.Secret
	r.mu.Unlock()
	return created.Endpoint.ID
}

// checkOrder fails unless each account's messages arrived in log order,
// a repeat (of a message in flight at a crash) only right after itself.
func (r *hookReceiver) checkOrder(t *testing.T) (duplicates int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	last := map[string]string{}
	for _, m := range r.got {
		if m.account == "" {
			continue // a test message
		}
		// Ids are msg_ and a cursor; order by the change's Seq.
		if prev, ok := last[m.account]; ok && seqOfID(t, m.id) < seqOfID(t, prev) {
			t.Errorf("account %s: %s arrived after %s", m.account, m.id, prev)
		}
		last[m.account] = m.id
	}
	for _, n := range r.count {
		duplicates += n - 1
	}
	return duplicates
}

func seqOfID(t *testing.T, id string) int64 {
	seq, err := outbound.SeqOf(id)
	if err != nil {
		t.Fatalf("webhook-id %q: %v", id, err)
	}
	return seq
}

// flipJSON is delivery n of account a: each one a transition.
func flipJSON(a, n int, start time.Time) []byte {
	status, code := "error", "auth_required"
	if n%2 == 1 {
		status, code = "connected", ""
	}
	return updatedJSON(fmt.Sprintf("acct-%02d", a), "user", status, code, start.Add(time.Duration(n)*time.Second))
}

func TestEndpointsDeliverAcrossSIGKILL(t *testing.T) {
	dir := t.TempDir()
	env := []string{"ACCOUNTHEALTH_NOTIFY_TIMEOUT=1s"}
	s := serve(t, dir, env...)
	rec := newHookReceiver(t)
	rec.holdFrom = 20
	id := rec.addEndpoint(t, s)
	if code, out, _ := runBinary(t, nil, "endpoints", "test", id, "--server", s.grpc); code != 0 || !strings.Contains(out, "200") {
		t.Fatalf("endpoints test: exit %d: %s", code, out)
	}
	rec.waitDistinct(t, 1) // the test message
	const accounts, perAccount = 10, 6
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for n := range perAccount {
		for a := range accounts {
			if got := s.post(t, flipJSON(a, n, start)); got != http.StatusOK {
				t.Fatalf("delivery: %d", got)
			}
		}
	}
	rec.waitFor(t, "message held in flight", func() bool { return len(rec.held) > 0 })
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Wait()
	close(rec.gate)
	s = serveOn(t, s.webhook, s.grpc, s.rest, dir, env...)
	rec.waitDistinct(t, 1+accounts*perAccount)
	rec.waitFor(t, "second delivery of each message in flight at the kill", func() bool {
		for id := range rec.held {
			if rec.count[id] < 2 {
				return false
			}
		}
		return true
	})
	dups := rec.checkOrder(t)
	rec.mu.Lock()
	for id, n := range rec.count {
		if n > 1 && !rec.held[id] {
			t.Errorf("%s delivered %d times, though it was not in flight at the kill", id, n)
		}
	}
	held := len(rec.held)
	rec.mu.Unlock()
	if dups != held {
		t.Errorf("%d duplicates, want exactly the %d messages in flight at the kill", dups, held)
	}
	t.Logf("%d messages delivered across a SIGKILL; the %d in flight at the kill came again with their webhook-id", accounts*perAccount, held)
	code, out, errOut := runBinary(t, nil, "endpoints", "messages", id, "--server", s.grpc, "--status", "exhausted")
	if code != 0 || strings.Contains(out, "acct-") {
		t.Errorf("endpoints messages --status exhausted: exit %d: %s%s", code, out, errOut)
	}
}

func TestEndpointsTwoReplicasDeliverOnce(t *testing.T) {
	url := pgtest.URL(t)
	a := serve(t, t.TempDir(), "ACCOUNTHEALTH_DATABASE_URL="+url)
	b := serve(t, t.TempDir(), "ACCOUNTHEALTH_DATABASE_URL="+url)
	rec := newHookReceiver(t)
	rec.addEndpoint(t, a)
	const accounts, perAccount = 10, 10
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for n := range perAccount {
		for i := range accounts {
			s := []*server{a, b}[i%2]
			if got := s.post(t, flipJSON(i, n, start)); got != http.StatusOK {
				t.Fatalf("delivery: %d", got)
			}
		}
	}
	rec.waitDistinct(t, accounts*perAccount)
	if dups := rec.checkOrder(t); dups != 0 {
		t.Errorf("%d messages delivered twice by two replicas in the normal case", dups)
	}
}

// TestEndpointsFilterFlags: the filter flags of endpoints add reach the
// endpoint, endpoints get shows them, and one given to endpoints update
// replaces the whole filter.
func TestEndpointsFilterFlags(t *testing.T) {
	s := serve(t, t.TempDir())
	code, out, errOut := runBinary(t, nil, "endpoints", "add", "http://127.0.0.1:9/hook", "--server", s.grpc,
		"--include-item-events", "--include-freshness-events", "-o", "json")
	if code != 0 {
		t.Fatalf("endpoints add: exit %d: %s", code, errOut)
	}
	var created struct {
		Endpoint struct{ ID string } `json:"endpoint"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("endpoints add printed %q: %v", out, err)
	}
	get := func(want string) {
		t.Helper()
		code, out, errOut := runBinary(t, nil, "endpoints", "get", created.Endpoint.ID, "--server", s.grpc)
		// The detail wraps long values: compare the words.
		if code != 0 || !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Fatalf("endpoints get: exit %d, %s%s; want %q", code, out, errOut, want)
		}
	}
	get("recoveries false, item events true, freshness events true")
	if code, _, errOut := runBinary(t, nil, "endpoints", "update", created.Endpoint.ID, "--server", s.grpc, "--include-recoveries"); code != 0 {
		t.Fatalf("endpoints update: exit %d: %s", code, errOut)
	}
	get("recoveries true, item events false, freshness events false")
}
