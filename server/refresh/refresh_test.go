package refresh

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/store"
)

type fakeFetcher struct {
	mu      sync.Mutex
	calls   map[string]int
	release chan struct{}
}

func (f *fakeFetcher) GetAccount(_ context.Context, id string) (provider.Account, error) {
	<-f.release
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[id]++
	if id == "gone" {
		return provider.Account{}, provider.ErrNotFound
	}
	return provider.Account{ID: id, User: "u", Raw: []byte(`{"id":"` + id + `"}`),
		Connection: provider.Connection{Status: provider.StatusError, ErrorCode: "auth_required"}}, nil
}

// knowsNothing is a store that holds no account.
type knowsNothing struct{ store.Store }

func (knowsNothing) GetHealth(context.Context, string) (health.Record, error) {
	return health.Record{}, store.ErrNotFound
}

func TestRequestsCoalesceAndFailuresAreSkipped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFetcher{calls: map[string]int{}, release: make(chan struct{})}
		var mu sync.Mutex
		var committed []store.Delivery
		commit := func(_ context.Context, d store.Delivery) (store.Result, error) {
			mu.Lock()
			defer mu.Unlock()
			committed = append(committed, d)
			return store.Result{}, nil
		}
		r := New(f, knowsNothing{}, commit, slog.New(slog.NewTextHandler(io.Discard, nil)), 3)
		for _, id := range []string{"a", "a", "b", "gone", "a", "dropped-when-full"} {
			r.Request(id)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { r.Run(ctx); close(done) }()
		close(f.release)
		// Once Run waits again, every fetch it was going to make is made.
		synctest.Wait()
		cancel()
		<-done
		if f.calls["a"] != 1 || f.calls["b"] != 1 || f.calls["gone"] != 1 || f.calls["dropped-when-full"] != 0 {
			t.Errorf("fetches = %v, want a, b and gone once each and nothing past the limit", f.calls)
		}
		if len(committed) != 2 {
			t.Fatalf("%d commits, want 2 (the not-found account is left alone)", len(committed))
		}
		d := committed[0]
		if d.Source != store.SourceAPI || d.Actor != Actor || d.Decoded.Event != health.EventAccountsUpdated ||
			d.Decoded.Snapshot == nil || d.Decoded.Snapshot.ConnectionStatus != "error" || d.Decoded.ErrorCode != "auth_required" {
			t.Errorf("delivery = %+v", d)
		}
	})
}

// The provider's object is recorded exactly as it came; the snapshot is a
// form every reader can serve, the same bytes when they already are.
func TestDeliveryServableSnapshot(t *testing.T) {
	for _, tt := range []struct{ name, object, snapshot string }{
		{"served as it is", `{"id": "a", "connection": {"status": "connected"}}`, `{"id": "a", "connection": {"status": "connected"}}`},
		{"lone surrogate, repeated key, number beyond float64",
			`{"id": "a", "employers": ["Caf\udce9"], "id": "a", "n": 1e400, "connection": {"status": "error", "error_message": "Caf\udce9"}}`,
			`{"connection":{"error_message":"Caf` + "\uFFFD" + `","status":"error"},"employers":["Caf` + "\uFFFD" + `"],"id":"a","n":"1e400"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var a provider.Account
			if err := a.UnmarshalJSON([]byte(tt.object)); err != nil {
				t.Fatal(err)
			}
			d := Delivery(a, time.Now())
			if string(d.Body) != tt.object {
				t.Errorf("body = %s, want the exact bytes %s", d.Body, tt.object)
			}
			if got := string(d.Decoded.Snapshot.Raw); got != tt.snapshot {
				t.Errorf("snapshot = %s, want %s", got, tt.snapshot)
			}
		})
	}
}

// The queue holds at most MaxQueueBytes of account ids, however few: a
// request beyond that is dropped, and room comes back as accounts leave.
func TestQueueBoundedInBytes(t *testing.T) {
	r := New(&fakeFetcher{}, knowsNothing{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), 100)
	half := func(c string) string { return strings.Repeat(c, MaxQueueBytes/2) }
	r.Request(half("a"))
	r.Request(half("b"))
	r.Request("c")
	if !slices.Equal(r.order, []string{half("a"), half("b")}) {
		t.Fatalf("queued %d ids, want the two that fill the budget", len(r.order))
	}
	if id, _ := r.next(); id != half("a") {
		t.Fatal("the oldest request did not come first")
	}
	r.Request("c")
	if !slices.Equal(r.order, []string{half("b"), "c"}) {
		t.Fatalf("queued %d ids after one left, want room for another", len(r.order))
	}
}
