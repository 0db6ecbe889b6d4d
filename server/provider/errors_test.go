package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseErrorBody(t *testing.T) {
	tests := []struct {
		body, code, message string
	}{
		{`{"detail":"Not found."}`, "", "Not found."},
		{`{"code":"invalid_key","message":"Invalid API key"}`, "invalid_key", "Invalid API key"},
		{`{"code":4001,"detail":"Bad"}`, "4001", "Bad"},
		{`{"error":{"code":"rate","message":"Slow down"}}`, "rate", "Slow down"},
		{`{"error":"boom"}`, "", "boom"},
		{`{"limit":["Ensure this value is less than or equal to 200."],"cursor":["Invalid."]}`, "", "cursor: Invalid.; limit: Ensure this value is less than or equal to 200."},
		{`{"detail":null}`, "", ""},
		{"upstream connect error\n", "", "upstream connect error"},
		{"<html><body>502 Bad Gateway</body></html>", "", ""},
		{"", "", ""},
		{`{"detail":"` + strings.Repeat("é", 400) + `"}`, "", strings.Repeat("é", maxMessageLen/2) + "…"},
	}
	for _, tt := range tests {
		code, message := parseErrorBody([]byte(tt.body))
		if code != tt.code || message != tt.message {
			t.Errorf("parseErrorBody(%.40q) = %q, %.60q; want %q, %.60q", tt.body, code, message, tt.code, tt.message)
		}
	}
}

func FuzzParseErrorBody(f *testing.F) {
	for _, s := range []string{`{"detail":"x"}`, `{"error":{"error":{"message":1}}}`, `[1]`, "text"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, message := parseErrorBody(body)
		if len(code) > maxMessageLen+len("…") || len(message) > maxMessageLen+len("…") {
			t.Errorf("unbounded: %d, %d bytes", len(code), len(message))
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"99999999999999", maxRetryAfter, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %t; want %s, %t", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBackoffIsJitteredAndCapped(t *testing.T) {
	base, limit := 200*time.Millisecond, 5*time.Second
	for n, ceiling := range map[int]time.Duration{1: base, 2: 2 * base, 5: 16 * base, 6: limit, 80: limit} {
		var maxSeen time.Duration
		for range 500 {
			d := backoff(base, limit, n)
			if d < 0 || d > ceiling {
				t.Fatalf("backoff(%d) = %s, outside [0, %s]", n, d, ceiling)
			}
			maxSeen = max(maxSeen, d)
		}
		if maxSeen < ceiling/2 {
			t.Errorf("backoff(%d) never above %s in 500 draws: not full jitter over [0, %s]", n, maxSeen, ceiling)
		}
	}
}

func TestAPIErrorIs(t *testing.T) {
	cause := errors.New("connection reset")
	tests := []struct {
		err  *APIError
		want error
	}{
		{&APIError{Status: 404}, ErrNotFound},
		{&APIError{Status: 401}, ErrUnauthorized},
		{&APIError{Status: 403}, ErrUnauthorized},
		{&APIError{Status: 429}, ErrRateLimited},
		{&APIError{Status: 504}, ErrUnavailable},
		{&APIError{Err: cause}, ErrUnavailable},
		{&APIError{Err: context.Canceled}, nil},
		{&APIError{Err: fmt.Errorf("wrapped: %w", context.DeadlineExceeded)}, nil},
		{&APIError{Status: 409}, nil},
	}
	for _, tt := range tests {
		for _, s := range []error{ErrNotFound, ErrUnauthorized, ErrRateLimited, ErrUnavailable} {
			if got := errors.Is(tt.err, s); got != (s == tt.want) {
				t.Errorf("errors.Is(%+v, %v) = %t", tt.err, s, got)
			}
		}
	}
	if err := (&APIError{Method: "GET", Path: "/x", Attempts: 2, Err: cause}); !errors.Is(err, cause) ||
		err.Error() != "argyle GET /x: no answer after 2 attempts: connection reset" {
		t.Errorf("%q does not wrap or name its cause", err)
	}
}
