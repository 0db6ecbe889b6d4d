package provider

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"

	"github.com/accounthealth/accounthealth/server/health"
)

// EveryEvent is the event that subscribes to all events, the account
// events included. Such a subscription cannot carry include_resource.
const EveryEvent = "*"

// AccountEvents returns the events the service derives health from, in
// the order they happen to an account. It needs all five: each is the only
// news of its kind (a disconnection, for one, arrives only as
// accounts.updated).
func AccountEvents() []string {
	return []string{health.EventAccountsAdded, health.EventAccountsConnected, health.EventAccountsFailed,
		health.EventAccountsUpdated, health.EventAccountsRemoved}
}

// eventMeaning says what the service misses without an event.
var eventMeaning = map[string]string{
	health.EventAccountsAdded:     "new accounts stay unknown until something else happens to them",
	health.EventAccountsConnected: "successful logins and reconnections go unseen",
	health.EventAccountsFailed:    "failed logins and MFA attempts go unseen",
	health.EventAccountsUpdated:   "disconnections (auth_required, expired_credentials), which arrive only as accounts.updated, go unseen",
	health.EventAccountsRemoved:   "revoked and deleted accounts look alive",
}

// WebhookSecret is a subscription's secret as the provider lists it (null
// when it has none). It prints, logs and encodes only whether it is set,
// so that a Webhook can be shown freely; Matches compares it.
type WebhookSecret struct{ value string }

// UnmarshalJSON reads a string or null.
func (s *WebhookSecret) UnmarshalJSON(b []byte) error {
	var v *string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("webhook secret: want a string or null: %w", err)
	}
	s.value = ""
	if v != nil {
		s.value = *v
	}
	return nil
}

// MarshalJSON writes null, or "[redacted]" when the secret is set.
func (s WebhookSecret) MarshalJSON() ([]byte, error) {
	if !s.IsSet() {
		return []byte("null"), nil
	}
	return json.Marshal(redacted(s.value))
}

// IsSet reports whether the subscription has a secret, i.e. whether its
// deliveries are signed.
func (s WebhookSecret) IsSet() bool { return s.value != "" }

// Matches reports, in constant time, whether the secret is secret.
func (s WebhookSecret) Matches(secret string) bool {
	return s.IsSet() && hmac.Equal([]byte(s.value), []byte(secret))
}

// String prints "[redacted]", or nothing when unset.
func (s WebhookSecret) String() string { return redacted(s.value) }

// GoString covers %#v.
func (s WebhookSecret) GoString() string { return s.String() }

// LogValue logs the secret redacted.
func (s WebhookSecret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// sameURL reports whether two webhook URLs name one endpoint: scheme and
// host compare without regard to case, as they do in HTTP; the rest
// exactly, since the service's route is exact.
func sameURL(a, b string) bool {
	return canonicalURL(a) == canonicalURL(b)
}

func canonicalURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	return u.String()
}

// delivers reports whether w sends event, by name or as EveryEvent.
func (w Webhook) delivers(event string) bool {
	return slices.Contains(w.Events, event) || slices.Contains(w.Events, EveryEvent)
}

// deliversAccountEvents reports whether w sends any event the service
// derives health from.
func (w Webhook) deliversAccountEvents() bool {
	return slices.ContainsFunc(AccountEvents(), w.delivers)
}

// Mismatch is an existing subscription to the URL a WebhookSpec asks for
// that does not have the spec's settings.
type Mismatch struct {
	Webhook Webhook
	// Differences says, one item per setting, how Webhook differs from the
	// spec, e.g. "include_resource off, want on".
	Differences []string
}

// Match is what a WebhookSpec finds among the existing subscriptions.
type Match struct {
	// Same is the first subscription to the spec's URL with all of its
	// settings; nil when there is none.
	Same *Webhook
	// Others are the other subscriptions to that URL, in the provider's
	// order: those with other settings, and further ones with the same
	// settings as Same, which deliver every event a second time.
	Others []Mismatch
}

// MatchSubscriptions finds the subscriptions to spec.URL and compares
// them with spec, so that a subscription is created only when none has
// its settings. The settings compared are the ones deliveries depend on:
// the set of events (in any order), include_resource, the secret (the
// provider lists it), and the name, which every delivery carries: two
// subscriptions whose deliveries differ only in it are not recognised as
// redeliveries of each other.
func MatchSubscriptions(subs []Webhook, spec WebhookSpec) Match {
	var m Match
	for _, w := range subs {
		// items.updated subscriptions are PlanItemSubscriptions'.
		if !sameURL(w.URL, spec.URL) || (isItemSubscription(w) && !isItemSubscription(Webhook{Events: spec.Events})) {
			continue
		}
		diff := differences(w, spec)
		switch {
		case len(diff) == 0 && m.Same == nil:
			m.Same = &w
		case len(diff) == 0:
			diff = []string{"the same settings as " + m.Same.ID + ": every event arrives twice"}
			fallthrough
		default:
			m.Others = append(m.Others, Mismatch{Webhook: w, Differences: diff})
		}
	}
	return m
}

// differences says how w differs from spec, URL aside.
func differences(w Webhook, spec WebhookSpec) []string {
	var diff []string
	if w.Name != spec.Name {
		diff = append(diff, fmt.Sprintf("name %q, want %q", w.Name, spec.Name))
	}
	if !sameSet(w.Events, spec.Events) {
		diff = append(diff, fmt.Sprintf("events %s, want %s", strings.Join(w.Events, ","), strings.Join(spec.Events, ",")))
	}
	if w.Config.IncludeResource != spec.IncludeResource {
		diff = append(diff, fmt.Sprintf("include_resource %s, want %s", onOff(w.Config.IncludeResource), onOff(spec.IncludeResource)))
	}
	switch {
	case spec.Secret == "" && w.Secret.IsSet():
		diff = append(diff, "a secret, want none")
	case spec.Secret != "" && !w.Secret.IsSet():
		diff = append(diff, "no secret (its deliveries are unsigned), want one")
	case spec.Secret != "" && !w.Secret.Matches(spec.Secret):
		diff = append(diff, "another secret than the one given")
	}
	return diff
}

// sameSet reports whether a and b hold the same items, in any order and
// number.
func sameSet(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
