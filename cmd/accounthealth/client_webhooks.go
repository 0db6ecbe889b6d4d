package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/service"
)

func runWebhooks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "webhooks", []subcommand{
		{"list", "", "the webhook subscriptions at the provider", runWebhooksList},
		{"create", "", "subscribe this service's webhook URL to the account events it needs", runWebhooksCreate},
		{"delete", "ID", "delete a subscription", runWebhooksDelete},
		{"items", "sync", "keep items.updated subscriptions for exactly the items the service's accounts use", runWebhooksItems},
	}, args, stdout, stderr)
}

// providerCommand is what the webhooks subcommands share: they call the
// provider's API directly, with the same flags (and environment) as serve.
type providerCommand struct {
	fs             *flag.FlagSet
	cfg            provider.Config
	client         *provider.Client // set by connect
	output         string
	stdout, stderr io.Writer
	positional     []string
}

func newProviderCommand(name, synopsis, about string, stdout, stderr io.Writer, positional ...string) *providerCommand {
	p := &providerCommand{fs: newFlagSet(name, synopsis, stderr), stdout: stdout, stderr: stderr, positional: positional}
	providerAPIFlags(p.fs, &p.cfg)
	registerOutput(p.fs, &p.output)
	flagUsage := p.fs.Usage
	p.fs.Usage = func() {
		flagUsage()
		fmt.Fprintf(stderr, "\n%s\n\nExit codes: 0 done; 1 the provider refused or could not be reached, or create found subscriptions with other settings (the message says why); 2 the command line is wrong.\n", about)
	}
	return p
}

// providerAPIFlags adds the provider API's flags, with serve's names.
func providerAPIFlags(fs *flag.FlagSet, cfg *provider.Config) {
	fs.StringVar(&cfg.BaseURL, "argyle-api-url", provider.DefaultBaseURL, "the provider's v2 API: sandbox, production, or a fake provider's URL")
	fs.StringVar(&cfg.KeyID, "argyle-api-key-id", "", "provider API key id")
	fs.StringVar(&cfg.KeySecret, "argyle-api-key-secret", "", "provider API key secret")
}

// connect parses the command line, makes the provider's client and
// returns the positional arguments.
func (p *providerCommand) connect(args []string) ([]string, error) {
	names, err := parseCommand(p.fs, args, p.positional, &p.output)
	if err != nil {
		return nil, err
	}
	if p.client, err = provider.New(p.cfg); err != nil {
		return nil, usageError{err}
	}
	return names, nil
}

// explain adds what to check to a failed call; the provider's errors
// already say what it answered.
func (p *providerCommand) explain(err error) error {
	if errors.Is(err, provider.ErrUnavailable) || errors.Is(err, provider.ErrRateLimited) {
		return fmt.Errorf("%w — is --argyle-api-url (%s) right, and the provider reachable? try again later", err, p.cfg.BaseURL)
	}
	return err
}

// printJSON writes v as one line of JSON, with the provider's field names.
func (p *providerCommand) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err == nil {
		_, err = fmt.Fprintf(p.stdout, "%s\n", b)
	}
	return err
}

// say writes a line for people: on stdout, or on stderr when stdout is
// JSON for scripts.
func (p *providerCommand) say(format string, args ...any) {
	w := p.stdout
	if p.output == "json" {
		w = p.stderr
	}
	fmt.Fprintf(w, format+"\n", args...)
}

// show prints a subscription as JSON, or the line about it as a table.
func (p *providerCommand) show(h provider.Webhook, format string, args ...any) error {
	if p.output == "json" {
		if err := p.printJSON(h); err != nil {
			return err
		}
	}
	p.say(format, args...)
	return nil
}

func runWebhooksList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	p := newProviderCommand("webhooks list", "webhooks list [flags]",
		`Lists the provider's webhook subscriptions for this API key, then, on stderr, every problem that leaves the
service blind, one reason per line (serve logs the same at start): an account event that reaches it by no
subscription, accounts.updated without the account object, unsigned deliveries, a secret serve lacks, account
events sent to another URL than --webhook-public-url. Give it serve's settings (the same environment does).`, stdout, stderr)
	want := expectationFlags(p.fs)
	if _, err := p.connect(args); err != nil {
		return err
	}
	if err := checkPublicURL(want.URL); err != nil {
		return usageError{err}
	}
	hooks, err := p.client.ListWebhooks(ctx)
	if err != nil {
		return p.explain(err)
	}
	if err := p.printWebhooks(hooks); err != nil {
		return err
	}
	reportFindings(stderr, hooks, *want)
	return nil
}

// printWebhooks writes the subscriptions for people or as JSON lines.
func (p *providerCommand) printWebhooks(hooks []provider.Webhook) error {
	if p.output == "json" {
		for _, h := range hooks {
			if err := p.printJSON(h); err != nil {
				return err
			}
		}
		return nil
	}
	// A record each, not a table: an id and a URL, both to be read whole,
	// leave a 100-column row no room for the rest.
	for i, h := range hooks {
		sent := "never"
		if !h.LastSentAt.IsZero() {
			sent = h.LastSentAt.Local().Format(time.RFC3339)
		}
		var d details
		d.row("subscription", h.ID)
		d.row("name", or(h.Name))
		d.row("url", h.URL)
		d.row("events", strings.Join(h.Events, ", "))
		d.row("account object", yesNo(h.Config.IncludeResource))
		d.row("signed", yesNo(h.Secret.IsSet()))
		d.row("last sent", sent)
		if i > 0 {
			fmt.Fprintln(p.stdout)
		}
		if err := d.print(p.stdout); err != nil {
			return err
		}
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// publicURLUsage documents --webhook-public-url, for serve and webhooks list.
const publicURLUsage = "this service's webhook address as the provider calls it, e.g. https://hooks.example.com" + service.WebhookPath + "; subscriptions sending account events elsewhere are reported (empty: URLs are not checked)"

// expectationFlags adds the settings of serve that the subscriptions are
// checked against, with serve's names, so that one environment sets both.
func expectationFlags(fs *flag.FlagSet) *provider.Expectations {
	want := &provider.Expectations{}
	fs.StringVar(&want.URL, "webhook-public-url", "", publicURLUsage)
	fs.Var((*secretList)(&want.Secrets), "webhook-secret", "serve's webhook secrets, comma-separated: a subscription signing with none of them is reported (empty: not compared)")
	fs.BoolVar(&want.AllowUnsigned, "allow-unsigned-webhooks", false, "serve accepts unsigned deliveries: a subscription without a secret is no problem")
	return want
}

// checkPublicURL refuses a --webhook-public-url that no subscription
// could have.
func checkPublicURL(raw string) error {
	if raw == "" {
		return nil
	}
	if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook-public-url: %q: want the http or https URL the provider delivers to, e.g. https://hooks.example.com%s", raw, service.WebhookPath)
	}
	return nil
}

// reportFindings writes one line per problem CheckSubscriptions finds, and
// says which checks it skipped for want of a setting.
func reportFindings(w io.Writer, hooks []provider.Webhook, want provider.Expectations) {
	findings := provider.CheckSubscriptions(hooks, want)
	for _, f := range findings {
		fmt.Fprintf(w, "warning: %s\n", f)
	}
	if want.URL == "" {
		fmt.Fprintln(w, "note: URL check skipped: no --webhook-public-url given, so every subscription sending account events counts as the service's")
	}
	if len(want.Secrets) == 0 {
		fmt.Fprintln(w, "note: secret check skipped: no --webhook-secret given, so only subscriptions without a secret are reported")
	}
	if len(findings) == 0 {
		noun := "subscriptions"
		if len(hooks) == 1 {
			noun = "subscription"
		}
		fmt.Fprintf(w, "checked %d %s: none leaves the service blind\n", len(hooks), noun)
	}
}

func runWebhooksCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	p := newProviderCommand("webhooks create", "webhooks create --url URL --webhook-secret SECRET [--replace] [flags]",
		`Subscribes --url, the public address of serve's webhook route (`+"`POST "+service.WebhookPath+"`"+`), to the account
events this service derives health from, with the account object in each delivery. The provider signs the
deliveries with --webhook-secret; serve must verify them with the same one (ACCOUNTHEALTH_WEBHOOK_SECRET
configures both).

Running it again creates nothing: a subscription to --url with the same settings (the same set of events,
include_resource, name and secret; the provider lists each subscription's secret, so it is compared too)
is reported and kept. One with other settings is reported with its differences, and nothing is created,
since both would deliver every event: delete it first, or pass --replace, which creates the new
subscription and then deletes the others to --url, so that no delivery is missed (to rotate the secret:
serve with --webhook-secret old,new, then create --replace with the new one last).`, stdout, stderr)
	spec, replace, err := p.parseCreate(args)
	if err != nil {
		return err
	}
	existing, err := p.client.ListWebhooks(ctx)
	if err != nil {
		return p.explain(err)
	}
	m := provider.MatchSubscriptions(existing, spec)
	if m.Same == nil && len(m.Others) > 0 && !replace {
		return conflict(spec.URL, m.Others)
	}
	if m.Same != nil {
		if err := p.show(*m.Same, "subscription %s to %s already exists with these settings; nothing created", m.Same.ID, m.Same.URL); err != nil {
			return err
		}
	} else {
		h, err := p.client.CreateWebhook(ctx, spec)
		if err != nil {
			return p.explain(err)
		}
		if err := p.show(h, "created webhook %s (%s): %s to %s", h.ID, h.Name, strings.Join(h.Events, ", "), h.URL); err != nil {
			return err
		}
	}
	if !replace {
		for _, o := range m.Others {
			fmt.Fprintf(p.stderr, "warning: subscription %s to the same URL differs (%s): --replace deletes it, or `accounthealth webhooks delete %s`\n",
				o.Webhook.ID, strings.Join(o.Differences, "; "), o.Webhook.ID)
		}
		return nil
	}
	return p.deleteOthers(ctx, m.Others)
}

// parseCreate reads create's command line into a spec, and connects.
func (p *providerCommand) parseCreate(args []string) (provider.WebhookSpec, bool, error) {
	spec := provider.WebhookSpec{}
	var secrets secretList
	var events listFlag
	p.fs.StringVar(&spec.URL, "url", "", "required: where the provider sends deliveries, e.g. https://hooks.example.com"+service.WebhookPath)
	p.fs.Var(&secrets, "webhook-secret", "required: the secret the provider signs with, as given to serve (of a comma-separated list the last one)")
	p.fs.StringVar(&spec.Name, "name", "accounthealth", `the subscription's name; every delivery carries it as "name"`)
	p.fs.Var(&events, "events", "events to subscribe to, comma-separated (default "+strings.Join(provider.AccountEvents(), ",")+")")
	p.fs.BoolVar(&spec.IncludeResource, "include-resource", true, "put the account object in every account delivery (the service uses it to order late deliveries)")
	replace := p.fs.Bool("replace", false, "create the subscription even when others to --url have other settings, then delete those")
	if _, err := p.connect(args); err != nil {
		return spec, false, err
	}
	var errs []error
	if spec.URL == "" {
		errs = append(errs, errors.New("url: required: the public address of serve's webhook route"))
	}
	if len(secrets) == 0 || secrets[len(secrets)-1] == "" {
		errs = append(errs, errors.New("webhook-secret: required, the same as serve's, so that it can verify the deliveries"))
	}
	if err := errors.Join(errs...); err != nil {
		return spec, false, usageError{err}
	}
	spec.Secret, spec.Events = secrets[len(secrets)-1], provider.AccountEvents()
	if len(events) > 0 {
		spec.Events = events
	}
	return spec, *replace, nil
}

// conflict is create's answer when subscriptions to the URL exist, all
// with other settings than asked.
func conflict(to string, others []provider.Mismatch) error {
	var b strings.Builder
	fmt.Fprintf(&b, "nothing created: subscriptions to %s exist with other settings, and a second one would deliver every event twice:", to)
	for _, o := range others {
		fmt.Fprintf(&b, "\n  subscription %s: %s", o.Webhook.ID, strings.Join(o.Differences, "; "))
	}
	b.WriteString("\ndelete them (`accounthealth webhooks delete ID`) and create again, or create again with --replace: it creates the new subscription first, then deletes these, so that no delivery is missed")
	return errors.New(b.String())
}

// deleteOthers deletes the subscriptions --replace replaces.
func (p *providerCommand) deleteOthers(ctx context.Context, others []provider.Mismatch) error {
	var errs []error
	for _, o := range others {
		id := o.Webhook.ID
		if err := p.client.DeleteWebhook(ctx, id); err != nil && !errors.Is(err, provider.ErrNotFound) {
			errs = append(errs, fmt.Errorf("deleting the replaced subscription %s: %w; until `accounthealth webhooks delete %s` succeeds, its deliveries go on", id, p.explain(err), id))
			continue
		}
		p.say("deleted webhook %s (%s)", id, strings.Join(o.Differences, "; "))
	}
	return errors.Join(errs...)
}

func runWebhooksDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	p := newProviderCommand("webhooks delete", "webhooks delete ID [flags]",
		"Deletes a webhook subscription at the provider: its deliveries stop.", stdout, stderr, "ID")
	names, err := p.connect(args)
	if err != nil {
		return err
	}
	id := names[0]
	if err := p.client.DeleteWebhook(ctx, id); err != nil {
		if errors.Is(err, provider.ErrNotFound) {
			return fmt.Errorf("webhook %s not found at the provider — `accounthealth webhooks list` shows the ids", id)
		}
		return p.explain(err)
	}
	if p.output == "json" {
		return p.printJSON(map[string]any{"id": id, "deleted": true})
	}
	_, err = fmt.Fprintf(stdout, "deleted webhook %s\n", id)
	return err
}

// subscriptionCheckTimeout bounds serve's start-up check of the
// subscriptions. The check runs beside start-up and delays nothing; the
// bound keeps a hanging provider from holding it open.
const subscriptionCheckTimeout = 20 * time.Second

// checkSubscriptionsAtStart logs, for serve and without holding up its
// start, a warning per problem CheckSubscriptions finds in the provider's
// subscriptions, or one when they cannot be listed. Without a provider key
// it does nothing. The func it returns stops the check and waits for it.
func checkSubscriptionsAtStart(ctx context.Context, cfg service.Config, publicURL string, logger *slog.Logger) (stop func()) {
	if cfg.Provider.KeyID == "" {
		return func() {}
	}
	want := provider.Expectations{URL: publicURL, Secrets: cfg.WebhookSecrets, AllowUnsigned: cfg.AllowUnsignedWebhooks}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		logFindings(ctx, cfg.Provider, want, logger)
	}()
	return func() { cancel(); <-done }
}

func logFindings(ctx context.Context, pcfg provider.Config, want provider.Expectations, logger *slog.Logger) {
	pc, err := provider.New(pcfg)
	if err != nil {
		logger.Warn("webhook subscriptions not checked: the provider settings are wrong", "error", err)
		return
	}
	listing, cancel := context.WithTimeout(ctx, subscriptionCheckTimeout)
	defer cancel()
	hooks, err := pc.ListWebhooks(listing)
	switch {
	case ctx.Err() != nil:
		return // shutting down: nobody is waiting for the answer
	case err != nil:
		logger.Warn("webhook subscriptions not checked: listing them at the provider failed; `accounthealth webhooks list` checks them later",
			"error", err, "timeout", subscriptionCheckTimeout)
		return
	}
	findings := provider.CheckSubscriptions(hooks, want)
	for _, f := range findings {
		logger.Warn("webhook subscription leaves the service blind", "subscription", f.Subscription, "problem", string(f.Problem), "detail", f.Message)
	}
	if want.URL == "" {
		logger.Info("webhook subscription URLs not checked: set --webhook-public-url to the address the provider delivers to")
	}
	logger.Info("webhook subscriptions checked", "subscriptions", len(hooks), "problems", len(findings))
}
