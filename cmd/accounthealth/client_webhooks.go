package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/accounthealth/accounthealth/server/provider"
)

// webhookEvents are the events this service derives health from.
var webhookEvents = []string{"accounts.added", "accounts.connected", "accounts.failed", "accounts.updated", "accounts.removed"}

func runWebhooks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "webhooks", []subcommand{
		{"list", "", "the webhook subscriptions at the provider", runWebhooksList},
		{"create", "", "subscribe this service's webhook URL to the account events it needs", runWebhooksCreate},
		{"delete", "ID", "delete a subscription", runWebhooksDelete},
	}, args, stdout, stderr)
}

// providerCommand is what the webhooks subcommands share: they call the
// provider's API directly, with the same flags (and environment) as serve.
type providerCommand struct {
	fs         *flag.FlagSet
	cfg        provider.Config
	output     string
	stdout     io.Writer
	positional []string
}

func newProviderCommand(name, synopsis, about string, stdout, stderr io.Writer, positional ...string) *providerCommand {
	p := &providerCommand{fs: newFlagSet(name, synopsis, stderr), stdout: stdout, positional: positional}
	p.fs.StringVar(&p.cfg.BaseURL, "argyle-api-url", provider.DefaultBaseURL, "the provider's v2 API: sandbox, production, or a fake provider's URL")
	p.fs.StringVar(&p.cfg.KeyID, "argyle-api-key-id", "", "provider API key id")
	p.fs.StringVar(&p.cfg.KeySecret, "argyle-api-key-secret", "", "provider API key secret")
	registerOutput(p.fs, &p.output)
	flagUsage := p.fs.Usage
	p.fs.Usage = func() {
		flagUsage()
		fmt.Fprintf(stderr, "\n%s\n\nExit codes: 0 done; 1 the provider refused or could not be reached (the message says why); 2 the command line is wrong.\n", about)
	}
	return p
}

// connect parses the command line and makes the provider's client.
func (p *providerCommand) connect(args []string) (*provider.Client, []string, error) {
	names, err := parseCommand(p.fs, args, p.positional, &p.output)
	if err != nil {
		return nil, nil, err
	}
	pc, err := provider.New(p.cfg)
	if err != nil {
		return nil, nil, usageError{err}
	}
	return pc, names, nil
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

func runWebhooksList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	p := newProviderCommand("webhooks list", "webhooks list [flags]", "Lists the provider's webhook subscriptions for this API key.", stdout, stderr)
	pc, _, err := p.connect(args)
	if err != nil {
		return err
	}
	hooks, err := pc.ListWebhooks(ctx)
	if err != nil {
		return p.explain(err)
	}
	if p.output == "json" {
		for _, h := range hooks {
			if err := p.printJSON(h); err != nil {
				return err
			}
		}
		return nil
	}
	if len(hooks) == 0 {
		fmt.Fprintln(stderr, "no webhook subscriptions: `accounthealth webhooks create` makes one")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tEVENTS\tACCOUNT OBJECT\tLAST SENT\tURL")
	for _, h := range hooks {
		resource, sent := "no", "never"
		if h.Config.IncludeResource {
			resource = "yes"
		}
		if !h.LastSentAt.IsZero() {
			sent = h.LastSentAt.Local().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, h.Name, strings.Join(h.Events, ","), resource, sent, h.URL)
	}
	return tw.Flush()
}

func runWebhooksCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	p := newProviderCommand("webhooks create", "webhooks create --url URL --webhook-secret SECRET [flags]",
		`Subscribes --url, the public address of serve's webhook route (`+"`POST /v1/webhooks/argyle`"+`), to the account
events this service derives health from, with the account object in each delivery. The provider signs the
deliveries with --webhook-secret; serve must verify them with the same one (ACCOUNTHEALTH_WEBHOOK_SECRET
configures both).`, stdout, stderr)
	spec := provider.WebhookSpec{}
	var secrets secretList
	var events listFlag
	p.fs.StringVar(&spec.URL, "url", "", "required: where the provider sends deliveries, e.g. https://hooks.example.com/v1/webhooks/argyle")
	p.fs.Var(&secrets, "webhook-secret", "required: the secret the provider signs with, as given to serve (of a comma-separated list the last one)")
	p.fs.StringVar(&spec.Name, "name", "accounthealth", `the subscription's name; every delivery carries it as "name"`)
	p.fs.Var(&events, "events", "events to subscribe to, comma-separated (default "+strings.Join(webhookEvents, ",")+")")
	p.fs.BoolVar(&spec.IncludeResource, "include-resource", true, "put the account object in every account delivery (the service uses it to order late deliveries)")
	pc, _, err := p.connect(args)
	if err != nil {
		return err
	}
	var errs []error
	if spec.URL == "" {
		errs = append(errs, errors.New("url: required: the public address of serve's webhook route"))
	}
	if len(secrets) == 0 || secrets[len(secrets)-1] == "" {
		errs = append(errs, errors.New("webhook-secret: required, the same as serve's, so that it can verify the deliveries"))
	}
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	spec.Secret, spec.Events = secrets[len(secrets)-1], webhookEvents
	if len(events) > 0 {
		spec.Events = events
	}
	h, err := pc.CreateWebhook(ctx, spec)
	if err != nil {
		return p.explain(err)
	}
	if p.output == "json" {
		return p.printJSON(h)
	}
	_, err = fmt.Fprintf(stdout, "created webhook %s (%s): %s to %s\n", h.ID, h.Name, strings.Join(h.Events, ", "), h.URL)
	return err
}

func runWebhooksDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	p := newProviderCommand("webhooks delete", "webhooks delete ID [flags]",
		"Deletes a webhook subscription at the provider: its deliveries stop.", stdout, stderr, "ID")
	pc, names, err := p.connect(args)
	if err != nil {
		return err
	}
	id := names[0]
	if err := pc.DeleteWebhook(ctx, id); err != nil {
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
