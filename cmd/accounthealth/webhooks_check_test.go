package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/provider/providerfake"
)

const (
	hooksURL    = "https://hooks.example.com/v1/webhooks/argyle"
	oldHooksURL = "https://old.example.com/v1/webhooks/argyle"
)

// providerEnv is a fake provider served over HTTP, the environment that
// points the commands at it, and a client to arrange and inspect its
// subscriptions.
type providerEnv struct {
	fake   *providerfake.Fake
	apiURL string
	env    []string
	client *provider.Client
}

// startProvider serves a fake provider; wrap, when given, wraps its
// handler, to watch the requests.
func startProvider(t *testing.T, wrap func(http.Handler) http.Handler) *providerEnv {
	t.Helper()
	fake := providerfake.New(providerfake.Options{})
	h := fake.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	api := httptest.NewServer(h)
	t.Cleanup(api.Close)
	t.Cleanup(fake.Close) // first, so that it lets go of held requests
	cfg := provider.Config{BaseURL: api.URL + "/v2", KeyID: providerfake.DefaultKeyID, KeySecret: providerfake.DefaultKeySecret}
	client, err := provider.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &providerEnv{fake: fake, apiURL: cfg.BaseURL, client: client, env: []string{
		"ACCOUNTHEALTH_ARGYLE_API_URL=" + cfg.BaseURL, "ACCOUNTHEALTH_ARGYLE_API_KEY_ID=" + cfg.KeyID,
		"ACCOUNTHEALTH_ARGYLE_API_KEY_SECRET=" + cfg.KeySecret, "ACCOUNTHEALTH_WEBHOOK_SECRET=old," + fixtureSecret,
	}}
}

func (p *providerEnv) subscriptions(t *testing.T) []provider.Webhook {
	t.Helper()
	subs, err := p.client.ListWebhooks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return subs
}

func (p *providerEnv) subscribe(t *testing.T, spec provider.WebhookSpec) provider.Webhook {
	t.Helper()
	w, err := p.client.CreateWebhook(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// webhooks runs `accounthealth webhooks ARGS` against the fake and checks
// its exit code.
func (p *providerEnv) webhooks(t *testing.T, code int, env []string, args ...string) (stdout, stderr string) {
	t.Helper()
	got, stdout, stderr := runBinary(t, append(p.env, env...), append([]string{"webhooks"}, args...)...)
	if got != code {
		t.Fatalf("webhooks %s: exit %d, want %d\n%s%s", strings.Join(args, " "), got, code, stdout, stderr)
	}
	return stdout, stderr
}

// Subscribing twice creates one subscription, and the second run says so.
func TestWebhooksCreateTwiceCreatesOne(t *testing.T) {
	p := startProvider(t, nil)
	p.webhooks(t, exitOK, nil, "create", "--url", hooksURL)
	subs := p.subscriptions(t)
	if len(subs) != 1 || !subs[0].Secret.Matches(fixtureSecret) {
		t.Fatalf("after one create: %+v", subs)
	}
	id := subs[0].ID

	stdout, _ := p.webhooks(t, exitOK, nil, "create", "--url", hooksURL)
	if want := "subscription " + id + " to " + hooksURL + " already exists with these settings; nothing created\n"; stdout != want {
		t.Errorf("second create said %q, want %q", stdout, want)
	}
	stdout, stderr := p.webhooks(t, exitOK, nil, "create", "--url", hooksURL, "-o", "json")
	var h provider.Webhook
	if err := json.Unmarshal([]byte(stdout), &h); err != nil || h.ID != id || !strings.Contains(stderr, "already exists") {
		t.Errorf("as JSON: %v\n%s%s", err, stdout, stderr)
	}
	if subs := p.subscriptions(t); len(subs) != 1 {
		t.Errorf("%d subscriptions after three creates, want 1", len(subs))
	}
}

// A subscription to the same URL with other settings is reported, not
// duplicated; --replace creates the new one and then deletes the old.
func TestWebhooksCreateWithOtherSettings(t *testing.T) {
	p := startProvider(t, nil)
	p.webhooks(t, exitOK, nil, "create", "--url", hooksURL)
	old := p.subscriptions(t)[0].ID

	_, stderr := p.webhooks(t, exitError, nil, "create", "--url", hooksURL, "--include-resource=false")
	for _, want := range []string{
		"nothing created: subscriptions to " + hooksURL + " exist with other settings",
		"\n  subscription " + old + ": include_resource on, want off\n",
		"`accounthealth webhooks delete ID`", "--replace: it creates the new subscription first",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("other include_resource: stderr lacks %q:\n%s", want, stderr)
		}
	}
	rotated := []string{"ACCOUNTHEALTH_WEBHOOK_SECRET=" + fixtureSecret + ",new-secret"}
	if _, stderr := p.webhooks(t, exitError, rotated, "create", "--url", hooksURL, "--name", "other"); !strings.Contains(stderr,
		"subscription "+old+`: name "accounthealth", want "other"; another secret than the one given`) {
		t.Errorf("other name and secret:\n%s", stderr)
	}
	if subs := p.subscriptions(t); len(subs) != 1 {
		t.Fatalf("%d subscriptions after refused creates, want 1", len(subs))
	}

	stdout, _ := p.webhooks(t, exitOK, rotated, "create", "--url", hooksURL, "--replace")
	subs := p.subscriptions(t)
	if len(subs) != 1 || subs[0].ID == old || !subs[0].Secret.Matches("new-secret") {
		t.Fatalf("after --replace: %+v", subs)
	}
	if !strings.HasPrefix(stdout, "created webhook "+subs[0].ID) || !strings.HasSuffix(stdout, "deleted webhook "+old+" (another secret than the one given)\n") {
		t.Errorf("--replace said:\n%s", stdout)
	}

	// A second subscription with the same settings is a duplicate.
	dup := p.subscribe(t, provider.WebhookSpec{Events: provider.AccountEvents(), Name: "accounthealth", URL: hooksURL, Secret: "new-secret", IncludeResource: true})
	_, stderr = p.webhooks(t, exitOK, rotated, "create", "--url", hooksURL)
	if want := "warning: subscription " + dup.ID + " to the same URL differs (the same settings as " + subs[0].ID + ": every event arrives twice): --replace deletes it"; !strings.Contains(stderr, want) {
		t.Errorf("duplicate: stderr lacks %q:\n%s", want, stderr)
	}
	p.webhooks(t, exitOK, rotated, "create", "--url", hooksURL, "--replace")
	if after := p.subscriptions(t); len(after) != 1 || after[0].ID != subs[0].ID {
		t.Errorf("after --replace of the duplicate: %+v", after)
	}
}

// webhooks list names every problem of every subscription, one per line.
func TestWebhooksListFlagsBlindSubscriptions(t *testing.T) {
	p := startProvider(t, nil)
	lean := p.subscribe(t, provider.WebhookSpec{Events: []string{"accounts.updated"}, Name: "lean", URL: hooksURL})
	elsewhere := p.subscribe(t, provider.WebhookSpec{Events: provider.AccountEvents(), Name: "old", URL: oldHooksURL, Secret: fixtureSecret, IncludeResource: true})
	public := []string{"ACCOUNTHEALTH_WEBHOOK_PUBLIC_URL=" + hooksURL}

	stdout, stderr := p.webhooks(t, exitOK, public, "list")
	if !strings.Contains(stdout, "subscription    "+lean.ID+"\nname            lean\nurl             "+hooksURL+"\nevents          accounts.updated\n") ||
		!strings.Contains(stdout, "\n\nsubscription    "+elsewhere.ID+"\n") {
		t.Errorf("records:\n%s", stdout)
	}
	for line := range strings.Lines(stdout) {
		if n := utf8.RuneCountInString(strings.TrimSuffix(line, "\n")); n > terminalWidth {
			t.Errorf("%d columns, want at most %d: %q", n, terminalWidth, line)
		}
	}
	want := []string{
		"warning: subscription " + lean.ID + ": has no secret",
		"warning: subscription " + lean.ID + ": delivers no accounts.added",
		"warning: subscription " + lean.ID + ": delivers no accounts.connected",
		"warning: subscription " + lean.ID + ": delivers no accounts.failed",
		"warning: subscription " + lean.ID + ": delivers no accounts.removed",
		"warning: subscription " + lean.ID + ": delivers accounts.updated without the account object (include_resource is off)",
		"warning: subscription " + elsewhere.ID + ": delivers account events to " + oldHooksURL + ", not to the service's " + hooksURL,
	}
	got := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("%d lines on stderr, want %d:\n%s", len(got), len(want), stderr)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("line %d: %s\nwant %s…", i+1, got[i], want[i])
		}
	}

	if _, stderr := p.webhooks(t, exitOK, nil, "list", "-o", "json"); !strings.Contains(stderr, "note: URL check skipped: no --webhook-public-url given") {
		t.Errorf("without the public URL:\n%s", stderr)
	}
	if _, stderr := p.webhooks(t, exitUsage, []string{"ACCOUNTHEALTH_WEBHOOK_PUBLIC_URL=hooks.example.com"}, "list"); !strings.Contains(stderr, "webhook-public-url: \"hooks.example.com\": want the http or https URL") {
		t.Errorf("a bad public URL:\n%s", stderr)
	}

	clean := startProvider(t, nil)
	clean.webhooks(t, exitOK, nil, "create", "--url", hooksURL)
	if _, stderr := clean.webhooks(t, exitOK, public, "list"); stderr != "checked 1 subscription: none leaves the service blind\n" {
		t.Errorf("a subscription by the book:\n%s", stderr)
	}
}

// startServe runs serve against the fake provider, its log in a logWatch.
func startServe(t *testing.T, p *providerEnv, env ...string) (*exec.Cmd, *logWatch) {
	t.Helper()
	log := newLogWatch()
	cmd := exec.Command(binary, "serve", "--data-dir", t.TempDir(),
		"--webhook-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0")
	cmd.Env = append(append(cleanEnv(), p.env...), env...)
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, log
}

const blindWarning = `level=WARN msg="webhook subscription leaves the service blind"`

// serve logs, at start, a warning per problem of the subscriptions.
func TestServeWarnsOfBlindSubscriptions(t *testing.T) {
	p := startProvider(t, nil)
	lean := p.subscribe(t, provider.WebhookSpec{Events: []string{"accounts.updated"}, Name: "lean", URL: hooksURL, Secret: fixtureSecret})
	_, log := startServe(t, p, "ACCOUNTHEALTH_WEBHOOK_PUBLIC_URL="+hooksURL)

	log.waitForText(t, `msg="webhook subscriptions checked" subscriptions=1 problems=5`)
	out := log.String()
	for _, problem := range []string{"missing_event", "no_include_resource"} {
		if !strings.Contains(out, blindWarning+" subscription="+lean.ID+" problem="+problem) {
			t.Errorf("no %s warning:\n%s", problem, out)
		}
	}
	if n := strings.Count(out, blindWarning); n != 5 {
		t.Errorf("%d warnings, want 5 (4 events missing, no account object):\n%s", n, out)
	}
	if strings.Contains(out, "URLs not checked") {
		t.Errorf("the URL was given, yet not checked:\n%s", out)
	}
}

// A provider that refuses the listing costs one warning line, and serve
// runs on.
func TestServeWarnsOnceWhenSubscriptionsCannotBeListed(t *testing.T) {
	p := startProvider(t, nil)
	_, log := startServe(t, p, "ACCOUNTHEALTH_ARGYLE_API_KEY_SECRET=wrong")
	log.waitForText(t, "msg=serving")
	out := log.waitForText(t, "webhook subscriptions not checked")
	if n := strings.Count(out, "level=WARN msg=\"webhook subscriptions not checked: listing them at the provider failed"); n != 1 || !strings.Contains(out, "401") {
		t.Errorf("%d warnings about the listing, want 1 naming the 401:\n%s", n, out)
	}
	if strings.Contains(out, blindWarning) || strings.Contains(out, "webhook subscriptions checked") {
		t.Errorf("findings without a listing:\n%s", out)
	}
}

// A provider that never answers holds up neither start nor shutdown.
func TestServeStartsWhileTheProviderHangs(t *testing.T) {
	listing := make(chan struct{}, 1)
	p := startProvider(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.URL.Path == "/v2/webhooks" {
				select {
				case listing <- struct{}{}:
				default:
				}
			}
			next.ServeHTTP(w, r)
		})
	})
	if err := p.fake.AddFault(providerfake.Fault{Route: "GET /v2/webhooks", Hang: true}); err != nil {
		t.Fatal(err)
	}
	cmd, log := startServe(t, p)
	select {
	case <-listing:
	case <-time.After(time.Minute):
		t.Fatalf("serve did not list the subscriptions within a minute:\n%s", log)
	}
	log.waitForText(t, "msg=serving")

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve ended with %v\n%s", err, log)
	}
	if out := log.String(); strings.Contains(out, "webhook subscriptions") {
		t.Errorf("a check cut short by shutdown was reported:\n%s", out)
	}
}
