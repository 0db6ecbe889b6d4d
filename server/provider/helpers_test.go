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

// scripted serves answers in order, the last one repeating, and records
// every request.
func scripted(t *testing.T, answers ...answer) (*httptest.Server, *record) {
	t.Helper()
	rec := &record{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	}))
	t.Cleanup(srv.Close)
	return srv, rec
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
