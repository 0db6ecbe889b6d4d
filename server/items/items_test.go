package items

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

var now = time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)

// fixed serves the same signals whatever the query asks, but its item.
type fixed []health.ItemSignals

func (f fixed) ItemSignals(_ context.Context, q store.ItemQuery) ([]health.ItemSignals, error) {
	if !q.FailuresSince.Equal(now.Add(-48 * time.Hour)) {
		return nil, fmt.Errorf("failures since %v, want 48 h before now", q.FailuresSince)
	}
	var out []health.ItemSignals
	for _, s := range f {
		if (q.Item == "" || s.Item == q.Item) && (q.ActiveSince.IsZero() || isActive(s, q.ActiveSince)) {
			out = append(out, s)
		}
	}
	return out, nil
}

// isActive is the store's rule (store.ItemQuery.ActiveSince), but for
// outages, which these signals do not tell.
func isActive(s health.ItemSignals, since time.Time) bool {
	for _, b := range s.Failures {
		if b.Start.Add(time.Minute).After(since) {
			return true
		}
	}
	return s.Report != nil && (s.Report.Status != health.ReportedHealthy || len(s.Counts) == 0)
}

func (f fixed) QuietItems(_ context.Context, q store.QuietQuery) ([]health.ItemSignals, error) {
	failing := func(s health.ItemSignals) int {
		return s.Counts[health.StateAuthFailed] + s.Counts[health.StateDisconnected] + s.Counts[health.StateDegraded]
	}
	var out []health.ItemSignals
	for _, s := range f {
		if len(s.Counts) > 0 && (q.After == "" || failing(s) < q.AfterFailing || (failing(s) == q.AfterFailing && s.Item > q.After)) {
			s.Failures = nil
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b health.ItemSignals) int {
		if d := failing(b) - failing(a); d != 0 {
			return d
		}
		return strings.Compare(a.Item, b.Item)
	})
	return out[:min(len(out), q.Limit)], nil
}

func newService(t *testing.T, sigs fixed) *Service {
	t.Helper()
	s, err := New(sigs, health.DefaultItemRules, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signals() fixed {
	healthy := func(item string, failing int) health.ItemSignals {
		return health.ItemSignals{Item: item, Counts: map[health.State]int{health.StateHealthy: 10, health.StateDegraded: failing}}
	}
	burst := healthy("item_suspected", 6)
	burst.Failures = []health.FailureBucket{{Start: now.Add(-2 * time.Minute), N: 6}}
	// A burst of the day before, over: Get derives it, List need not.
	over := healthy("item_over", 0)
	over.Failures = []health.FailureBucket{{Start: now.Add(-20 * time.Hour), N: 9}}
	down := healthy("item_down", 0)
	down.Report = &health.ItemReport{Item: "item_down", Status: health.ReportedUnavailable, ReceivedAt: now.Add(-time.Hour)}
	return fixed{healthy("item_a", 1), healthy("item_b", 3), burst, down, healthy("item_c", 1), over}
}

func TestListWorstFirstInPages(t *testing.T) {
	s := newService(t, signals())
	want := []string{"item_down", "item_suspected", "item_b", "item_a", "item_c", "item_over"}
	var got []string
	q := Query{PageSize: 2}
	for pages := 0; ; pages++ {
		if pages > len(want) {
			t.Fatal("paging does not end")
		}
		page, err := s.List(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range page.Items {
			got = append(got, h.Item)
		}
		if page.NextPageToken == "" {
			break
		}
		q.PageToken = page.NextPageToken
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List = %v, want %v", got, want)
	}
}

func TestListFiltersByStatus(t *testing.T) {
	page, err := newService(t, signals()).List(t.Context(), Query{Statuses: []health.ItemStatus{health.ItemStatusSuspectedOutage, health.ItemStatusOutage}})
	if err != nil || len(page.Items) != 2 || page.Items[0].Item != "item_down" || page.Items[1].Item != "item_suspected" {
		t.Errorf("List of outages = %+v, %v", page, err)
	}
}

func TestGet(t *testing.T) {
	s := newService(t, signals())
	h, err := s.Get(t.Context(), "item_suspected")
	if err != nil || h.Status != health.ItemStatusSuspectedOutage {
		t.Errorf("Get = %+v, %v; want a suspected outage", h, err)
	}
	if h, err := s.Get(t.Context(), "item_over"); err != nil || h.Status != health.ItemStatusHealthy || !h.Since.Equal(now.Add(-20*time.Hour+15*time.Minute)) {
		t.Errorf("Get of an outage over = %+v, %v; want healthy since it ended", h, err)
	}
	page, err := s.List(t.Context(), Query{Statuses: []health.ItemStatus{health.ItemStatusHealthy}})
	if err != nil || len(page.Items) != 4 || page.Items[3].Item != "item_over" || page.Items[3].Status != health.ItemStatusHealthy {
		t.Errorf("List of healthy items = %+v, %v", page, err)
	}
	if _, err := s.Get(t.Context(), "item_unknown"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of an unknown item: %v, want %v", err, store.ErrNotFound)
	}
}

func TestListRejects(t *testing.T) {
	s := newService(t, signals())
	for _, q := range []Query{{PageSize: -1}, {PageSize: store.MaxPageSize + 1}, {PageToken: "junk!"}, {PageToken: "AQ"}} {
		if _, err := s.List(t.Context(), q); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("List(%+v): %v, want %v", q, err, store.ErrInvalidArgument)
		}
	}
}

func TestNewRejectsRules(t *testing.T) {
	for _, r := range []health.ItemRules{
		{Window: 0, Baseline: time.Hour},
		{Window: time.Hour, Baseline: time.Hour},
		{Window: time.Minute, Baseline: 25 * time.Hour},
		{Window: time.Minute, Baseline: time.Hour, MinFailures: 5, Factor: 5, EndFailures: 0, EndFactor: 1},
		{Window: time.Minute, Baseline: time.Hour, MinFailures: 2, Factor: 5, EndFailures: 2, EndFactor: 1},
	} {
		if _, err := New(fixed{}, r, nil); err == nil {
			t.Errorf("New accepts window %v, baseline %v", r.Window, r.Baseline)
		}
	}
}
