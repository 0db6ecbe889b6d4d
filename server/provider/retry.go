package provider

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retryPolicy says which failed attempts a call may repeat without risk of
// doing its work twice.
type retryPolicy int

const (
	// idempotent calls (GET, DELETE) are repeated on network errors,
	// timeouts, 429 and 5xx. Repeating a DELETE whose answer was lost
	// yields 404, which callers treat as done.
	idempotent retryPolicy = iota
	// creating calls (POST) are repeated only when the provider surely did
	// not act: on 429, and when the connection could not even be opened.
	// A timeout or a 5xx may come after the provider created the webhook
	// or token, or re-sent the invite, so those end the call.
	creating
)

func (p retryPolicy) retryable(o outcome) bool {
	switch {
	case o.err != nil:
		return p == idempotent || notSent(o.err)
	case o.status == http.StatusTooManyRequests:
		return true
	case o.status >= 500:
		return p == idempotent
	}
	return false
}

// notSent reports whether err happened while connecting (DNS, refused,
// unreachable, dial timeout): the request never left this process.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// backoff is the wait before retry number n (from 1): "full jitter", a
// uniform draw in [0, min(max, base·2^(n-1))], which spreads out clients
// that failed together.
func backoff(base, limit time.Duration, n int) time.Duration {
	d := limit
	if shift := n - 1; shift < 63 && base <= limit>>shift {
		d = base << shift
	}
	return rand.N(d + 1)
}

// maxRetryAfter caps what a Retry-After header can ask for; a longer wait
// exceeds any call's budget anyway, and the cap keeps the arithmetic safe.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date.
// ok is false when the header is absent or malformed, in which case the
// normal backoff applies.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}
