package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/service"
)

func runWebhooksItems(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "webhooks items", []subcommand{
		{"sync", "", "keep items.updated subscriptions for exactly the items the service's accounts use", runWebhooksItemsSync},
	}, args, stdout, stderr)
}

func runWebhooksItemsSync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("webhooks items sync", "webhooks items sync --url URL --webhook-secret SECRET [flags]",
		`Keeps the provider's items.updated subscriptions to --url for exactly the payroll platforms (items) that the
server's accounts use (those with an account not removed, as ListItemHealth tells), in groups of at most
`+fmt.Sprint(provider.MaxItemsPerSubscription)+` items, the provider's limit: subscriptions missing are created, those listing an item no
longer used or with other settings (name, secret) are replaced, created first and then deleted, so that no
item goes unwatched. Running it again changes nothing. It calls the server (--server) for the items and the
provider (--argyle-api-*) for the subscriptions; subscriptions to other events are left alone.`, stdout, stderr)
	var (
		pcfg    provider.Config
		spec    provider.WebhookSpec
		secrets secretList
	)
	providerAPIFlags(c.fs, &pcfg)
	c.fs.StringVar(&spec.URL, "url", "", "required: where the provider sends deliveries, e.g. https://hooks.example.com"+service.WebhookPath)
	c.fs.Var(&secrets, "webhook-secret", "required: the secret the provider signs with, as given to serve (of a comma-separated list the last one)")
	c.fs.StringVar(&spec.Name, "name", "accounthealth-items", `the subscriptions' name; every delivery carries it as "name"`)
	cl, _, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	switch {
	case spec.URL == "":
		return usageError{errors.New("url: required: the public address of serve's webhook route")}
	case len(secrets) == 0 || secrets[len(secrets)-1] == "":
		return usageError{errors.New("webhook-secret: required, the same as serve's, so that it can verify the deliveries")}
	}
	spec.Secret = secrets[len(secrets)-1]
	pc, err := provider.New(pcfg)
	if err != nil {
		return usageError{err}
	}
	var items []string
	for h, err := range cl.AllItemHealth(ctx) {
		if err != nil {
			return c.explain(err, "")
		}
		if h.GetAccounts() > removedCount(h) {
			items = append(items, h.GetItem())
		}
	}
	subs, err := pc.ListWebhooks(ctx)
	if err != nil {
		return err
	}
	plan := provider.PlanItemSubscriptions(subs, spec, items)
	return carryOut(ctx, pc, plan, len(items), stdout)
}

// removedCount is how many of the item's accounts are removed.
func removedCount(h *ahv1.ItemHealth) int64 {
	for _, c := range h.GetByState() {
		if c.GetState() == ahv1.HealthState_HEALTH_STATE_REMOVED {
			return c.GetCount()
		}
	}
	return 0
}

// carryOut creates, then deletes, as plan says, reporting each step.
func carryOut(ctx context.Context, pc *provider.Client, plan provider.ItemPlan, items int, stdout io.Writer) error {
	for _, s := range plan.Create {
		h, err := pc.CreateWebhook(ctx, s)
		if err != nil {
			return fmt.Errorf("creating a subscription for %d items: %w; run again to finish", len(s.Items), err)
		}
		fmt.Fprintf(stdout, "created subscription %s for %d items: %s\n", h.ID, len(s.Items), strings.Join(s.Items, ", "))
	}
	var errs []error
	for _, w := range plan.Delete {
		if err := pc.DeleteWebhook(ctx, w.ID); err != nil && !errors.Is(err, provider.ErrNotFound) {
			errs = append(errs, fmt.Errorf("deleting subscription %s: %w; run again to finish", w.ID, err))
			continue
		}
		fmt.Fprintf(stdout, "deleted subscription %s (%d items)\n", w.ID, len(w.Config.Items))
	}
	fmt.Fprintf(stdout, "%d items in use, in %d items.updated subscriptions: %d kept, %d created, %d deleted\n",
		items, len(plan.Keep)+len(plan.Create), len(plan.Keep), len(plan.Create), len(plan.Delete)-len(errs))
	return errors.Join(errs...)
}

func runItems(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "items", []subcommand{
		{"list", "", "payroll platforms (items), worst first: outages, then the most accounts needing attention", runItemsList},
	}, args, stdout, stderr)
}

func runItemsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("items list", "items list [flags]",
		`Lists the payroll platforms (items) the server knows, worst first: outages (reported by the provider, or
suspected from the accounts failing together), then by the accounts needing attention. RECENT is the accounts
that failed on the platform's side or at login in the last 15 minutes. See the README on item outages.`,
		stdout, stderr)
	var statuses enumFlag[ahv1.ItemStatus]
	c.fs.Var(&statuses, "status", "only items in this status: "+enumChoices(ahv1.ItemStatus(0).Descriptor()))
	cl, _, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	tw := newTable(stdout, false, "ITEM!", "STATUS", "SINCE", "ACCOUNTS", "FAILING", "RECENT", "REPORTED")
	n := 0
	for h, err := range cl.AllItemHealth(ctx, statuses.values...) {
		if err != nil {
			return c.explain(err, "")
		}
		n++
		if c.output == "json" {
			if err := printJSON(stdout, h); err != nil {
				return err
			}
			continue
		}
		failing := int64(0)
		for _, s := range h.GetByState() {
			switch s.GetState() {
			case ahv1.HealthState_HEALTH_STATE_AUTH_FAILED, ahv1.HealthState_HEALTH_STATE_DISCONNECTED, ahv1.HealthState_HEALTH_STATE_DEGRADED:
				failing += s.GetCount()
			}
		}
		if err := tw.add(h.GetItem(), enumName(h.GetStatus()), cellTime(h.GetStatusSince()), fmt.Sprint(h.GetAccounts()),
			fmt.Sprint(failing), fmt.Sprint(h.GetRecentFailures()), or(h.GetReported().GetStatus())); err != nil {
			return err
		}
	}
	if err := tw.flush(); err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(stderr, "no items: no account object naming one, and no items.updated, has been accepted")
	}
	return nil
}
