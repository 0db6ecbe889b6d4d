// Package provider is the client of the payroll provider's (Argyle's) v2
// REST API: the account lookups and listings, deletions, webhook
// subscriptions, user tokens and invites the service needs. Calls are
// rate-limited client-side, retried where that is safe (see retryPolicy),
// bounded in time, and end with an *APIError that says what the provider
// answered. Nothing here logs, and no error or printed value contains the
// key secret, a user token or an invite URL.
package provider

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

const userAgent = "accounthealth/1 (+https://github.com/accounthealth/accounthealth)"

// Response size caps: a page of 200 accounts is well under 1 MB; an error
// body is only read for its message.
const (
	maxBodyBytes  = 16 << 20
	maxErrorBytes = 64 << 10
)

// Client calls the provider's API. It is safe for concurrent use; all calls
// share its rate limit.
type Client struct {
	cfg     Config
	retries int
	limiter *rate.Limiter
}

// New returns a Client for cfg, or the problems with cfg.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	return &Client{
		cfg:     cfg,
		retries: max(cfg.MaxRetries, 0),
		// A burst of 1 spaces requests evenly, so no one-second window
		// ever holds more than RequestsPerSecond+1 of them.
		limiter: rate.NewLimiter(rate.Limit(cfg.RequestsPerSecond), 1),
	}, nil
}

// request is one API operation, before any attempt.
type request struct {
	method string
	// path is escaped and relative to the base URL.
	path   string
	query  url.Values
	body   any // JSON-encoded when not nil
	policy retryPolicy
}

// outcome is what one attempt got: an answer, or err when none came.
type outcome struct {
	status        int
	body          []byte
	retryAfter    time.Duration
	hasRetryAfter bool
	err           error
}

// do runs rq until it succeeds, fails for good, or runs out of retries or
// time, and decodes a 2xx body into out (unless out is nil).
func (c *Client) do(ctx context.Context, rq request, out any) (err error) {
	if observe := c.cfg.Observer; observe != nil {
		start := time.Now()
		defer func() { observe(rq.method, outcomeOf(err), time.Since(start)) }()
	}
	req, err := c.newRequest(rq)
	if err != nil {
		return fmt.Errorf("argyle %s %s: %w", rq.method, rq.path, err)
	}
	op, cancel := context.WithTimeout(ctx, c.cfg.MaxElapsed)
	defer cancel()

	var last *APIError
	for n := 1; ; n++ {
		if err := c.limiter.Wait(op); err != nil {
			// Wait fails at once when the slot comes after op's deadline.
			return end(ctx, last, rq.fail(n-1, fmt.Errorf("client-side rate limit (argyle-api-rps): %w", err)))
		}
		o := c.attempt(ctx, op, req)
		if o.err == nil && o.status/100 == 2 {
			if out == nil {
				return nil
			}
			if err := json.Unmarshal(o.body, out); err != nil {
				return fmt.Errorf("argyle %s %s: decoding the %d answer: %w", rq.method, rq.path, o.status, err)
			}
			return nil
		}
		if o.err != nil && op.Err() != nil {
			return end(ctx, last, rq.fail(n, o.err))
		}
		last = c.answer(rq, o, n)
		if !rq.policy.retryable(o) || n > c.retries {
			return last
		}
		wait := backoff(c.cfg.BackoffBase, c.cfg.BackoffMax, n)
		if o.hasRetryAfter {
			wait = o.retryAfter
		}
		if deadline, _ := op.Deadline(); time.Until(deadline) < wait {
			return last
		}
		if !sleep(op, wait) {
			return end(ctx, last, rq.fail(n, op.Err()))
		}
	}
}

// end is how a call ends when the caller's context or the time budget ran
// out midway: the caller's context error first; else the last answer, which
// says more than an attempt cut short (cut) does.
func end(ctx context.Context, last, cut *APIError) error {
	if err := ctx.Err(); err != nil {
		cut.Err = err
		return cut
	}
	if last != nil {
		last.Attempts = cut.Attempts
		return last
	}
	return cut
}

func (rq request) fail(attempts int, err error) *APIError {
	return &APIError{Method: rq.method, Path: rq.path, Attempts: attempts, Err: err}
}

// answer turns a failed attempt into the error the call may end with.
func (c *Client) answer(rq request, o outcome, attempts int) *APIError {
	e := rq.fail(attempts, o.err)
	if o.err == nil {
		e.Status = o.status
		e.Code, e.Message = parseErrorBody([]byte(c.redact(string(o.body))))
		e.RetryAfter = o.retryAfter
	}
	return e
}

// redact removes the key secret from an error body, in case it echoes the
// request's credentials; before parsing, so that no cut leaves a part.
func (c *Client) redact(s string) string {
	basic := base64.StdEncoding.EncodeToString([]byte(c.cfg.KeyID + ":" + c.cfg.KeySecret))
	return strings.NewReplacer(c.cfg.KeySecret, "[redacted]", basic, "[redacted]").Replace(s)
}

// newRequest builds the request every attempt clones, so that a malformed
// path fails once, before any attempt.
func (c *Client) newRequest(rq request) (*http.Request, error) {
	u := c.cfg.BaseURL + rq.path
	if len(rq.query) > 0 {
		u += "?" + rq.query.Encode()
	}
	var body io.Reader
	if rq.body != nil {
		b, err := json.Marshal(rq.body)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(rq.method, u, body)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(c.cfg.KeyID, c.cfg.KeySecret)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// attempt sends req once, bounded by the per-attempt timeout, and reads
// the answer. ctx is the caller's context, op the call's (ctx plus the
// time budget): they tell apart why an attempt was cut.
func (c *Client) attempt(ctx, op context.Context, req *http.Request) outcome {
	actx, cancel := context.WithTimeout(op, c.cfg.Timeout)
	defer cancel()
	req = req.Clone(actx)
	if req.GetBody != nil {
		req.Body, _ = req.GetBody() // a bytes.Reader's GetBody never fails
	}
	o := outcome{}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err == nil {
		defer resp.Body.Close()
		o.status = resp.StatusCode
		if o.status/100 == 2 {
			o.body, err = readBody(resp.Body, maxBodyBytes)
		} else {
			// Only the message is wanted: a cut body is fine.
			o.body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		}
		if o.status == http.StatusTooManyRequests || o.status == http.StatusServiceUnavailable {
			o.retryAfter, o.hasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
	}
	if err != nil {
		o = outcome{err: c.cause(ctx, op, actx, err)}
	}
	return o
}

// cause names why an attempt got no answer. The context errors of the
// budget and of the per-attempt timeout are replaced, so that Err is a
// context error only when the caller's own context ended.
func (c *Client) cause(ctx, op, actx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case op.Err() != nil:
		return fmt.Errorf("no answer before the call's time budget ran out (argyle-api-max-elapsed %s)", c.cfg.MaxElapsed)
	case actx.Err() != nil:
		return fmt.Errorf("no answer within %s (argyle-api-timeout)", c.cfg.Timeout)
	}
	return err
}

// readBody reads a success body whole; one larger than limit is an error,
// never silently cut.
func readBody(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("answer larger than %d bytes", limit)
	}
	return b, nil
}

// sleep waits d unless ctx ends first, and reports whether it waited.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
