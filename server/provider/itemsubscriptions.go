package provider

import (
	"fmt"
	"slices"

	"github.com/accounthealth/accounthealth/server/health"
)

// MaxItemsPerSubscription is the most items an items.updated subscription
// may list (the provider's limit).
const MaxItemsPerSubscription = 30

// isItemSubscription reports whether w delivers items.updated only: the
// subscriptions PlanItemSubscriptions keeps, told apart from those of
// account events.
func isItemSubscription(w Webhook) bool {
	return len(w.Events) == 1 && w.Events[0] == health.EventItemsUpdated
}

// ItemPlan says how to bring the items.updated subscriptions to a URL to
// exactly a set of items: create first, then delete, so that no item goes
// unwatched in between.
type ItemPlan struct {
	Keep   []Webhook
	Create []WebhookSpec
	Delete []Webhook
}

// PlanItemSubscriptions plans the items.updated subscriptions to spec.URL
// (with spec's name and secret; its events and include_resource are
// ignored) for exactly items, in groups of at most MaxItemsPerSubscription.
// A subscription is kept when its settings are spec's and every item it
// lists is wanted and listed by no subscription kept before it (in the
// provider's order); the others are deleted. The provider cannot change a
// subscription's items, so the wanted items that no kept subscription
// lists are grouped, in id order, into new ones. Planning again after the
// plan was carried out keeps everything: the plan is idempotent.
func PlanItemSubscriptions(subs []Webhook, spec WebhookSpec, items []string) ItemPlan {
	spec.Events, spec.IncludeResource, spec.Items = []string{health.EventItemsUpdated}, false, nil
	want := map[string]bool{}
	for _, it := range items {
		want[it] = true
	}
	covered := map[string]bool{}
	var plan ItemPlan
	for _, w := range subs {
		if !sameURL(w.URL, spec.URL) || !isItemSubscription(w) {
			continue
		}
		if len(differences(w, spec)) == 0 && coversNew(w.Config.Items, want, covered) {
			for _, it := range w.Config.Items {
				covered[it] = true
			}
			plan.Keep = append(plan.Keep, w)
			continue
		}
		plan.Delete = append(plan.Delete, w)
	}
	var left []string
	for it := range want {
		if !covered[it] {
			left = append(left, it)
		}
	}
	slices.Sort(left)
	for chunk := range slices.Chunk(left, MaxItemsPerSubscription) {
		s := spec
		s.Items = chunk
		plan.Create = append(plan.Create, s)
	}
	return plan
}

// coversNew: items is a subscription's list, all wanted, none covered yet.
func coversNew(items []string, want, covered map[string]bool) bool {
	if len(items) == 0 || len(items) > MaxItemsPerSubscription {
		return false
	}
	for _, it := range items {
		if !want[it] || covered[it] {
			return false
		}
	}
	return true
}

// String says what the plan does, in one line.
func (p ItemPlan) String() string {
	return fmt.Sprintf("%d kept, %d to create, %d to delete", len(p.Keep), len(p.Create), len(p.Delete))
}
