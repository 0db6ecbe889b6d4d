package simulate

import (
	"google.golang.org/grpc/codes"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/webhook"
)

// WebhookPath is where the server takes deliveries (service.WebhookPath;
// not imported, so that this client does not pull in the whole server).
const WebhookPath = "/v1/webhooks/argyle"

// Defaults of Config.
const (
	// DefaultTimeout is the provider's per-delivery timeout.
	DefaultTimeout = 10 * time.Second
	// DefaultRetryDelay is much shorter than the provider's ~30 s so that
	// runs stay short; the server cannot tell the difference.
	DefaultRetryDelay  = 2 * time.Second
	DefaultConcurrency = 32
)

// maxAnswer bounds how much of a reply is read: the server's are tiny.
const maxAnswer = 64 << 10

// Config configures a Sender.
type Config struct {
	// URL is the server's webhook listener, e.g. http://127.0.0.1:8080;
	// WebhookPath is added unless the URL already ends with it.
	URL string
	// Secret signs every body; empty sends no signature, which only a server
	// allowing unsigned deliveries accepts.
	Secret string
	// Timeout bounds each attempt; zero means DefaultTimeout.
	Timeout time.Duration
	// RetryDelay is the wait before the one retry that follows a 429, a 5xx
	// or no answer at all; zero means DefaultRetryDelay.
	RetryDelay time.Duration
	// Concurrency caps the requests in flight; zero means DefaultConcurrency.
	// Deliveries of one account are always sent one after the other.
	Concurrency int
	// Rate, when positive, paces sending at that many deliveries per second
	// at most; zero sends as fast as the server answers. Load requires it.
	Rate float64
	// Duplicates is the fraction of deliveries sent twice, byte-identical.
	Duplicates float64
	// Reorder is the fraction of adjacent pairs of one account's deliveries
	// sent in swapped order.
	Reorder float64
	// Seed, when not zero, makes the choice of duplicates and swaps
	// reproducible.
	Seed int64
	// OnResult, if set, receives every delivery's result as it completes.
	// Calls come one at a time, from the goroutine that called Send or Load.
	OnResult func(Result)
	// OnProgress, if set, receives the running totals about once a second,
	// from the same goroutine.
	OnProgress func(Stats)
}

// Sender sends deliveries to a server the way the provider does: POST,
// JSON, signed, one retry. Its methods are not safe for concurrent use.
type Sender struct {
	cfg    Config
	url    string
	client *http.Client
	rng    *rand.Rand // duplicates and swaps
}

// NewSender checks cfg and returns a Sender for it.
func NewSender(cfg Config) (*Sender, error) {
	target, err := webhookURL(cfg.URL)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"duplicates", cfg.Duplicates}, {"reorder", cfg.Reorder}} {
		if f.v < 0 || f.v > 1 {
			errs = append(errs, fmt.Errorf("%s: %v is not a fraction between 0 and 1", f.name, f.v))
		}
	}
	if cfg.Rate < 0 || cfg.Rate > maxRate {
		errs = append(errs, fmt.Errorf("rate: %v is not between 0 and %d deliveries per second", cfg.Rate, maxRate))
	}
	if cfg.Timeout < 0 || cfg.RetryDelay < 0 || cfg.Concurrency < 0 {
		errs = append(errs, errors.New("timeout, retry delay and concurrency must not be negative"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// Keep a connection per worker; the default of 2 would open and close
	// connections at every burst and exhaust ports under load.
	transport.MaxIdleConnsPerHost = cfg.Concurrency
	return &Sender{cfg: cfg, url: target, client: &http.Client{Transport: transport}, rng: newRand(cfg.Seed)}, nil
}

// webhookURL turns a base URL into the webhook route's URL.
func webhookURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("URL %q: want http(s)://host[:port]", base)
	}
	u.Path = strings.TrimSuffix(strings.TrimRight(u.Path, "/"), WebhookPath) + WebhookPath
	return u.String(), nil
}

// Result is what became of one delivery.
type Result struct {
	Delivery
	// Status is the HTTP status of the last attempt; 0 when no answer came.
	Status int `json:"status"`
	// Outcome is what the server did with an accepted delivery: APPLIED,
	// STALE, DUPLICATE, ... (its DeliveryOutcome without the prefix).
	Outcome  string `json:"outcome,omitempty"`
	Sequence int64  `json:"sequence,omitempty"`
	// Error is the server's "code: message" for a refusal, or why no answer
	// came.
	Error    string        `json:"error,omitempty"`
	Attempts int           `json:"attempts"`
	Latency  time.Duration `json:"latencyNs"` // of the last attempt
}

// OK reports whether the server accepted the delivery.
func (r Result) OK() bool { return r.Status == http.StatusOK }

// Refused reports whether the server turned the delivery down for good:
// sending it again unchanged cannot help.
func (r Result) Refused() bool {
	return r.Status >= 400 && r.Status < 500 && r.Status != http.StatusTooManyRequests
}

// retryable: the provider retries on these, and so does the Sender.
func retryable(status int) bool {
	return status == 0 || status == http.StatusTooManyRequests || status >= 500
}

// deliver sends d, retrying once after RetryDelay when the answer asks for it.
func (s *Sender) deliver(ctx context.Context, d Delivery) Result {
	res := Result{Delivery: d}
	signature := ""
	if s.cfg.Secret != "" {
		signature = webhook.Sign(s.cfg.Secret, d.Body)
	}
	for {
		res.Attempts++
		s.attempt(ctx, signature, &res)
		if res.Attempts > 1 || !retryable(res.Status) {
			return res
		}
		t := time.NewTimer(s.cfg.RetryDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return res
		case <-t.C:
		}
	}
}

// attempt makes one POST and records its answer in res.
func (s *Sender) attempt(ctx context.Context, signature string, res *Result) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	*res = Result{Delivery: res.Delivery, Attempts: res.Attempts}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(res.Body))
	if err != nil {
		res.Error = err.Error()
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "accounthealth-simulate")
	if signature != "" {
		req.Header.Set(webhook.SignatureHeader, signature)
	}
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		res.Latency = time.Since(start)
		res.Error = err.Error()
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	res.Latency = time.Since(start)
	res.Status = resp.StatusCode
	if err != nil {
		res.Error = "reading the answer: " + err.Error()
		return
	}
	res.Outcome, res.Sequence, res.Error = readAnswer(resp.StatusCode, body)
}

// readAnswer reads the server's JSON reply: {event, accountId, outcome,
// sequence} with 200, {code, message} otherwise.
func readAnswer(status int, body []byte) (outcome string, sequence int64, errText string) {
	var a struct {
		Outcome  string     `json:"outcome"`
		Sequence int64      `json:"sequence,string"` // protojson quotes int64
		Code     codes.Code `json:"code"`            // a gRPC code: the service answers errors as google.rpc.Status
		Message  string     `json:"message"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		if status == http.StatusOK {
			return "", 0, "unreadable answer: " + err.Error()
		}
		return "", 0, strings.TrimSpace(http.StatusText(status) + ": " + string(body))
	}
	if status == http.StatusOK {
		return strings.TrimPrefix(a.Outcome, "DELIVERY_OUTCOME_"), a.Sequence, ""
	}
	return "", 0, a.Code.String() + ": " + a.Message
}
