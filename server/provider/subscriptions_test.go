package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

const (
	ourURL   = "https://hooks.example.com/v1/webhooks/argyle"
	otherURL = "https://old.example.com/v1/webhooks/argyle"
	secretA  = "whsec-A-5f2c"
	secretB  = "whsec-B-9d1e"
)

// sub is a subscription as the provider would list it.
func sub(id, url string, events []string, includeResource bool, secret string) Webhook {
	return Webhook{ID: id, Name: "accounthealth", URL: url, Events: events,
		Config: WebhookConfig{IncludeResource: includeResource}, Secret: WebhookSecret{value: secret}}
}

// full is a subscription with everything the service needs.
func full(id string) Webhook { return sub(id, ourURL, AccountEvents(), true, secretA) }

// except returns the account events without the named ones.
func except(names ...string) []string {
	return slices.DeleteFunc(AccountEvents(), func(e string) bool { return slices.Contains(names, e) })
}

// checkCase is a CheckSubscriptions case: findings are "id problem text",
// text a part of the message.
type checkCase struct {
	name     string
	subs     []Webhook
	want     Expectations
	findings []string
}

var (
	serveWants  = Expectations{URL: ourURL, Secrets: []string{secretA}}
	updatedOnly = []string{"accounts.updated"}
)

func TestCheckSubscriptionsEvents(t *testing.T) {
	runChecks(t, []checkCase{
		{"by the book", []Webhook{full("w1")}, serveWants, nil},
		{"one subscription per event", func() []Webhook {
			var subs []Webhook
			for i, e := range AccountEvents() {
				subs = append(subs, sub(fmt.Sprint("w", i), ourURL, []string{e}, true, secretA))
			}
			return subs
		}(), serveWants, nil},
		{"no subscription at all", nil, serveWants, []string{" no_subscription to " + ourURL + ": the service hears of no account"}},
		{"no subscription, no URL given", nil, Expectations{}, []string{" no_subscription <its public webhook URL>"}},
		{"only an items subscription", []Webhook{sub("w1", ourURL, []string{"items.updated"}, false, secretA)}, serveWants,
			[]string{" no_subscription no subscription delivers account events"}},
		{"one event missing", []Webhook{sub("w1", ourURL, except("accounts.removed"), true, secretA)}, serveWants,
			[]string{"w1 missing_event delivers no accounts.removed, nor does any other of the service's subscriptions: revoked and deleted accounts look alive"}},
		{"only accounts.updated", []Webhook{sub("w1", ourURL, updatedOnly, true, secretA)}, serveWants, []string{
			"w1 missing_event no accounts.added", "w1 missing_event no accounts.connected",
			"w1 missing_event no accounts.failed", "w1 missing_event no accounts.removed",
		}},
		{"a missing event that another subscription delivers", []Webhook{
			sub("w1", ourURL, except("accounts.removed"), true, secretA), sub("w2", ourURL, []string{"accounts.removed"}, false, secretA),
		}, serveWants, nil},
		{"an event missing from both", []Webhook{
			sub("w1", ourURL, except("accounts.failed"), true, secretA), sub("w2", ourURL, []string{"accounts.removed"}, false, secretA),
		}, serveWants, []string{"w1 missing_event no accounts.failed", "w2 missing_event no accounts.failed"}},
		{"accounts.updated without the object", []Webhook{sub("w1", ourURL, AccountEvents(), false, secretA)}, serveWants,
			[]string{"w1 no_include_resource (include_resource is off): a disconnection is not in the delivery"}},
		{"lean and full accounts.updated side by side", []Webhook{
			sub("w1", ourURL, AccountEvents(), false, secretA), sub("w2", ourURL, updatedOnly, true, secretA),
		}, serveWants, nil},
		{"full and lean accounts.updated side by side", []Webhook{
			sub("w1", ourURL, updatedOnly, true, secretA), sub("w2", ourURL, AccountEvents(), false, secretA),
		}, serveWants, nil},
		{`"*" covers every event but cannot carry the object`, []Webhook{sub("w1", ourURL, []string{"*"}, false, secretA)}, serveWants,
			[]string{`w1 no_include_resource a "*" subscription cannot carry include_resource`}},
		{`"*" beside a full accounts.updated`, []Webhook{
			sub("w1", ourURL, []string{"*"}, false, secretA), sub("w2", ourURL, updatedOnly, true, secretA),
		}, serveWants, nil},
	})
}

func TestCheckSubscriptionsSecretsAndURLs(t *testing.T) {
	runChecks(t, []checkCase{
		{"no secret", []Webhook{sub("w1", ourURL, AccountEvents(), true, "")}, serveWants,
			[]string{"w1 no_secret the service refuses unsigned deliveries (unless --allow-unsigned-webhooks)"}},
		{"no secret, unsigned deliveries allowed", []Webhook{sub("w1", ourURL, AccountEvents(), true, "")},
			Expectations{URL: ourURL, Secrets: []string{secretA}, AllowUnsigned: true}, nil},
		{"no secret on an items subscription to the service", []Webhook{full("w1"), sub("w2", ourURL, []string{"items.updated"}, false, "")}, serveWants,
			[]string{"w2 no_secret has no secret"}},
		{"a secret the service lacks", []Webhook{sub("w1", ourURL, AccountEvents(), true, secretB)}, serveWants,
			[]string{"w1 other_secret none of the service's --webhook-secret"}},
		{"the new secret while rotating", []Webhook{sub("w1", ourURL, AccountEvents(), true, secretB)},
			Expectations{URL: ourURL, Secrets: []string{secretA, secretB}}, nil},
		{"secrets not given: only their absence counts", []Webhook{sub("w1", ourURL, AccountEvents(), true, secretB)},
			Expectations{URL: ourURL}, nil},
		{"account events to another URL", []Webhook{full("w1"), sub("w2", otherURL, AccountEvents(), true, secretA)}, serveWants,
			[]string{"w2 other_url delivers account events to " + otherURL + ", not to the service's " + ourURL}},
		{"only another URL", []Webhook{sub("w1", otherURL, AccountEvents(), true, secretA)}, serveWants,
			[]string{" no_subscription to " + ourURL, "w1 other_url `accounthealth webhooks delete w1`"}},
		{"other events to another URL are not the service's business", []Webhook{
			full("w1"), sub("w2", otherURL, []string{"reports.ready"}, false, ""),
		}, serveWants, nil},
		{"scheme and host in any case", []Webhook{sub("w1", "HTTPS://Hooks.Example.COM/v1/webhooks/argyle", AccountEvents(), true, secretA)}, serveWants, nil},
		{"a path that differs by a slash", []Webhook{sub("w1", ourURL+"/", AccountEvents(), true, secretA)}, serveWants,
			[]string{" no_subscription", "w1 other_url"}},
		{"URL not given: every account subscription counts", []Webhook{
			sub("w1", ourURL, except("accounts.removed"), true, secretA), sub("w2", otherURL, []string{"accounts.removed"}, true, secretA),
			sub("w3", otherURL, []string{"reports.ready"}, false, ""),
		}, Expectations{Secrets: []string{secretA}}, nil},
		{"everything wrong with one subscription, in order", []Webhook{sub("w1", ourURL, updatedOnly, false, "")}, serveWants, []string{
			"w1 no_secret", "w1 missing_event no accounts.added", "w1 missing_event no accounts.connected",
			"w1 missing_event no accounts.failed", "w1 missing_event no accounts.removed", "w1 no_include_resource",
		}},
	})
}

func runChecks(t *testing.T, cases []checkCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := CheckSubscriptions(c.subs, c.want)
			if len(got) != len(c.findings) {
				t.Fatalf("%d findings, want %d:\n%s", len(got), len(c.findings), lines(got))
			}
			for i, f := range got {
				id, rest, _ := strings.Cut(c.findings[i], " ")
				problem, text, _ := strings.Cut(rest, " ")
				if f.Subscription != id || string(f.Problem) != problem || !strings.Contains(f.Message, text) {
					t.Errorf("finding %d = %s\nwant %s", i, f, c.findings[i])
				}
				if strings.Contains(f.Message, secretA) || strings.Contains(f.Message, secretB) {
					t.Errorf("finding %d shows a secret: %s", i, f)
				}
			}
		})
	}
}

func lines(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s %s\n", f.Problem, f)
	}
	return b.String()
}

func TestFindingString(t *testing.T) {
	if got := (Finding{Subscription: "w1", Message: "has no secret"}).String(); got != "subscription w1: has no secret" {
		t.Errorf("got %q", got)
	}
	if got := (Finding{Message: "no subscription"}).String(); got != "no subscription" {
		t.Errorf("got %q", got)
	}
}

func TestMatchSubscriptions(t *testing.T) {
	spec := WebhookSpec{Events: AccountEvents(), Name: "accounthealth", URL: ourURL, Secret: secretA, IncludeResource: true}
	reversed := slices.Clone(AccountEvents())
	slices.Reverse(reversed)
	renamed := full("w1")
	renamed.Name = "prod"
	cases := []struct {
		name   string
		subs   []Webhook
		spec   WebhookSpec
		same   string
		others []string // "id difference; difference"
	}{
		{"nothing yet", nil, spec, "", nil},
		{"only other URLs", []Webhook{sub("w1", otherURL, AccountEvents(), true, secretA)}, spec, "", nil},
		{"the same", []Webhook{sub("w0", otherURL, AccountEvents(), true, secretA), full("w1")}, spec, "w1", nil},
		{"events in another order, host in another case", []Webhook{
			sub("w1", "https://HOOKS.example.com/v1/webhooks/argyle", append(reversed, "accounts.added"), true, secretA),
		}, spec, "w1", nil},
		{"another name", []Webhook{renamed}, spec, "", []string{`w1 name "prod", want "accounthealth"`}},
		{"fewer events", []Webhook{sub("w1", ourURL, except("accounts.removed"), true, secretA)}, spec, "",
			[]string{"w1 events accounts.added,accounts.connected,accounts.failed,accounts.updated, want accounts.added,accounts.connected,accounts.failed,accounts.updated,accounts.removed"}},
		{`"*" for the events by name`, []Webhook{sub("w1", ourURL, []string{"*"}, false, secretA)}, spec, "",
			[]string{"w1 events *, want accounts.added,accounts.connected,accounts.failed,accounts.updated,accounts.removed; include_resource off, want on"}},
		{"unsigned", []Webhook{sub("w1", ourURL, AccountEvents(), true, "")}, spec, "",
			[]string{"w1 no secret (its deliveries are unsigned), want one"}},
		{"another secret", []Webhook{sub("w1", ourURL, AccountEvents(), true, secretB)}, spec, "",
			[]string{"w1 another secret than the one given"}},
		{"a secret where none is wanted", []Webhook{full("w1")}, WebhookSpec{Events: AccountEvents(), Name: "accounthealth", URL: ourURL, IncludeResource: true}, "",
			[]string{"w1 a secret, want none"}},
		{"a duplicate", []Webhook{full("w1"), full("w2")}, spec, "w1", []string{"w2 the same settings as w1: every event arrives twice"}},
		{"a differing one before the same", []Webhook{sub("w1", ourURL, AccountEvents(), false, secretA), full("w2")}, spec, "w2",
			[]string{"w1 include_resource off, want on"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := MatchSubscriptions(c.subs, c.spec)
			if same := ""; m.Same != nil {
				same = m.Same.ID
				if same != c.same {
					t.Errorf("same = %s, want %q", same, c.same)
				}
			} else if c.same != "" {
				t.Errorf("same = none, want %s", c.same)
			}
			var others []string
			for _, o := range m.Others {
				others = append(others, o.Webhook.ID+" "+strings.Join(o.Differences, "; "))
			}
			if !slices.Equal(others, c.others) {
				t.Errorf("others:\n%q\nwant\n%q", others, c.others)
			}
		})
	}
}

// A subscription's secret is read from the provider's JSON but never shown:
// not printed, logged or encoded.
func TestWebhookSecretNeverShows(t *testing.T) {
	var ws []Webhook
	body := `[{"id":"w1","secret":"` + secretA + `"},{"id":"w2","secret":null},{"id":"w3"}]`
	if err := json.Unmarshal([]byte(body), &ws); err != nil {
		t.Fatal(err)
	}
	if !ws[0].Secret.IsSet() || !ws[0].Secret.Matches(secretA) || ws[0].Secret.Matches(secretB) || ws[0].Secret.Matches("") {
		t.Errorf("w1's secret does not match as it should")
	}
	if ws[1].Secret.IsSet() || ws[2].Secret.IsSet() || ws[1].Secret.Matches("") {
		t.Errorf("a null or absent secret counts as set")
	}
	enc, err := json.Marshal(ws)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("subscription", "webhook", ws[0], "secret", ws[0].Secret)
	shown := map[string]string{
		"%v": fmt.Sprintf("%v", ws[0]), "%+v": fmt.Sprintf("%+v", ws[0]), "%#v": fmt.Sprintf("%#v", ws[0]),
		"%s of the secret": fmt.Sprintf("%s", ws[0].Secret), "JSON": string(enc), "log": logged.String(),
	}
	for how, s := range shown {
		if strings.Contains(s, secretA) {
			t.Errorf("%s shows the secret: %s", how, s)
		}
	}
	if !strings.Contains(string(enc), `"secret":"[redacted]"`) || !strings.Contains(string(enc), `"id":"w2","name":"","events":null,"url":"","config":{"include_resource":false},"secret":null`) {
		t.Errorf("JSON = %s", enc)
	}
	if err := json.Unmarshal([]byte(`[{"id":"w1","secret":42}]`), &ws); err == nil || !strings.Contains(err.Error(), "want a string or null") {
		t.Errorf("a number as the secret: %v", err)
	}
}
