package reconcile_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/reconcile"
	"github.com/accounthealth/accounthealth/server/store"
)

// claims is a Claimer that hands out the accounts in due once each.
type claims struct {
	mu      sync.Mutex
	due     []string
	queries []store.DueQuery
}

func (c *claims) ClaimDue(_ context.Context, q store.DueQuery) ([]store.DueAccount, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queries = append(c.queries, q)
	n := min(q.Limit, len(c.due))
	out := make([]store.DueAccount, n)
	for i, id := range c.due[:n] {
		out[i] = store.DueAccount{AccountID: id}
	}
	c.due = c.due[n:]
	return out, nil
}

func (c *claims) OldestUnconfirmed(context.Context) (time.Time, bool, error) {
	return time.Time{}, false, nil
}

// fetcher answers each account with what answer returns.
type fetcher struct {
	mu      sync.Mutex
	fetched []string
	answer  func(id string) (store.Result, error)
}

func (f *fetcher) Fetch(_ context.Context, id string) (store.Result, error) {
	f.mu.Lock()
	f.fetched = append(f.fetched, id)
	f.mu.Unlock()
	return f.answer(id)
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func TestRoundCountsOutcomes(t *testing.T) {
	c := &claims{due: []string{"changed", "same", "gone", "broken"}}
	f := &fetcher{answer: func(id string) (store.Result, error) {
		switch id {
		case "changed":
			return store.Result{Outcome: health.OutcomeApplied, Change: &store.Change{Transition: health.Transition{State: health.StateDisconnected}}}, nil
		case "gone":
			return store.Result{Outcome: health.OutcomeApplied, Change: &store.Change{Transition: health.Transition{State: health.StateRemoved}}}, nil
		case "broken":
			return store.Result{}, provider.ErrUnauthorized
		}
		return store.Result{Outcome: health.OutcomeDuplicate}, nil
	}}
	heard := map[string]int{}
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	r := reconcile.New(c, f, reconcile.Options{Holder: "me", Interval: time.Minute, MaxAge: time.Hour, Now: func() time.Time { return now },
		Observer: reconcile.Observer{Fetched: func(o string) { mu.Lock(); heard[o]++; mu.Unlock() }}})
	res, err := r.Round(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := reconcile.RoundResult{Claimed: 4, Changed: 1, Unchanged: 1, Removed: 1, Failed: 1}
	if res != want {
		t.Errorf("round %+v, want %+v", res, want)
	}
	if heard["changed"] != 1 || heard["unchanged"] != 1 || heard["removed"] != 1 || heard["failed"] != 1 {
		t.Errorf("observer heard %v", heard)
	}
	q := c.queries[0]
	if q.Holder != "me" || !q.Now.Equal(now) || !q.ConfirmedBefore.Equal(now.Add(-time.Hour)) || q.LeaseFor != time.Minute || q.Limit != reconcile.DefaultPerRound {
		t.Errorf("claim %+v", q)
	}
}

// While the provider fails, a round stops at the first failure and the
// next ones try a single account; one line says when it began and one when
// it ended.
func TestOutagePausesAndResumes(t *testing.T) {
	c := &claims{due: ids("acct", 50)}
	var down bool
	var mu sync.Mutex
	f := &fetcher{answer: func(string) (store.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return store.Result{}, fmt.Errorf("GET: %w", provider.ErrUnavailable)
		}
		return store.Result{Outcome: health.OutcomeDuplicate}, nil
	}}
	var logs bytes.Buffer
	r := reconcile.New(c, f, reconcile.Options{Holder: "me", PerRound: 10, Concurrency: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	mu.Lock()
	down = true
	mu.Unlock()
	for round := range 3 {
		res, err := r.Round(t.Context())
		if err != nil || !res.Paused || res.Failed != 1 {
			t.Fatalf("round %d while down: %+v %v, want paused after one failure", round, res, err)
		}
		if round > 0 && c.queries[round].Limit != 1 {
			t.Errorf("round %d while down claimed %d, want 1", round, c.queries[round].Limit)
		}
	}
	mu.Lock()
	down = false
	mu.Unlock()
	if res, err := r.Round(t.Context()); err != nil || res.Paused || res.Unchanged != 1 {
		t.Fatalf("first round back: %+v %v", res, err)
	}
	if res, err := r.Round(t.Context()); err != nil || res.Claimed != 10 {
		t.Fatalf("second round back: %+v %v, want a full round", res, err)
	}
	if n := strings.Count(logs.String(), "reconciliation paused"); n != 1 {
		t.Errorf("%d pause lines, want 1:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "reconciliation resumed"); n != 1 {
		t.Errorf("%d resume lines, want 1:\n%s", n, logs.String())
	}
}

// A round fetches its accounts a few at a time, never more at once than
// Concurrency.
func TestRoundConcurrencyBound(t *testing.T) {
	c := &claims{due: ids("acct", 40)}
	var mu sync.Mutex
	running, peak := 0, 0
	release := make(chan struct{})
	var once sync.Once
	f := &fetcher{answer: func(string) (store.Result, error) {
		mu.Lock()
		running++
		peak = max(peak, running)
		if running == 3 {
			once.Do(func() { close(release) })
		}
		mu.Unlock()
		<-release
		mu.Lock()
		running--
		mu.Unlock()
		return store.Result{Outcome: health.OutcomeDuplicate}, nil
	}}
	r := reconcile.New(c, f, reconcile.Options{Holder: "me", Concurrency: 3})
	res, err := r.Round(t.Context())
	if err != nil || res.Unchanged != 40 {
		t.Fatalf("round %+v %v", res, err)
	}
	if peak != 3 {
		t.Errorf("peak concurrency %d, want 3", peak)
	}
}
