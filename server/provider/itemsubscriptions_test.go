package provider

import (
	"fmt"
	"slices"
	"testing"

	"github.com/accounthealth/accounthealth/server/health"
)

func itemIDs(from, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("item_%09d", from+i)
	}
	return ids
}

// carryOut is what the provider holds after plan: kept and created.
func carryOut(plan ItemPlan, others []Webhook) []Webhook {
	subs := append(slices.Clone(others), plan.Keep...)
	for i, s := range plan.Create {
		subs = append(subs, Webhook{ID: fmt.Sprintf("new-%d-%s", i, s.Items[0]), Name: s.Name, URL: s.URL, Events: s.Events,
			Config: WebhookConfig{Items: s.Items}, Secret: WebhookSecret{value: s.Secret}})
	}
	return subs
}

func TestPlanItemSubscriptions(t *testing.T) {
	spec := WebhookSpec{Name: "accounthealth-items", URL: "https://hooks.example.com/v1/webhooks/argyle", Secret: "s3cret"}
	accounts := Webhook{ID: "accounts", Name: "accounthealth", URL: spec.URL, Events: AccountEvents(), Config: WebhookConfig{IncludeResource: true}}
	items := itemIDs(0, 70)

	first := PlanItemSubscriptions([]Webhook{accounts}, spec, items)
	var sizes []int
	for _, c := range first.Create {
		sizes = append(sizes, len(c.Items))
		if !slices.Equal(c.Events, []string{health.EventItemsUpdated}) || c.IncludeResource || c.Secret != spec.Secret {
			t.Errorf("created %v, want items.updated only, signed", c)
		}
	}
	if fmt.Sprint(sizes) != "[30 30 10]" || len(first.Keep) != 0 || len(first.Delete) != 0 {
		t.Fatalf("70 items: %v, creating groups of %v; want groups of 30, 30, 10, the account subscription left alone", first, sizes)
	}
	subs := carryOut(first, []Webhook{accounts})
	if again := PlanItemSubscriptions(subs, spec, items); len(again.Create) != 0 || len(again.Delete) != 0 || len(again.Keep) != 3 {
		t.Errorf("planning again: %v, want the 3 kept", again)
	}

	// One item gone, two new: the group that listed it is replaced, its
	// 29 others and the 2 new in groups of 30 and 1.
	changed := append(slices.Delete(slices.Clone(items), 35, 36), itemIDs(100, 2)...)
	plan := PlanItemSubscriptions(subs, spec, changed)
	if len(plan.Keep) != 2 || len(plan.Delete) != 1 || len(plan.Create) != 2 || len(plan.Create[0].Items) != 30 || len(plan.Create[1].Items) != 1 {
		t.Errorf("an item gone, two new: %v, creating %v", plan, plan.Create)
	}
	listed := map[string]int{}
	for _, w := range carryOut(plan, nil) {
		for _, it := range w.Config.Items {
			listed[it]++
		}
	}
	for _, it := range changed {
		if listed[it] != 1 {
			t.Errorf("item %s listed by %d subscriptions, want 1", it, listed[it])
		}
	}
	if len(listed) != len(changed) {
		t.Errorf("%d items listed, want %d", len(listed), len(changed))
	}

	rotated := spec
	rotated.Secret = "new"
	if plan := PlanItemSubscriptions(subs, rotated, items); len(plan.Keep) != 0 || len(plan.Delete) != 3 || len(plan.Create) != 3 {
		t.Errorf("another secret: %v, want all replaced", plan)
	}
	if plan := PlanItemSubscriptions(subs, spec, nil); len(plan.Delete) != 3 || len(plan.Create) != 0 {
		t.Errorf("no items: %v, want all deleted", plan)
	}
	// Match leaves item subscriptions to this planning.
	if m := MatchSubscriptions(subs, WebhookSpec{Name: accounts.Name, URL: spec.URL, Events: AccountEvents(), IncludeResource: true}); m.Same == nil || len(m.Others) != 0 {
		t.Errorf("MatchSubscriptions of the account subscription beside item ones: %+v", m)
	}
}
