package backfill_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/backfill"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/store"
)

// lister serves n accounts in pages of size, the cursor being the index of
// the page's first account; fail, when set, decides whether a page fails.
type lister struct {
	n, size int
	mu      sync.Mutex
	asked   []string // the cursors asked for
	fail    func(cursor string) error
}

func (l *lister) AccountPages(_ context.Context, params provider.ListAccountsParams) iter.Seq2[provider.AccountPage, error] {
	return func(yield func(provider.AccountPage, error) bool) {
		cursor := params.Cursor
		for {
			l.mu.Lock()
			l.asked = append(l.asked, cursor)
			fail := l.fail
			l.mu.Unlock()
			if fail != nil {
				if err := fail(cursor); err != nil {
					yield(provider.AccountPage{}, err)
					return
				}
			}
			from, _ := strconv.Atoi(cursor)
			var page provider.AccountPage
			for i := from; i < min(from+l.size, l.n); i++ {
				id := fmt.Sprintf("acct-%05d", i)
				page.Accounts = append(page.Accounts, provider.Account{ID: id, User: "u", Raw: []byte(`{"id":"` + id + `"}`),
					Connection: provider.Connection{Status: provider.StatusConnected}})
			}
			if from+l.size < l.n {
				page.NextCursor = strconv.Itoa(from + l.size)
			}
			if !yield(page, nil) || page.NextCursor == "" {
				return
			}
			cursor = page.NextCursor
		}
	}
}

// memory is the State and the Commit: it keeps the state and the ids
// committed.
type memory struct {
	mu        sync.Mutex
	state     store.SyncState
	committed map[string]int
}

func newMemory() *memory { return &memory{committed: map[string]int{}} }

func (m *memory) SyncState(context.Context) (store.SyncState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state, nil
}

func (m *memory) SaveSyncState(_ context.Context, s store.SyncState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state = s
	return nil
}

func (m *memory) commit(_ context.Context, d store.Delivery) (store.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.committed[d.Decoded.AccountID]++
	outcome := health.OutcomeApplied
	if m.committed[d.Decoded.AccountID] > 1 {
		outcome = health.OutcomeDuplicate
	}
	if d.Actor != backfill.Actor || d.Decoded.Snapshot == nil {
		return store.Result{}, fmt.Errorf("delivery %+v is no backfilled object", d)
	}
	return store.Result{Outcome: outcome}, nil
}

func TestBackfillResumesAfterTheLastCommittedPage(t *testing.T) {
	l := &lister{n: 1050, size: 100}
	m := newMemory()
	ctx, cancel := context.WithCancel(t.Context())
	var pages int
	_, err := backfill.Run(ctx, m, l, m.commit, backfill.Options{Progress: func(p backfill.Progress) {
		if pages++; pages == 4 {
			cancel() // interrupted after the fourth page
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if m.state.Pages < 4 || m.state.Done || m.state.Cursor != strconv.Itoa(int(m.state.Pages)*100) {
		t.Fatalf("state after the interruption: %+v", m.state)
	}
	before, saved := len(l.asked), m.state.Cursor
	state, err := backfill.Run(t.Context(), m, l, m.commit, backfill.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !state.Done || state.Seen != 1050 || state.Pages != 11 || state.FinishedAt.IsZero() {
		t.Errorf("final state %+v", state)
	}
	if l.asked[before] != saved {
		t.Errorf("the second run started at cursor %q, want the saved %q", l.asked[before], saved)
	}
	if len(m.committed) != 1050 {
		t.Errorf("%d accounts committed, want 1050", len(m.committed))
	}
	// A finished backfill is not run again unless asked.
	asked := len(l.asked)
	if s, err := backfill.Run(t.Context(), m, l, m.commit, backfill.Options{}); err != nil || !s.Done || len(l.asked) != asked {
		t.Errorf("run after done: %+v %v, %d more pages asked", s, err, len(l.asked)-asked)
	}
	s, err := backfill.Run(t.Context(), m, l, m.commit, backfill.Options{Restart: true})
	if err != nil || !s.Done || s.Seen != 1050 || s.Applied != 0 {
		t.Errorf("restart: %+v %v; want every account seen again, none applied (all duplicates)", s, err)
	}
}

// A failing provider pauses the backfill, which asks for the same page
// again and finishes; one line says the outage began, one that it ended.
func TestBackfillWaitsOutAnOutage(t *testing.T) {
	failures := 3
	var mu sync.Mutex
	l := &lister{n: 500, size: 100, fail: func(cursor string) error {
		mu.Lock()
		defer mu.Unlock()
		if cursor == "200" && failures > 0 {
			failures--
			return fmt.Errorf("GET /accounts: %w", provider.ErrUnavailable)
		}
		return nil
	}}
	m := newMemory()
	var logs bytes.Buffer
	var waits int
	state, err := backfill.Run(t.Context(), m, l, m.commit, backfill.Options{
		RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Progress: func(p backfill.Progress) {
			if p.Waiting != nil {
				waits++
			}
		},
	})
	if err != nil || !state.Done || state.Seen != 500 || state.Pages != 5 {
		t.Fatalf("%+v %v", state, err)
	}
	if waits != 3 {
		t.Errorf("%d progress reports while waiting, want 3", waits)
	}
	if strings.Count(logs.String(), "backfill paused") != 1 || strings.Count(logs.String(), "backfill resumed") != 1 {
		t.Errorf("logs:\n%s", logs.String())
	}
}

// A provider that refuses the key ends the backfill with the error: waiting
// would not help.
func TestBackfillStopsOnRefusal(t *testing.T) {
	l := &lister{n: 500, size: 100, fail: func(cursor string) error {
		if cursor == "100" {
			return provider.ErrUnauthorized
		}
		return nil
	}}
	m := newMemory()
	state, err := backfill.Run(t.Context(), m, l, m.commit, backfill.Options{})
	if !errors.Is(err, provider.ErrUnauthorized) || state.Pages != 1 || state.Cursor != "100" {
		t.Errorf("%+v %v", state, err)
	}
}

func TestRunnerRunsOneAtATime(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	var once sync.Once
	l := &lister{n: 300, size: 100, fail: func(string) error {
		once.Do(func() { close(started); <-release })
		return nil
	}}
	m := newMemory()
	r := backfill.NewRunner(m, l, m.commit, backfill.Options{})
	done := make(chan error)
	go func() { _, err := r.Run(t.Context(), false, nil); done <- err }()
	<-started
	if _, err := r.Run(t.Context(), false, nil); !errors.Is(err, backfill.ErrInProgress) {
		t.Errorf("second run: %v, want ErrInProgress", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if pending, err := r.Pending(t.Context()); err != nil || pending {
		t.Errorf("pending after the run: %v %v", pending, err)
	}
}
