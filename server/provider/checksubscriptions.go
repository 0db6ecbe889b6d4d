package provider

import (
	"fmt"
	"slices"

	"github.com/accounthealth/accounthealth/server/health"
)

// Expectations are what the service needs of the subscriptions that feed
// it, as serve is configured.
type Expectations struct {
	// URL is the service's webhook address as the provider calls it
	// (serve's --webhook-public-url). Empty: URLs are not checked, and every
	// subscription that delivers account events counts as the service's.
	URL string
	// Secrets are the secrets the service verifies deliveries with; a
	// subscription signing with none of them is flagged. Empty: secrets
	// are not compared, only their absence is flagged.
	Secrets []string
	// AllowUnsigned is set when the service accepts unsigned deliveries:
	// a subscription without a secret is then no problem.
	AllowUnsigned bool
}

// Problem names what a Finding is about.
type Problem string

// The problems CheckSubscriptions finds.
const (
	// ProblemNoSubscription: nothing delivers account events to the service.
	ProblemNoSubscription Problem = "no_subscription"
	// ProblemMissingEvent: an account event reaches the service by no
	// subscription.
	ProblemMissingEvent Problem = "missing_event"
	// ProblemLeanUpdates: accounts.updated reaches the service only without
	// the account object.
	ProblemLeanUpdates Problem = "no_include_resource"
	// ProblemNoSecret: deliveries are unsigned and the service refuses them.
	ProblemNoSecret Problem = "no_secret"
	// ProblemOtherSecret: deliveries are signed with a secret the service
	// does not have, and it refuses them.
	ProblemOtherSecret Problem = "other_secret"
	// ProblemOtherURL: account events go to another URL than the service's.
	ProblemOtherURL Problem = "other_url"
)

// Finding is one reason the service is blind, or partly so, to accounts.
type Finding struct {
	// Subscription is the id of the subscription at fault; empty for
	// ProblemNoSubscription.
	Subscription string
	Problem      Problem
	// Message says in one line what the service misses and what to do.
	Message string
}

// String prints the finding as one line.
func (f Finding) String() string {
	if f.Subscription == "" {
		return f.Message
	}
	return "subscription " + f.Subscription + ": " + f.Message
}

// CheckSubscriptions returns, in the order of subs and one reason each,
// what in the subscriptions leaves the service blind: an account event
// that no subscription to the service delivers, accounts.updated only
// without the account object, deliveries the service refuses (unsigned,
// or signed with a secret it lacks), and account events sent to another
// URL. Events are checked over all of the service's subscriptions
// together, so that one subscription per event is no problem. Nil: none.
func CheckSubscriptions(subs []Webhook, want Expectations) []Finding {
	toService := func(w Webhook) bool {
		if want.URL == "" {
			return w.deliversAccountEvents()
		}
		return sameURL(w.URL, want.URL)
	}
	var covered []string
	fullUpdates, fed := false, false
	for _, w := range subs {
		if !toService(w) || !w.deliversAccountEvents() {
			continue
		}
		fed = true
		covered = append(covered, slices.DeleteFunc(AccountEvents(), func(e string) bool { return !w.delivers(e) })...)
		fullUpdates = fullUpdates || (w.delivers(health.EventAccountsUpdated) && w.Config.IncludeResource)
	}
	var out []Finding
	if !fed {
		out = append(out, Finding{Problem: ProblemNoSubscription, Message: noSubscription(want.URL)})
	}
	for _, w := range subs {
		switch {
		case toService(w):
			out = append(out, checkSecret(w, want)...)
			if w.deliversAccountEvents() {
				out = append(out, checkEvents(w, covered, fullUpdates)...)
			}
		case w.deliversAccountEvents():
			out = append(out, Finding{Subscription: w.ID, Problem: ProblemOtherURL, Message: fmt.Sprintf(
				"delivers account events to %s, not to the service's %s: the service never sees them; if that is the service's address, set --webhook-public-url to it, else delete this leftover (`accounthealth webhooks delete %s`)",
				w.URL, want.URL, w.ID)})
		}
	}
	return out
}

func noSubscription(url string) string {
	if url == "" {
		return "no subscription delivers account events: the service hears of no account; subscribe it with `accounthealth webhooks create --url <its public webhook URL>`"
	}
	return fmt.Sprintf("no subscription delivers account events to %s: the service hears of no account; subscribe it with `accounthealth webhooks create --url %s`", url, url)
}

// checkEvents flags the account events that reach the service by no
// subscription, and lean accounts.updated when no subscription sends the
// account object with them.
func checkEvents(w Webhook, covered []string, fullUpdates bool) []Finding {
	fix := fmt.Sprintf("`accounthealth webhooks create --url %s --replace` subscribes the service to every account event with the account object, and deletes this one", w.URL)
	var out []Finding
	for _, e := range AccountEvents() {
		if !slices.Contains(covered, e) {
			out = append(out, Finding{Subscription: w.ID, Problem: ProblemMissingEvent, Message: fmt.Sprintf(
				"delivers no %s, nor does any other of the service's subscriptions: %s; %s", e, eventMeaning[e], fix)})
		}
	}
	if w.delivers(health.EventAccountsUpdated) && !w.Config.IncludeResource && !fullUpdates {
		why := "include_resource is off"
		if slices.Contains(w.Events, EveryEvent) {
			why = `a "*" subscription cannot carry include_resource`
		}
		out = append(out, Finding{Subscription: w.ID, Problem: ProblemLeanUpdates, Message: fmt.Sprintf(
			"delivers accounts.updated without the account object (%s): a disconnection is not in the delivery, so health stays unconfirmed until the service fetches the account from the provider; %s", why, fix)})
	}
	return out
}

// checkSecret flags deliveries the service refuses.
func checkSecret(w Webhook, want Expectations) []Finding {
	fix := fmt.Sprintf("`accounthealth webhooks create --url %s --webhook-secret <serve's secret> --replace` makes one signed with serve's secret and deletes this one", w.URL)
	switch {
	case !w.Secret.IsSet() && !want.AllowUnsigned:
		return []Finding{{Subscription: w.ID, Problem: ProblemNoSecret, Message: "has no secret: the provider signs nothing, and the service refuses unsigned deliveries (unless --allow-unsigned-webhooks); " + fix}}
	case w.Secret.IsSet() && len(want.Secrets) > 0 && !slices.ContainsFunc(want.Secrets, w.Secret.Matches):
		return []Finding{{Subscription: w.ID, Problem: ProblemOtherSecret, Message: "signs with a secret that is none of the service's --webhook-secret: the service refuses its deliveries; give serve that secret too, or " + fix}}
	}
	return nil
}
