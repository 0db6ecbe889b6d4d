package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors, matched with errors.Is against the errors of every
// Client method.
var (
	// ErrNotFound: the provider answered 404. After DeleteAccount it means
	// the account is already gone, which callers may treat as success.
	ErrNotFound = errors.New("argyle: not found")
	// ErrUnauthorized: 401 or 403, a wrong key or a key of the other
	// environment. Retrying does not help.
	ErrUnauthorized = errors.New("argyle: unauthorized")
	// ErrRateLimited: still 429 when the retries or the time budget ran out.
	ErrRateLimited = errors.New("argyle: rate limited")
	// ErrUnavailable: 5xx, timeouts or network errors when the retries or
	// the time budget ran out. The last cause is wrapped.
	ErrUnavailable = errors.New("argyle: unavailable")
	// ErrNotConfigured is for callers that hold no Client because no API
	// key is configured; no Client method returns it.
	ErrNotConfigured = errors.New("the provider API is not configured")
)

// IsTransient reports whether err is the provider failing for a while (an
// outage, or rate limiting past the retries), which callers wait out,
// rather than refusing for good.
func IsTransient(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRateLimited)
}

// Outcomes of a call as Config.Observer hears them: a fixed vocabulary,
// so it is safe as a metric label.
const (
	OutcomeOK           = "ok"
	OutcomeNotFound     = "not_found"
	OutcomeUnauthorized = "unauthorized"
	OutcomeRateLimited  = "rate_limited"
	OutcomeUnavailable  = "unavailable"
	OutcomeCanceled     = "canceled" // the caller's context ended
	OutcomeError        = "error"    // any other refusal (4xx) or a bad answer
)

// outcomeOf names how a call that returned err ended.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrNotFound):
		return OutcomeNotFound
	case errors.Is(err, ErrUnauthorized):
		return OutcomeUnauthorized
	case errors.Is(err, ErrRateLimited):
		return OutcomeRateLimited
	case errors.Is(err, ErrUnavailable):
		return OutcomeUnavailable
	case isContextErr(err):
		return OutcomeCanceled
	}
	return OutcomeError
}

// APIError is what a call ends with when the provider did not answer 2xx:
// the last attempt's answer, or its network error when there was none.
type APIError struct {
	Method string
	// Path is the escaped path relative to the base URL, without the
	// query: /accounts/0190a1e3-0a4f-7c12-8e55-6b2d9f0c1a11.
	Path string
	// Status is the HTTP status; 0 when no answer came.
	Status int
	// Code and Message come from the provider's JSON error body, when it
	// has one.
	Code, Message string
	// RetryAfter is the wait the provider asked for on 429/503, if any.
	RetryAfter time.Duration
	// Attempts counts the requests sent, retries included.
	Attempts int
	// Err is the cause when no answer came: a network error, a timeout,
	// or, when the caller's context ended, context.Canceled or
	// context.DeadlineExceeded.
	Err error
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "argyle %s %s: ", e.Method, e.Path)
	if e.Status == 0 {
		fmt.Fprintf(&b, "no answer after %s: %v", attempts(e.Attempts), e.Err)
		return b.String()
	}
	fmt.Fprintf(&b, "%d %s after %s", e.Status, http.StatusText(e.Status), attempts(e.Attempts))
	switch {
	case e.Code != "" && e.Message != "":
		fmt.Fprintf(&b, ": %s: %s", e.Code, e.Message)
	case e.Code != "" || e.Message != "":
		fmt.Fprintf(&b, ": %s%s", e.Code, e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		b.WriteString(" (check argyle-api-key-id/secret and that the key belongs to this environment: sandbox and production keys differ)")
	}
	return b.String()
}

func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

// Is matches the sentinel errors by status. A call that ended because the
// caller's context did is none of them: the provider was not at fault.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case ErrUnavailable:
		return e.Status >= 500 || (e.Status == 0 && !isContextErr(e.Err))
	}
	return false
}

func (e *APIError) Unwrap() error { return e.Err }

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// maxMessageLen bounds the text kept from an error body: enough for any
// real message, not a whole HTML page from a proxy.
const maxMessageLen = 300

// parseErrorBody extracts a code and message from whatever error body the
// provider (or a proxy in front of it) sent. It never fails: known shapes
// are {"detail": ...}, {"code": ..., "message": ...}, {"error": ...} and
// field errors {"field": ["msg", ...]}; a short plain-text body is kept as
// the message; anything else yields nothing.
func parseErrorBody(body []byte) (code, message string) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		text := strings.TrimSpace(string(body))
		if strings.HasPrefix(text, "<") || !utf8.ValidString(text) {
			return "", ""
		}
		return "", truncate(text)
	}
	code = jsonText(obj["code"])
	for _, key := range []string{"detail", "message", "error_message", "error"} {
		if message = jsonText(obj[key]); message != "" {
			return truncate(code), truncate(message)
		}
	}
	if e, ok := obj["error"]; ok {
		// {"error": {"code": ..., "message": ...}}
		c, m := parseErrorBody(e)
		if code == "" {
			code = c
		}
		return truncate(code), m
	}
	return truncate(code), truncate(fieldErrors(obj))
}

// jsonText renders a JSON string, number or list of strings as text.
func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return strings.Join(list, " ")
	}
	return ""
}

// fieldErrors renders a validation error body, {"limit": ["Ensure ..."]},
// as "limit: Ensure ...", fields in name order.
func fieldErrors(obj map[string]json.RawMessage) string {
	var parts []string
	for _, f := range slices.Sorted(maps.Keys(obj)) {
		if text := jsonText(obj[f]); text != "" {
			parts = append(parts, f+": "+text)
		}
	}
	return strings.Join(parts, "; ")
}

func truncate(s string) string {
	if len(s) <= maxMessageLen {
		return s
	}
	cut := maxMessageLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
