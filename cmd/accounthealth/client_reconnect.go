package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

func runHealthRefresh(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("health refresh", "health refresh ID [flags]",
		`Has the server fetch the account from the provider now and record the answer like a webhook with the
account object (it never overrides a newer one), then shows the resulting health. An account the provider
no longer has ends REMOVED. The server needs the provider's API key.`,
		stdout, stderr, "ID")
	cl, names, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := cl.Refresh(ctx, names[0])
	if err != nil {
		// Not found means unknown to the provider too: the server says so.
		return c.explain(err, "")
	}
	if c.output == "json" {
		return printJSON(stdout, resp)
	}
	h := resp.GetAccountHealth()
	_, err = fmt.Fprintf(stdout, "fetched account %s from the provider (%s): %s since %s; %s\n", h.GetAccountId(),
		enumName(resp.GetOutcome()), enumName(h.GetState()), when(h.GetStateSince()), remedyText(h.GetRemedy()))
	return err
}

func runReconnectLink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("reconnect-link", "reconnect-link ID [flags]",
		`Prints what opens Link at the account's Reconnect or login screen: a fresh user token (valid one hour; a
secret: hand it to the user's Link session only), the Link parameters, the remedy, and the user's original
invite URL when they reached Link through one. Only for accounts whose remedy happens in Link
(DISCONNECTED, AUTH_FAILED). The server needs the provider's API key.`,
		stdout, stderr, "ID")
	cl, names, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := cl.ReconnectLink(ctx, names[0])
	if err != nil {
		return c.explain(err, names[0])
	}
	if c.output == "json" {
		return printJSON(stdout, resp)
	}
	var d details
	row := d.row
	row("account", resp.GetAccountId())
	row("user", resp.GetUserId())
	row("remedy", remedyText(resp.GetRemedy()))
	row("expires", when(resp.GetUserTokenExpiresAt()))
	for _, k := range slices.Sorted(maps.Keys(resp.GetLinkParameters())) {
		row("link "+k, resp.GetLinkParameters()[k])
	}
	if resp.GetInviteUrl() != "" {
		row("invite", resp.GetInviteUrl()+" (the user's original invite; `reconnect-invite "+resp.GetAccountId()+"` re-sends it)")
	}
	return d.print(stdout)
}

func runReconnectInvite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("reconnect-invite", "reconnect-invite ID [flags]",
		`Re-sends the original invite of the account's user, so they come back to Link as the same user (a new
invite would create a second user). A user is sent their invite at most once per the server's
--invite-resend-interval. The server needs the provider's API key.`,
		stdout, stderr, "ID")
	cl, names, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := cl.ResendInvite(ctx, names[0])
	if err != nil {
		return c.explain(err, names[0])
	}
	if c.output == "json" {
		return printJSON(stdout, resp)
	}
	_, err = fmt.Fprintf(stdout, "re-sent invite %s to user %s (%s); it may be sent again from %s\n",
		resp.GetInviteId(), resp.GetUserId(), or(resp.GetInviteStatus()), when(resp.GetNextResendAt()))
	return err
}

func runSync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("sync", "sync [flags]",
		`Has the server backfill every account from the provider's account list, recording each account object like
a webhook that carries it (it never overrides a newer one). Progress goes to stderr: accounts seen, applied
(health changed), per second, and an estimate of the time left when one can be guessed. Interrupted, the
next run resumes after the last page committed; a provider outage pauses it rather than failing it. A
backfill that finished is not run again unless --restart. The server needs the provider's API key.`,
		stdout, stderr)
	restart := c.fs.Bool("restart", false, "start again from the provider's first page, even after a backfill finished")
	cl, _, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	var last *ahv1.SyncAccountsResponse
	err = cl.Sync(ctx, *restart, func(p *ahv1.SyncAccountsResponse) {
		last = p
		fmt.Fprintln(stderr, syncLine(p))
	})
	if err != nil {
		return c.explain(err, "")
	}
	if c.output == "json" {
		return printJSON(stdout, last)
	}
	_, err = fmt.Fprintf(stdout, "backfill done: %d accounts in %d pages, %d applied (the others were known already)\n",
		last.GetSeen(), last.GetPages(), last.GetApplied())
	return err
}

// syncLine is one line of a backfill's progress.
func syncLine(p *ahv1.SyncAccountsResponse) string {
	line := fmt.Sprintf("seen %d, applied %d, %.0f accounts/s", p.GetSeen(), p.GetApplied(), p.GetAccountsPerSecond())
	switch {
	case p.GetWaiting() != "":
		line += "; waiting for the provider: " + p.GetWaiting()
	case p.GetDone():
		line += "; done"
	case p.GetEta() != nil:
		line += "; about " + shortDuration(p.GetEta().AsDuration().Round(time.Second)) + " left"
	default:
		line += "; time left unknown (the provider does not say how many accounts it holds)"
	}
	return line
}
