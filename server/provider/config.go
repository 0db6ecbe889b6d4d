package provider

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Default settings. The rate stays below the provider's documented 50
// requests/s so that other users of the same key keep some headroom.
const (
	DefaultBaseURL           = "https://api-sandbox.argyle.com/v2"
	DefaultTimeout           = 10 * time.Second
	DefaultMaxElapsed        = 30 * time.Second
	DefaultMaxRetries        = 4
	DefaultRequestsPerSecond = 40
	DefaultBackoffBase       = 200 * time.Millisecond
	DefaultBackoffMax        = 5 * time.Second
)

// Config configures a Client. Zero values take the defaults above. The
// setting names in Validate's errors (argyle-api-url, ...) are the flag
// names an operator sets.
type Config struct {
	// BaseURL is the API root including /v2: sandbox or production. Keys
	// only work in their own environment.
	BaseURL string
	// KeyID and KeySecret are the API key, sent as HTTP Basic auth.
	KeyID, KeySecret string
	// Timeout bounds one attempt, from sending to reading the whole body.
	Timeout time.Duration
	// MaxElapsed bounds a call across all its attempts and waits.
	MaxElapsed time.Duration
	// MaxRetries is how many times a failed attempt may be repeated;
	// negative disables retries.
	MaxRetries int
	// RequestsPerSecond limits this client's request rate.
	RequestsPerSecond float64
	// BackoffBase and BackoffMax shape the wait between retries: full
	// jitter over BackoffBase·2^(n-1), capped at BackoffMax.
	BackoffBase, BackoffMax time.Duration
	// HTTPClient sends the requests; nil means http.DefaultClient. Its own
	// Timeout, if any, applies on top of Timeout.
	HTTPClient *http.Client
	// Observer, when set, hears how every call ended, for metrics: its
	// HTTP method, its outcome (an Outcome constant) and how long it took,
	// retries and waits included. It must not block.
	Observer func(method, outcome string, elapsed time.Duration)
}

func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxElapsed == 0 {
		c.MaxElapsed = DefaultMaxElapsed
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	if c.RequestsPerSecond == 0 {
		c.RequestsPerSecond = DefaultRequestsPerSecond
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.HTTPClient == nil {
		c.HTTPClient = http.DefaultClient
	}
	return c
}

// Validate reports every problem at once, each naming its setting. Unset
// values are checked as their defaults. No message contains the secret.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if err := checkBaseURL(c.BaseURL); err != nil {
		errs = append(errs, err)
	}
	if c.KeyID == "" {
		errs = append(errs, errors.New("argyle-api-key-id: required; find the API key in the provider's Console (sandbox and production keys differ)"))
	}
	if c.KeySecret == "" {
		errs = append(errs, errors.New("argyle-api-key-secret: required; it is shown once when the API key is created"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"argyle-api-timeout", c.Timeout}, {"argyle-api-max-elapsed", c.MaxElapsed},
		{"argyle-api-backoff-base", c.BackoffBase}, {"argyle-api-backoff-max", c.BackoffMax},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", d.name, d.v))
		}
	}
	if c.RequestsPerSecond < 0 {
		errs = append(errs, fmt.Errorf("argyle-api-rps: must be positive, got %g", c.RequestsPerSecond))
	}
	return errors.Join(errs...)
}

// checkBaseURL never echoes a URL with credentials in it: url.Error would
// print the raw input, so only its inner error is kept.
func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("argyle-api-url: not a valid URL: %v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("argyle-api-url: %s: want an http or https URL such as %s", u.Redacted(), DefaultBaseURL)
	case u.Host == "":
		return fmt.Errorf("argyle-api-url: %s: no host", u.Redacted())
	case u.User != nil:
		return fmt.Errorf("argyle-api-url: %s: must not carry credentials; set argyle-api-key-id and argyle-api-key-secret", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("argyle-api-url: %s: must not have a query or fragment", u.Redacted())
	}
	return nil
}

// redacted stands in for a secret wherever a value is printed: it says
// whether the secret is set, never what it is.
func redacted(secret string) string {
	if secret == "" {
		return ""
	}
	return "[redacted]"
}

// String prints the settings as given, the key secret redacted, so that a
// Config can be printed with %v or %+v.
func (c Config) String() string {
	return fmt.Sprintf("provider.Config{BaseURL:%q KeyID:%q KeySecret:%q Timeout:%s MaxElapsed:%s MaxRetries:%d RequestsPerSecond:%g BackoffBase:%s BackoffMax:%s}",
		c.BaseURL, c.KeyID, redacted(c.KeySecret), c.Timeout, c.MaxElapsed, c.MaxRetries, c.RequestsPerSecond, c.BackoffBase, c.BackoffMax)
}

// GoString covers %#v, which would otherwise print every field verbatim.
func (c Config) GoString() string { return c.String() }

// LogValue logs the settings as a group, the key secret redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", c.BaseURL),
		slog.String("key_id", c.KeyID),
		slog.String("key_secret", redacted(c.KeySecret)),
		slog.Duration("timeout", c.Timeout),
		slog.Duration("max_elapsed", c.MaxElapsed),
		slog.Int("max_retries", c.MaxRetries),
		slog.Float64("requests_per_second", c.RequestsPerSecond),
		slog.Duration("backoff_base", c.BackoffBase),
		slog.Duration("backoff_max", c.BackoffMax),
	)
}
