package provider

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Tests that measure time run in a synctest bubble against offline: the
// clock there is fake and moves only when every goroutine waits, so the
// waits and timeouts they see are exact, however loaded the machine.

func TestRetryAfterIsHonoured(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter func() string
		wait       time.Duration
	}{
		{"429 seconds", 429, func() string { return "1" }, time.Second},
		// The fake clock starts on a whole second, which an HTTP date holds.
		{"429 HTTP date", 429, func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) }, 2 * time.Second},
		{"503 seconds", 503, func() string { return "1" }, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, rec := offline(t, []answer{{status: tt.status, retryAfter: tt.retryAfter()}, {status: 204}})
				if err := c.DeleteWebhook(t.Context(), "w1"); err != nil {
					t.Fatal(err)
				}
				if rec.count() != 2 {
					t.Fatalf("%d requests, want 2", rec.count())
				}
				// Backoff alone would retry within 5ms.
				if gap := rec.get(1).at.Sub(rec.get(0).at); gap != tt.wait {
					t.Errorf("retried after %s, want Retry-After's %s", gap, tt.wait)
				}
			})
		})
	}
}

func TestRateLimitedUntilRetriesRunOut(t *testing.T) {
	srv, rec := scripted(t, answer{status: 429, body: `{"detail":"Request was throttled."}`})
	err := newClient(t, srv.URL, func(c *Config) { c.MaxRetries = 3 }).DeleteAccount(t.Context(), "a1")
	var apiErr *APIError
	if !errors.Is(err, ErrRateLimited) || !errors.As(err, &apiErr) || apiErr.Attempts != 4 || rec.count() != 4 {
		t.Fatalf("err %v after %d requests; want ErrRateLimited after 4 attempts", err, rec.count())
	}
	if errors.Is(err, ErrUnavailable) {
		t.Error("429 also matches ErrUnavailable")
	}
}

func TestServerErrorsAreRetried(t *testing.T) {
	for _, status := range []int{500, 502, 503} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv, rec := scripted(t, answer{status: status}, answer{status: status}, answer{status: 200, body: `{"id":"a1"}`})
			a, err := newClient(t, srv.URL).GetAccount(t.Context(), "a1")
			if err != nil || a.ID != "a1" || rec.count() != 3 {
				t.Fatalf("got %q, %v after %d requests; want success on the third", a.ID, err, rec.count())
			}
		})
	}
}

func TestUnavailableWhenRetriesRunOut(t *testing.T) {
	srv, rec := scripted(t, answer{status: 500, body: "upstream connect error"})
	_, err := newClient(t, srv.URL).GetAccount(t.Context(), "a1")
	var apiErr *APIError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &apiErr) || apiErr.Attempts != 5 || rec.count() != 5 {
		t.Fatalf("err %v after %d requests; want ErrUnavailable after 5 attempts", err, rec.count())
	}
	if want := "argyle GET /accounts/a1: 500 Internal Server Error after 5 attempts: upstream connect error"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

func TestHangingAttemptTimesOutAndIsRetried(t *testing.T) {
	fast := func(c *Config) { c.Timeout = 100 * time.Millisecond; c.MaxRetries = 2 }
	t.Run("then success", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, rec := offline(t, []answer{{hang: true}, {status: 200, body: `{"id":"a1"}`}}, fast)
			if _, err := c.GetAccount(t.Context(), "a1"); err != nil || rec.count() != 2 {
				t.Fatalf("err %v after %d requests; want success on the second", err, rec.count())
			}
		})
	})
	t.Run("forever", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, rec := offline(t, []answer{{hang: true}}, fast)
			start := time.Now()
			_, err := c.GetAccount(t.Context(), "a1")
			elapsed := time.Since(start)
			var apiErr *APIError
			if !errors.Is(err, ErrUnavailable) || !errors.As(err, &apiErr) || apiErr.Attempts != 3 || rec.count() != 3 {
				t.Fatalf("err %v after %d requests; want ErrUnavailable after 3 attempts", err, rec.count())
			}
			if !strings.Contains(err.Error(), "no answer within 100ms (argyle-api-timeout)") || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("message %q: want the per-attempt timeout named, not a context error", err)
			}
			// Three timeouts, and two backoffs of at most 1ms and 2ms.
			if elapsed < 300*time.Millisecond || elapsed > 303*time.Millisecond {
				t.Errorf("took %s for 3 attempts of 100ms", elapsed)
			}
		})
	})
}

func TestMaxElapsedBoundsTheCall(t *testing.T) {
	budget := func(c *Config) {
		c.MaxElapsed, c.MaxRetries = 300*time.Millisecond, 1000
		c.BackoffBase, c.BackoffMax = 10*time.Millisecond, 50*time.Millisecond
	}
	tests := []struct {
		name     string
		answers  []answer
		sentinel error
		status   int
		attempts func(n int) bool
	}{
		{"503 forever", []answer{{status: 503}}, ErrUnavailable, 503, func(n int) bool { return n >= 2 && n < 1000 }},
		{"Retry-After beyond the budget", []answer{{status: 429, retryAfter: "60"}}, ErrRateLimited, 429, func(n int) bool { return n == 1 }},
		{"budget ends mid-attempt", []answer{{status: 503}, {hang: true}}, ErrUnavailable, 503, func(n int) bool { return n == 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, _ := offline(t, tt.answers, budget)
				start := time.Now()
				err := c.DeleteAccount(t.Context(), "a1")
				elapsed := time.Since(start)
				var apiErr *APIError
				if !errors.Is(err, tt.sentinel) || !errors.As(err, &apiErr) || apiErr.Status != tt.status || !tt.attempts(apiErr.Attempts) {
					t.Fatalf("err %v (%+v)", err, apiErr)
				}
				if elapsed > 300*time.Millisecond {
					t.Errorf("took %s with a 300ms budget", elapsed)
				}
			})
		})
	}
	t.Run("Retry-After is reported", func(t *testing.T) {
		srv, _ := scripted(t, answer{status: 429, retryAfter: "60"})
		err := newClient(t, srv.URL, budget).DeleteAccount(t.Context(), "a1")
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.RetryAfter != time.Minute || !strings.Contains(err.Error(), "(retry after 1m0s)") {
			t.Errorf("err %v", err)
		}
	})
}

func TestCallerContext(t *testing.T) {
	t.Run("deadline shorter than Retry-After", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, rec := offline(t, []answer{{status: 503, retryAfter: "5"}})
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := c.GetAccount(ctx, "a1")
			if elapsed := time.Since(start); !errors.Is(err, ErrUnavailable) || rec.count() != 1 || elapsed != 0 {
				t.Errorf("err %v after %d requests and %s; want the 503 at once, no sleep past the deadline", err, rec.count(), elapsed)
			}
		})
	})
	for name, answers := range map[string][]answer{
		"canceled during an attempt": {{hang: true}},
		"canceled during a wait":     {{status: 503, retryAfter: "3"}},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, _ := offline(t, answers, func(c *Config) { c.Timeout = 10 * time.Second })
				ctx, cancel := context.WithCancel(t.Context())
				const at = 50 * time.Millisecond
				time.AfterFunc(at, cancel)
				start := time.Now()
				_, err := c.GetAccount(ctx, "a1")
				if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
					t.Errorf("err %v; want context.Canceled and not ErrUnavailable", err)
				}
				if elapsed := time.Since(start); elapsed != at {
					t.Errorf("stopped %s after the start, want at the cancellation, %s", elapsed, at)
				}
			})
		})
	}
}

func TestPostsAreRetriedOnlyWhenNothingWasDone(t *testing.T) {
	fast := func(c *Config) { c.Timeout = 100 * time.Millisecond }
	tests := []struct {
		name     string
		answers  []answer
		ok       bool
		requests int
	}{
		{"500 is not retried", []answer{{status: 500}}, false, 1},
		{"timeout is not retried", []answer{{hang: true}, {status: 200, body: `{"user_token":"t"}`}}, false, 1},
		{"429 is retried", []answer{{status: 429}, {status: 200, body: `{"user_token":"t"}`}}, true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rec := scripted(t, tt.answers...)
			_, err := newClient(t, srv.URL, fast).CreateUserToken(t.Context(), "u1")
			if (err == nil) != tt.ok || rec.count() != tt.requests {
				t.Errorf("err %v after %d requests; want ok=%t after %d", err, rec.count(), tt.ok, tt.requests)
			}
		})
	}
	t.Run("connection refused is retried", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String()
		ln.Close()
		_, err = newClient(t, url, fast).CreateWebhook(t.Context(), WebhookSpec{Events: []string{"*"}, Name: "n", URL: "https://h/"})
		var apiErr *APIError
		if !errors.Is(err, ErrUnavailable) || !errors.As(err, &apiErr) || apiErr.Attempts != 5 || apiErr.Status != 0 {
			t.Errorf("err %v; want ErrUnavailable after 5 attempts", err)
		}
	})
}

func TestRateLimiterSpacesRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, rec := offline(t, []answer{{status: 200, body: `{"id":"a1"}`}}, func(c *Config) { c.RequestsPerSecond = 10 })
		ctx, cancel := context.WithTimeout(t.Context(), 450*time.Millisecond)
		defer cancel()
		var wg sync.WaitGroup
		var failed atomic.Int32
		for range 20 {
			wg.Go(func() {
				if _, err := c.GetAccount(ctx, "a1"); err != nil {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		// 10/s with a burst of 1 admits requests at 0, 100, ... 400ms.
		if n := rec.count(); n != 5 || failed.Load() != 15 {
			t.Errorf("%d of 20 requests reached the server (%d failed); want 5", n, failed.Load())
		}
		for i := 1; i < rec.count(); i++ {
			if gap := rec.get(i).at.Sub(rec.get(i - 1).at); gap != 100*time.Millisecond {
				t.Errorf("request %d came %s after the one before, want 100ms", i+1, gap)
			}
		}
	})
}

// The observer hears one outcome per call, after its retries, under the
// HTTP method.
func TestObserverHearsEveryCall(t *testing.T) {
	cases := []struct {
		name     string
		answers  []answer
		canceled bool
		want     string
	}{
		{"ok after a retry", []answer{{status: 503}, {status: 204}}, false, "DELETE ok"},
		{"not found", []answer{{status: 404}}, false, "DELETE not_found"},
		{"unauthorized", []answer{{status: 401}}, false, "DELETE unauthorized"},
		{"rate limited", []answer{{status: 429}}, false, "DELETE rate_limited"},
		{"unavailable", []answer{{status: 502}}, false, "DELETE unavailable"},
		{"refused", []answer{{status: 400}}, false, "DELETE error"},
		{"caller gone", []answer{{status: 204}}, true, "DELETE canceled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, _ := scripted(t, c.answers...)
			var heard []string
			client := newClient(t, srv.URL, func(cfg *Config) {
				cfg.Observer = func(method, outcome string, _ time.Duration) {
					heard = append(heard, method+" "+outcome)
				}
			})
			ctx, cancel := context.WithCancel(t.Context())
			if c.canceled {
				cancel()
			}
			defer cancel()
			_ = client.DeleteAccount(ctx, "a1")
			if len(heard) != 1 || heard[0] != c.want {
				t.Errorf("observer heard %q, want [%s]", heard, c.want)
			}
		})
	}
}
