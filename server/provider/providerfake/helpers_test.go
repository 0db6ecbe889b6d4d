package providerfake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/provider/providerfake"
	"github.com/accounthealth/accounthealth/server/webhook"
)

const (
	keyID         = "fake-id"
	keySecret     = "fake-secret-7Hq"
	webhookSecret = "whsec-test-1"
)

// env is a fake behind a test server, a client of it, and a log of the
// requests that reached the server, faulted ones included.
type env struct {
	fake   *providerfake.Fake
	srv    *httptest.Server
	client *provider.Client
	hits   *hits
}

// start serves a fake made with opts (credentials filled in) and returns
// it with a fast-retrying client.
func start(t *testing.T, opts providerfake.Options, edit ...func(*provider.Config)) *env {
	t.Helper()
	opts.KeyID, opts.KeySecret = keyID, keySecret
	f := providerfake.New(opts)
	h := &hits{}
	srv := httptest.NewServer(h.wrap(f.Handler()))
	t.Cleanup(srv.Close)
	t.Cleanup(f.Close) // first: releases held requests so srv.Close returns
	return &env{fake: f, srv: srv, client: newClient(t, srv.URL, edit...), hits: h}
}

func newClient(t *testing.T, url string, edit ...func(*provider.Config)) *provider.Client {
	t.Helper()
	cfg := provider.Config{
		BaseURL: url + "/v2", KeyID: keyID, KeySecret: keySecret,
		Timeout: 2 * time.Second, MaxElapsed: 5 * time.Second, MaxRetries: 4, RequestsPerSecond: 1000,
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond,
	}
	for _, e := range edit {
		e(&cfg)
	}
	c, err := provider.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) add(t *testing.T, s providerfake.AccountSeed) providerfake.AccountSeed {
	t.Helper()
	s, err := e.fake.AddAccount(s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// call sends a raw request with the given credentials (none when id is
// empty) and returns the status and body.
func (e *env) call(t *testing.T, method, path, body, id, secret string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if id != "" {
		req.SetBasicAuth(id, secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// authed sends a raw request with the right credentials.
func (e *env) authed(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	return e.call(t, method, path, body, keyID, keySecret)
}

// hits records when each request reached the server.
type hits struct {
	mu sync.Mutex
	at map[string][]time.Time // by "METHOD /path"
}

func (h *hits) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		if h.at == nil {
			h.at = map[string][]time.Time{}
		}
		k := r.Method + " " + r.URL.Path
		h.at[k] = append(h.at[k], time.Now())
		h.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (h *hits) times(key string) []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Time(nil), h.at[key]...)
}

// delivery is a webhook delivery as received.
type delivery struct {
	body      []byte
	signature string
	header    http.Header
	// decoded body
	Event string `json:"event"`
	Name  string `json:"name"`
	Data  struct {
		Account      string          `json:"account"`
		User         string          `json:"user"`
		ErrorCode    string          `json:"error_code"`
		ErrorMessage string          `json:"error_message"`
		Resource     json.RawMessage `json:"resource"`
	} `json:"data"`
}

// receiver collects deliveries, answering statuses in order (the last
// repeating; none: 200).
func receiver(t *testing.T, statuses ...int) (url string, got <-chan delivery) {
	t.Helper()
	ch := make(chan delivery, 100)
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		d := delivery{body: body, signature: r.Header.Get(webhook.SignatureHeader), header: r.Header.Clone()}
		if err := json.Unmarshal(body, &d); err != nil {
			t.Errorf("delivery %s: %v", body, err)
		}
		ch <- d
		mu.Lock()
		n++
		status := http.StatusOK
		if len(statuses) > 0 {
			status = statuses[min(n, len(statuses))-1]
		}
		mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hook", ch
}

// next returns the next delivery, failing the test if none comes soon.
func next(t *testing.T, got <-chan delivery) delivery {
	t.Helper()
	select {
	case d := <-got:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery within 5s")
		return delivery{}
	}
}

// verified returns the next delivery after checking its signature with
// the service's verifier.
func verified(t *testing.T, got <-chan delivery, secret string) delivery {
	t.Helper()
	d := next(t, got)
	v, err := webhook.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(d.body, d.signature); err != nil {
		t.Errorf("%s delivery: %v", d.Event, err)
	}
	if ct := d.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return d
}
