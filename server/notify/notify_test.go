package notify

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/accounthealth/accounthealth/server/store"
)

// TestSignSpecVector signs the Standard Webhooks spec's test vector.
func TestSignSpecVector(t *testing.T) {
	got, err := Sign([]store.Secret{{Key: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, time.Unix(1614265330, 0),
		"msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; err != nil || got != want {
		t.Errorf("Sign = %q, %v; want %q", got, err, want)
	}
}

// TestSignVerifiesWithReferenceLibrary: a receiver holding any live
// secret verifies, one holding an expired one does not.
func TestSignVerifiesWithReferenceLibrary(t *testing.T) {
	now := time.Now()
	secrets, fresh := rotate([]store.Secret{{Key: NewSecret()}}, now, time.Hour)
	old := secrets[1].Key
	expired := store.Secret{Key: NewSecret(), ExpiresAt: now}
	sig, err := Sign(append(secrets, expired), now, "msg_1", now.Unix(), []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(sig)); n != 2 {
		t.Errorf("signature %q: %d signatures, want 2 (the expired secret signs no more)", sig, n)
	}
	h := http.Header{"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {itoa(now.Unix())}, "Webhook-Signature": {sig}}
	for name, s := range map[string]string{"new": fresh, "old": old, "expired": expired.Key} {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		err = wh.Verify([]byte(`{"a":1}`), h)
		if (err == nil) != (name != "expired") {
			t.Errorf("%s secret: Verify = %v", name, err)
		}
	}
	if _, err := Sign([]store.Secret{expired}, now, "msg_1", 1, nil); err == nil {
		t.Error("Sign with only expired secrets succeeded")
	}
	if again, _ := rotate(secrets, now, 0); len(again) != 2 {
		t.Errorf("rotating without overlap kept %d secrets, want the new one and the old one's overlap", len(again))
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestSchedule(t *testing.T) {
	if got, err := ParseSchedule("0s, 5s,5m"); err != nil || len(got) != 3 || got[2] != 5*time.Minute {
		t.Errorf("ParseSchedule = %v, %v", got, err)
	}
	for _, bad := range []string{"", "5", "-1s", "1s,,2s"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) accepted", bad)
		}
	}
	for retries := range len(DefaultSchedule) + 1 {
		d, ok := nextDelay(DefaultSchedule, retries, 0)
		if retries == len(DefaultSchedule) {
			if ok {
				t.Errorf("after %d failures: retried, want exhausted", retries)
			}
			continue
		}
		want := DefaultSchedule[retries]
		if !ok || d < want*9/10 || d > want*11/10 {
			t.Errorf("after %d failures: %v, %v; want %v ± 10%%", retries, d, ok, want)
		}
	}
	if d, _ := nextDelay(DefaultSchedule, 1, 3*time.Hour); d != MaxRetryAfter {
		t.Errorf("a Retry-After of 3h gives %v, want the bound %v", d, MaxRetryAfter)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		code  int
		value string
		want  time.Duration
	}{
		{429, "7", 7 * time.Second},
		{503, now.Add(time.Minute).Format(http.TimeFormat), time.Minute},
		{500, "7", 0},
		{429, "soon", 0},
		{429, "99999999999999", MaxRetryAfter},
	}
	for _, c := range cases {
		resp := &http.Response{StatusCode: c.code, Header: http.Header{"Retry-After": {c.value}}}
		if got := retryAfter(resp, now); got != c.want {
			t.Errorf("%d Retry-After %q: %v, want %v", c.code, c.value, got, c.want)
		}
	}
}

func TestURLCheck(t *testing.T) {
	c := urlChecker{own: func() []string { return []string{"127.0.0.1:8080", ":9090"} }, resolver: net.DefaultResolver}
	ok := []string{"https://example.com/hook", "http://127.0.0.1:8081/x", "http://localhost:3000/", "http://[::1]:3000/"}
	bad := []string{"", "example.com", "https://", "ftp://example.com/", "http://example.com/", "https://u:p@example.com/",
		"http://127.0.0.1:8080/v1/webhooks/argyle", "http://localhost:8080/", "http://127.0.0.1:9090/", "https://example.com/#x"}
	for _, u := range ok {
		if err := c.check(context.Background(), u); err != nil {
			t.Errorf("%q refused: %v", u, err)
		}
	}
	for _, u := range bad {
		err := c.check(context.Background(), u)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "url" || !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("%q: %v, want an invalid url", u, err)
		}
	}
	insecure := urlChecker{allowInsecure: true, resolver: net.DefaultResolver}
	if err := insecure.check(context.Background(), "http://example.com/"); err != nil {
		t.Errorf("with insecure endpoints allowed: %v", err)
	}
}

// TestWakesAtEveryTimeAsked: the dispatcher is woken at each retry's time,
// not only at the earliest. With one timer for the earliest, a later
// retry asked for meanwhile found the pass at the earlier time too soon,
// and waited for the poll (5 s).
func TestWakesAtEveryTimeAsked(t *testing.T) {
	n := &Notifier{wake: make(chan struct{}, 1)}
	start := time.Now()
	times := []time.Time{start.Add(30 * time.Millisecond), start.Add(60 * time.Millisecond), start.Add(-time.Second)}
	n.mu.Lock()
	for _, at := range times {
		n.wakeAtLocked(at)
	}
	n.mu.Unlock()
	<-n.wake // the time already past, at once
	for _, at := range times[:2] {
		select {
		case <-n.wake:
			if now := time.Now(); now.Before(at) {
				t.Errorf("woken at +%v, before +%v", now.Sub(start), at.Sub(start))
			}
		case <-time.After(10 * time.Second): // a bound on a hang
			t.Fatalf("not woken for +%v", at.Sub(start))
		}
	}
}
