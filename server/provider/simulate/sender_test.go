package simulate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/webhook"
)

const secret = "fixture-secret-do-not-use"

// fakeServer answers like the service's webhook route: it verifies the
// signature over the exact bytes, decodes, and records what it took.
type fakeServer struct {
	verifier *webhook.Verifier
	mu       sync.Mutex
	bodies   map[string][][]byte // per account, in arrival order
	seq      int64
}

func newFakeServer(t *testing.T) (*fakeServer, string) {
	t.Helper()
	f := newFake(t)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// newFake is the fakeServer's handler, not yet served.
func newFake(t *testing.T) *fakeServer {
	t.Helper()
	v, err := webhook.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeServer{verifier: v, bodies: map[string][][]byte{}}
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method != http.MethodPost || r.URL.Path != WebhookPath || r.Header.Get("Content-Type") != "application/json":
		w.WriteHeader(http.StatusNotFound)
		return
	case f.verifier.Verify(body, r.Header.Get(webhook.SignatureHeader)) != nil:
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"code":16,"message":"missing signature: the X-Argyle-Signature header is empty or absent"}`)
		return
	}
	env, err := webhook.Decode(body, time.Now())
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"code":3,"message":%q}`, err.Error())
		return
	}
	f.mu.Lock()
	f.seq++
	seq := f.seq
	f.bodies[env.Delivery.AccountID] = append(f.bodies[env.Delivery.AccountID], body)
	f.mu.Unlock()
	fmt.Fprintf(w, `{"event":%q,"accountId":%q,"outcome":"DELIVERY_OUTCOME_APPLIED","sequence":"%d"}`, env.Event, env.Delivery.AccountID, seq)
}

func newSender(t *testing.T, cfg Config) *Sender {
	t.Helper()
	s, err := NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Every delivery arrives signed so the server's verifier accepts it, and
// each account's deliveries arrive in the order sent.
func TestSendSignedInOrder(t *testing.T) {
	f, url := newFakeServer(t)
	ds := plays(t, 3)
	var results []Result
	s := newSender(t, Config{URL: url + "/", Secret: secret, Concurrency: 4, OnResult: func(r Result) { results = append(results, r) }})
	st := s.Send(t.Context(), ds)
	if st.Sent != len(ds) || st.OK != len(ds) || st.Outcomes["APPLIED"] != len(ds) || len(results) != len(ds) {
		t.Fatalf("stats %+v for %d deliveries", st, len(ds))
	}
	for _, r := range results {
		if r.Sequence == 0 || r.Attempts != 1 || r.Error != "" {
			t.Errorf("result %+v", r)
		}
	}
	want := map[string][][]byte{}
	for _, d := range ds {
		want[d.Account] = append(want[d.Account], d.Body)
	}
	for account, bodies := range want {
		got := f.bodies[account]
		if len(got) != len(bodies) {
			t.Fatalf("account %s: %d deliveries arrived, want %d", account, len(got), len(bodies))
		}
		for i := range bodies {
			if !bytes.Equal(got[i], bodies[i]) {
				t.Errorf("account %s: delivery %d arrived out of order", account, i)
			}
		}
	}
}

func TestSendUnsigned(t *testing.T) {
	_, url := newFakeServer(t)
	var got Result
	s := newSender(t, Config{URL: url, OnResult: func(r Result) { got = r }})
	st := s.Send(t.Context(), plays(t, 1)[:1])
	if st.Refused != 1 || got.Status != http.StatusUnauthorized || got.Attempts != 1 ||
		got.Error != "Unauthenticated: missing signature: the X-Argyle-Signature header is empty or absent" {
		t.Errorf("stats %+v, result %+v", st, got)
	}
}

// The Sender retries once, like the provider, when the server asks for it
// (429, 5xx) or does not answer, and never when it refuses the delivery.
func TestSendStatusHandling(t *testing.T) {
	cases := []struct {
		name     string
		answers  []int // per attempt; the last repeats
		status   int
		attempts int
		count    func(Stats) int
		errText  string
	}{
		{"accepted", []int{200}, 200, 1, func(s Stats) int { return s.OK }, ""},
		{"bad signature", []int{401}, 401, 1, func(s Stats) int { return s.Refused }, "Unauthenticated: no"},
		{"malformed", []int{400}, 400, 1, func(s Stats) int { return s.Refused }, "InvalidArgument: no"},
		{"too large", []int{413}, 413, 1, func(s Stats) int { return s.Refused }, "ResourceExhausted: no"},
		{"store down, then up", []int{503, 200}, 200, 2, func(s Stats) int { return s.OK }, ""},
		{"rate limited, then taken", []int{429, 200}, 200, 2, func(s Stats) int { return s.OK }, ""},
		{"store down twice", []int{503}, 503, 2, func(s Stats) int { return s.Failed }, "Unavailable: no"},
		{"not our JSON", []int{502}, 502, 2, func(s Stats) int { return s.Failed }, "Bad Gateway: <html>"},
	}
	// The service's error bodies are google.rpc.Status JSON: a numeric gRPC code.
	codeOf := map[int]int{401: 16, 400: 3, 413: 8, 429: 8, 503: 14}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				status := c.answers[min(int(calls.Add(1)), len(c.answers))-1]
				w.WriteHeader(status)
				switch {
				case status == 200:
					fmt.Fprint(w, `{"event":"accounts.added","accountId":"a","outcome":"DELIVERY_OUTCOME_APPLIED","sequence":"7"}`)
				case codeOf[status] != 0:
					json.NewEncoder(w).Encode(map[string]any{"code": codeOf[status], "message": "no"})
				default:
					fmt.Fprint(w, "<html>")
				}
			}))
			defer srv.Close()
			var got Result
			s := newSender(t, Config{URL: srv.URL, Secret: secret, RetryDelay: time.Millisecond, OnResult: func(r Result) { got = r }})
			st := s.Send(t.Context(), plays(t, 1)[:1])
			if got.Status != c.status || got.Attempts != c.attempts || c.count(st) != 1 || !strings.HasPrefix(got.Error, c.errText) {
				t.Errorf("result %+v, stats %+v", got, st)
			}
			if (st.Retried == 1) != (c.attempts == 2) {
				t.Errorf("retried %d", st.Retried)
			}
			if c.status == 200 && (got.Outcome != "APPLIED" || got.Sequence != 7) {
				t.Errorf("answer read as %q #%d", got.Outcome, got.Sequence)
			}
		})
	}
}

func TestSendNoAnswer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens there any more
	var got Result
	s := newSender(t, Config{URL: srv.URL, Secret: secret, RetryDelay: time.Millisecond, OnResult: func(r Result) { got = r }})
	st := s.Send(t.Context(), plays(t, 1)[:1])
	if st.Failed != 1 || got.Status != 0 || got.Attempts != 2 || !strings.Contains(got.Error, "connect") {
		t.Errorf("result %+v, stats %+v", got, st)
	}
}

func TestNewSenderChecksConfig(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "127.0.0.1:8080"},
		{URL: "ftp://host"},
		{URL: "http://host", Duplicates: 1.5},
		{URL: "http://host", Reorder: -0.1},
		{URL: "http://host", Rate: -1},
		{URL: "http://host", Timeout: -time.Second},
	} {
		if _, err := NewSender(cfg); err == nil {
			t.Errorf("NewSender(%+v) accepted it", cfg)
		}
	}
	for base, want := range map[string]string{
		"http://h:1":                          "http://h:1" + WebhookPath,
		"http://h:1/":                         "http://h:1" + WebhookPath,
		"https://h/v1/webhooks/argyle":        "https://h" + WebhookPath,
		"http://h/prefix/v1/webhooks/argyle/": "http://h/prefix" + WebhookPath,
	} {
		if got, err := webhookURL(base); err != nil || got != want {
			t.Errorf("webhookURL(%q) = %q, %v; want %q", base, got, err, want)
		}
	}
}
