package provider

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const (
	testKeyID  = "key-id-0042"
	testSecret = "key-secret-Zq9xW7"
)

// newClient returns a Client for srvURL with settings that keep tests
// fast: millisecond backoff, a high rate limit. edit adjusts them.
func newClient(t *testing.T, srvURL string, edit ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		BaseURL: srvURL + "/v2", KeyID: testKeyID, KeySecret: testSecret,
		Timeout: 2 * time.Second, MaxElapsed: 5 * time.Second, MaxRetries: 4,
		RequestsPerSecond: 1000, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond,
	}
	for _, e := range edit {
		e(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// answer is one scripted response.
type answer struct {
	status     int
	body       string
	retryAfter string
	// hang holds the request until the client gives up.
	hang bool
}

// seen is a request as the server received it.
type seen struct {
	method, path, query string
	header              http.Header
	body                []byte
	at                  time.Time
}

// record collects the requests a test server received.
type record struct {
	mu   sync.Mutex
	reqs []seen
}

func (r *record) add(s seen) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, s)
	return len(r.reqs)
}

func (r *record) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

func (r *record) get(i int) seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs[i]
}

// scripted serves the script of answers on a loopback port.
func scripted(t *testing.T, answers ...answer) (*httptest.Server, *record) {
	t.Helper()
	h, rec := script(answers...)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, rec
}

// offline is scripted without a network, for tests in a synctest bubble:
// there time is fake and only moves when every goroutine waits, so waits
// and timeouts are exact, and a socket would keep the clock from moving.
// It returns a client of the script; edit adjusts its settings.
func offline(t *testing.T, answers []answer, edit ...func(*Config)) (*Client, *record) {
	t.Helper()
	h, rec := script(answers...)
	transport := func(c *Config) { c.HTTPClient = &http.Client{Transport: inMemory{h}} }
	return newClient(t, "http://provider.test", append([]func(*Config){transport}, edit...)...), rec
}

// inMemory hands each request to a handler in the caller's goroutine.
type inMemory struct{ h http.Handler }

func (m inMemory) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	served := req.Clone(req.Context())
	if served.Body == nil {
		served.Body = http.NoBody
	}
	w := httptest.NewRecorder()
	m.h.ServeHTTP(w, served)
	// As over a connection, an attempt cut short gets no answer.
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return w.Result(), nil
}

// script answers in order, the last one repeating, and records every
// request.
func script(answers ...answer) (http.Handler, *record) {
	rec := &record{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n := rec.add(seen{
			method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery,
			header: r.Header.Clone(), body: body, at: time.Now(),
		})
		a := answers[min(n, len(answers))-1]
		if a.hang {
			<-r.Context().Done()
			return
		}
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}), rec
}

// fixture reads a recorded provider response.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "fixtures", "recorded", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
