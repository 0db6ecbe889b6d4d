package freshness_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/freshness"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/rebuild"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/sqlite"
	"github.com/accounthealth/accounthealth/server/store/storetest"
	"github.com/accounthealth/accounthealth/server/webhook"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// object is an accounts.updated carrying the account object: connection
// status, scanned at scannedAt, ongoing refresh refresh.
func object(account, status string, scannedAt time.Time, refresh string, received time.Time) store.Delivery {
	code := "null"
	if status == "error" {
		code = `"auth_required"`
	}
	ts, scanned := received.Format(time.RFC3339Nano), scannedAt.Format(time.RFC3339Nano)
	body := fmt.Appendf(nil, `{"event":"accounts.updated","name":"test","data":{"account":%q,"user":"user-1","resource":{"id":%q,"user":"user-1",`+
		`"item":"item_1","updated_at":%q,"scanned_at":%q,"connection":{"status":%q,"error_code":%s,"error_message":null,"updated_at":%q},`+
		`"availability":{"paystubs":{"status":"synced"}},"ongoing_refresh":{"status":%q}}}}`,
		account, account, ts, scanned, status, code, ts, refresh)
	env, err := webhook.Decode(body, received)
	if err != nil {
		panic(err)
	}
	return store.Delivery{Body: body, Name: env.Name, Decoded: env.Delivery, Verified: true}
}

type env struct {
	t     *testing.T
	st    store.Store
	now   time.Time
	sweep *freshness.Sweeper
}

func newEnv(t *testing.T) *env {
	s, err := sqlite.Open(t.Context(), t.TempDir(), store.Options{})
	e := &env{t: t, st: storetest.Opened(t, s, err), now: t0}
	e.sweep = freshness.New(e.st, e.commit, freshness.Options{Now: func() time.Time { return e.now }})
	return e
}

func (e *env) commit(ctx context.Context, d store.Delivery) (store.Result, error) {
	rs, err := e.st.Ingest(ctx, []store.Delivery{d})
	if err != nil {
		return store.Result{}, err
	}
	return rs[0], nil
}

func (e *env) ingest(ds ...store.Delivery) {
	e.t.Helper()
	if _, err := e.st.Ingest(e.t.Context(), ds); err != nil {
		e.t.Fatalf("Ingest: %v", err)
	}
}

func (e *env) pass(want int) {
	e.t.Helper()
	if n, err := e.sweep.Pass(e.t.Context()); err != nil || n != want {
		e.t.Fatalf("Pass at %v judged %d, %v; want %d", e.now, n, err, want)
	}
}

func (e *env) record(account string) health.Record {
	e.t.Helper()
	r, err := e.st.GetHealth(e.t.Context(), account)
	if err != nil {
		e.t.Fatalf("GetHealth(%s): %v", account, err)
	}
	return r
}

// lastChange is the newest change of the log, or nil.
func (e *env) lastChange() *store.Change {
	e.t.Helper()
	last, err := e.st.LastChangeSeq(e.t.Context())
	if err != nil {
		e.t.Fatalf("LastChangeSeq: %v", err)
	}
	changes, err := e.st.ReadChanges(e.t.Context(), last-1, 1)
	if err != nil {
		e.t.Fatalf("ReadChanges: %v", err)
	}
	if len(changes) == 0 {
		return nil
	}
	return &changes[0]
}

// TestSweep: an account the provider has not scanned for longer than the
// stale-after age is judged stale once, from when its data passed the
// age, with one FRESHNESS_LOST event; a new scan makes it fresh again;
// recently scanned and disconnected accounts are left alone.
func TestSweep(t *testing.T) {
	e := newEnv(t)
	e.ingest(
		object("acc-old", "connected", t0, "enabled", t0),
		object("acc-recent", "connected", t0.Add(70*time.Hour), "enabled", t0.Add(70*time.Hour)),
		object("acc-down", "error", t0, "enabled", t0),
	)
	e.now = t0.Add(71 * time.Hour)
	e.pass(0)
	e.now = t0.Add(100 * time.Hour)
	e.pass(1)
	old := e.record("acc-old")
	if since := t0.Add(freshness.DefaultStaleAfter); old.Freshness != health.FreshnessStale || !old.FreshnessSince.Equal(since) {
		t.Fatalf("acc-old is %v since %v, want STALE since %v", old.Freshness, old.FreshnessSince, since)
	}
	if c := e.lastChange(); c == nil || c.AccountID != "acc-old" || c.Kind != health.KindFreshnessLost || c.Freshness != health.FreshnessStale {
		t.Fatalf("last change %+v, want acc-old's FRESHNESS_LOST to STALE", c)
	}
	if r := e.record("acc-recent"); r.Freshness != health.FreshnessFresh {
		t.Fatalf("acc-recent is %v, want FRESH", r.Freshness)
	}
	if r := e.record("acc-down"); r.Freshness != health.FreshnessUnknown {
		t.Fatalf("acc-down is %v, want no freshness", r.Freshness)
	}
	e.pass(0) // a second pass judges nothing again

	e.ingest(object("acc-old", "connected", e.now, "enabled", e.now))
	if r, c := e.record("acc-old"), e.lastChange(); r.Freshness != health.FreshnessFresh || c.Kind != health.KindFreshnessRestored {
		t.Fatalf("after a new scan acc-old is %v, last change %v; want FRESH, FRESHNESS_RESTORED", r.Freshness, c.Kind)
	}
	e.pass(0)
}

// TestSweepRefreshDisabled: an account already told as refresh disabled
// is judged stale too (a later enabling must not make it look fresh), yet
// its freshness still names the first problem, with no event.
func TestSweepRefreshDisabled(t *testing.T) {
	e := newEnv(t)
	e.ingest(object("acc-1", "connected", t0, health.RefreshDisabled, t0))
	before, err := e.st.LastChangeSeq(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	e.now = t0.Add(100 * time.Hour)
	e.pass(1)
	r := e.record("acc-1")
	if r.Freshness != health.FreshnessRefreshDisabled || r.StaleSince.IsZero() {
		t.Fatalf("acc-1 is %v, stale since %v; want REFRESH_DISABLED and stale", r.Freshness, r.StaleSince)
	}
	if c := e.lastChange(); c != nil && c.Seq != before {
		t.Fatalf("the verdict made change %+v; want none", c)
	}
	e.ingest(object("acc-1", "connected", t0, "enabled", e.now)) // enabled, not rescanned
	if r := e.record("acc-1"); r.Freshness != health.FreshnessStale {
		t.Fatalf("enabled but not rescanned, acc-1 is %v, want STALE", r.Freshness)
	}
}

// TestSweepPages: one pass judges every stale account, however many pages
// they take, and a rebuild from the log derives the same freshness.
func TestSweepPages(t *testing.T) {
	e := newEnv(t)
	const n = 1234
	batch := make([]store.Delivery, 0, n)
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Second)
		batch = append(batch, object(fmt.Sprintf("acc-%04d", i), "connected", at, "enabled", at))
	}
	e.ingest(batch...)
	e.now = t0.Add(100 * time.Hour)
	e.pass(n)
	sum, err := e.st.Summary(t.Context())
	if err != nil || sum.ByFreshness[health.FreshnessStale] != n {
		t.Fatalf("summary %+v, %v; want %d stale", sum.ByFreshness, err, n)
	}
	if _, err := e.st.Rebuild(t.Context(), store.RebuildOptions{Decode: rebuild.Decode, Force: true}); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	if r := e.record("acc-0777"); r.Freshness != health.FreshnessStale || !r.FreshnessSince.Equal(t0.Add(777*time.Second+freshness.DefaultStaleAfter)) {
		t.Fatalf("after a rebuild acc-0777 is %v since %v", r.Freshness, r.FreshnessSince)
	}
}

func TestDecodeStaleness(t *testing.T) {
	v := health.Staleness{FreshAsOf: t0.Add(time.Nanosecond), Since: t0.Add(72 * time.Hour)}
	body, err := freshness.EncodeStaleness(v)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := freshness.DecodeStaleness(body); err != nil || !got.FreshAsOf.Equal(v.FreshAsOf) || !got.Since.Equal(v.Since) {
		t.Fatalf("DecodeStaleness(%s) = %+v, %v; want %+v", body, got, err, v)
	}
	for _, bad := range []string{``, `{}`, `[]`, `{"fresh_as_of":"2026-11-01T00:00:00Z"}`, `{"fresh_as_of":1,"stale_since":2}`} {
		if _, err := freshness.DecodeStaleness([]byte(bad)); err == nil {
			t.Errorf("DecodeStaleness(%q) accepted it", bad)
		}
	}
}
