package provider

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{KeyID: testKeyID, KeySecret: testSecret}
	tests := []struct {
		name  string
		edit  func(*Config)
		wants []string // settings named in the error; none: valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"production", func(c *Config) { c.BaseURL = "https://api.argyle.com/v2/" }, nil},
		{"no key", func(c *Config) { c.KeyID, c.KeySecret = "", "" }, []string{"argyle-api-key-id", "argyle-api-key-secret"}},
		{"ftp", func(c *Config) { c.BaseURL = "ftp://api.argyle.com/v2" }, []string{"argyle-api-url"}},
		{"no host", func(c *Config) { c.BaseURL = "https:///v2" }, []string{"argyle-api-url"}},
		{"unparsable", func(c *Config) { c.BaseURL = "https://api argyle.com/v2" }, []string{"argyle-api-url"}},
		{"credentials in the URL", func(c *Config) { c.BaseURL = "https://id:" + testSecret + "@api.argyle.com/v2" }, []string{"argyle-api-url"}},
		{"query", func(c *Config) { c.BaseURL = "https://api.argyle.com/v2?x=1" }, []string{"argyle-api-url"}},
		{"negative durations", func(c *Config) { c.Timeout, c.MaxElapsed = -1, -1 }, []string{"argyle-api-timeout", "argyle-api-max-elapsed"}},
		{"negative rate", func(c *Config) { c.RequestsPerSecond = -1 }, []string{"argyle-api-rps"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			_, err := New(cfg)
			if (err == nil) != (len(tt.wants) == 0) {
				t.Fatalf("New: %v", err)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w+":") {
					t.Errorf("%q does not name %s", err, w)
				}
			}
			if err != nil && strings.Contains(err.Error(), testSecret) {
				t.Errorf("%q contains the secret", err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := New(Config{KeyID: testKeyID, KeySecret: testSecret, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.BaseURL != DefaultBaseURL || c.cfg.Timeout != DefaultTimeout || c.cfg.MaxElapsed != DefaultMaxElapsed ||
		c.cfg.RequestsPerSecond != DefaultRequestsPerSecond || c.retries != 0 || c.cfg.HTTPClient == nil {
		t.Errorf("config %+v, retries %d", c.cfg, c.retries)
	}
	if d, _ := New(Config{KeyID: testKeyID, KeySecret: testSecret}); d.retries != DefaultMaxRetries {
		t.Errorf("retries %d, want the default %d", d.retries, DefaultMaxRetries)
	}
}

// TestSecretNeverShows prints a Config every way a caller might and
// provokes every kind of error; the secret must appear nowhere.
func TestSecretNeverShows(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte(testKeyID + ":" + testSecret))
	cfg := Config{KeyID: testKeyID, KeySecret: testSecret, Timeout: time.Second}
	spec := WebhookSpec{Events: []string{"*"}, Name: "n", URL: "https://h/", Secret: testSecret}

	var logged bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&logged, nil), slog.NewTextHandler(&logged, nil)} {
		slog.New(h).Info("config", "cfg", cfg, "spec", spec)
	}
	texts := []string{
		fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg), fmt.Sprintf("%+v %#v", spec, spec),
		fmt.Sprintf("%+v", &cfg), logged.String(),
	}

	echo, _ := scripted(t, answer{status: 401, body: `{"detail":"bad key ` + testSecret + ` in header Basic ` + basic + `"}`})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	hang, _ := scripted(t, answer{hang: true})
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	fast := func(c *Config) { c.Timeout, c.MaxRetries = 50*time.Millisecond, -1 }

	errs := []error{
		newClient(t, echo.URL).DeleteAccount(t.Context(), "a1"),
		newClient(t, refused, fast).DeleteAccount(t.Context(), "a1"),
		newClient(t, hang.URL, fast).DeleteAccount(t.Context(), "a1"),
		newClient(t, echo.URL).DeleteAccount(canceled, "a1"),
	}
	_, err = New(Config{BaseURL: "https://id:" + testSecret + "@h/v2", KeyID: testKeyID, KeySecret: testSecret})
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Fatalf("error %d is nil", i)
		}
		texts = append(texts, err.Error())
	}
	for _, s := range texts {
		if strings.Contains(s, testSecret) || strings.Contains(s, basic) {
			t.Errorf("the secret shows in %q", s)
		}
	}
	if !strings.Contains(texts[1], "[redacted]") || !strings.Contains(logged.String(), "[redacted]") {
		t.Errorf("a set secret should show as [redacted]: %q", texts[1])
	}
}
