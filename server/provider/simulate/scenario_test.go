package simulate

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/webhook"
)

var (
	start  = time.Date(2026, 10, 5, 14, 0, 0, 0, time.UTC)
	uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	// The provider's timestamps: UTC with microseconds.
	stampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)
	keyLine = regexp.MustCompile(`(?m)^( *"[a-z_]+"):`)
)

// decode decodes a body with the server's own decoder.
func decode(t *testing.T, d Delivery) webhook.Envelope {
	t.Helper()
	env, err := webhook.Decode(d.Body, start)
	if err != nil {
		t.Fatalf("%s: %v\n%s", d.Event, err, d.Body)
	}
	return env
}

// scenarioCase is a scenario's events and the health it ends in.
type scenarioCase struct {
	name     string
	events   []string
	state    health.State
	code     string // the record's error code at the end
	failures int
}

func scenarioCases() []scenarioCase {
	const (
		added, connected, failed, updated, removed = EventAdded, EventConnected, EventFailed, EventUpdated, EventRemoved
	)
	return []scenarioCase{
		{"connect", []string{added, connected, updated}, health.StateHealthy, "", 0},
		{"failed-login", []string{added, failed, updated}, health.StateAuthFailed, "invalid_credentials", 1},
		{"wrong-mfa", []string{added, failed, updated}, health.StateAuthFailed, "invalid_mfa", 1},
		{"mfa-timeout", []string{added, failed, updated}, health.StateAuthFailed, "mfa_timeout", 1},
		{"repeated-reauth-failure", []string{added, connected, updated, failed, updated, failed, updated, failed, updated},
			health.StateAuthFailed, "invalid_credentials", 3},
		{"disconnect", []string{added, connected, updated, updated}, health.StateDisconnected, "auth_required", 0},
		{"expired-credentials", []string{added, connected, updated, updated}, health.StateDisconnected, "expired_credentials", 0},
		{"provider-outage", []string{added, connected, updated, updated, updated, updated}, health.StateHealthy, "", 0},
		{"reconnect", []string{added, connected, updated, updated, connected, updated}, health.StateHealthy, "", 0},
		{"revoke", []string{added, connected, updated, removed}, health.StateRemoved, "", 0},
		{"refresh-disabled", []string{added, connected, updated, updated}, health.StateHealthy, "", 0},
		{"sync-failed", []string{added, connected, updated, updated, updated, updated, updated}, health.StateHealthy, "", 0},
		{"stale", []string{updated}, health.StateHealthy, "", 0},
	}
}

// Every scenario emits the provider's events for its story, bodies the
// server decodes, snapshots that move forward, and leads the health model
// to the state the scenario is about.
func TestScenarios(t *testing.T) {
	cases := scenarioCases()
	var names []string
	for _, s := range Scenarios() {
		names = append(names, s.Name)
	}
	var tested []string
	for _, c := range cases {
		tested = append(tested, c.name)
	}
	if !slices.Equal(names, tested) {
		t.Fatalf("Scenarios() = %v, tested %v", names, tested)
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds, err := NewGenerator(Options{Seed: 1, Start: start}).Play(c.name)
			if err != nil {
				t.Fatal(err)
			}
			var events []string
			var rec health.Record
			var prev *health.Snapshot
			for _, d := range ds {
				events = append(events, d.Event)
				env := decode(t, d)
				del := env.Delivery
				if d.Scenario != c.name || env.Event != d.Event || env.Name != DefaultSubscriptionName ||
					del.AccountID != ds[0].Account || del.UserID != ds[0].User {
					t.Errorf("%s: delivery %+v decodes as %+v", d.Event, d, env)
				}
				snap := del.Snapshot
				if snap == nil {
					t.Fatalf("%s carries no resource", d.Event)
				}
				if prev != nil && (snap.UpdatedAt.Before(prev.UpdatedAt) || snap.ConnectionUpdatedAt.Before(prev.ConnectionUpdatedAt)) {
					t.Errorf("%s: snapshot went back in time: %v after %v", d.Event, snap.UpdatedAt, prev.UpdatedAt)
				}
				if snap.ConnectionUpdatedAt.After(snap.UpdatedAt) {
					t.Errorf("%s: connection changed after the object", d.Event)
				}
				if d.Event == EventFailed && (del.ErrorCode != c.code || !strings.Contains(string(d.Body), `"error_code": "`+c.code+`",`)) {
					t.Errorf("accounts.failed carries code %q, want %q in data", del.ErrorCode, c.code)
				}
				if (d.Event == EventConnected || d.Event == EventFailed) && snap.ScannedAt.IsZero() != (prev == nil || prev.ScannedAt.IsZero()) {
					t.Errorf("%s: scanned_at changed without a scan", d.Event)
				}
				res := health.Apply(rec, del)
				if res.Outcome != health.OutcomeApplied {
					t.Errorf("%s: outcome %s", d.Event, res.Outcome)
				}
				rec, prev = res.Record, snap
			}
			if !slices.Equal(events, c.events) {
				t.Errorf("events = %v, want %v", events, c.events)
			}
			if rec.State != c.state || rec.ErrorCode != c.code || rec.ConsecutiveFailures != c.failures {
				t.Errorf("ends %s %q with %d failures, want %s %q with %d", rec.State, rec.ErrorCode, rec.ConsecutiveFailures, c.state, c.code, c.failures)
			}
			first, last := decode(t, ds[0]).Delivery.Snapshot, prev
			if len(ds) > 1 && !last.UpdatedAt.After(first.UpdatedAt) {
				t.Errorf("updated_at did not advance: %v .. %v", first.UpdatedAt, last.UpdatedAt)
			}
		})
	}
}

// freshness is what the freshness scenarios tell in a delivery's account
// object.
type freshness struct {
	ScannedAt  *time.Time `json:"scanned_at"`
	Connection struct {
		Status    string  `json:"status"`
		ErrorCode *string `json:"error_code"`
	} `json:"connection"`
	Availability struct {
		Paystubs *struct {
			Status    string    `json:"status"`
			UpdatedAt time.Time `json:"updated_at"`
		} `json:"paystubs"`
	} `json:"availability"`
	OngoingRefresh struct {
		Status string `json:"status"`
	} `json:"ongoing_refresh"`
}

// playFreshness plays scenario name and returns the generator, for its
// clock, each delivery's account object and the freshness the health
// model derives after it.
func playFreshness(t *testing.T, name string) (*Generator, []freshness, []health.Freshness) {
	t.Helper()
	g := NewGenerator(Options{Seed: 1, Start: start})
	ds, err := g.Play(name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]freshness, len(ds))
	var verdicts []health.Freshness
	var rec health.Record
	for i, d := range ds {
		rec = health.Apply(rec, decode(t, d).Delivery).Record
		verdicts = append(verdicts, rec.Freshness)
		var v struct {
			Data struct{ Resource freshness }
		}
		if err := json.Unmarshal(d.Body, &v); err != nil {
			t.Fatal(err)
		}
		out[i] = v.Data.Resource
		if c := out[i].Connection; i > 0 && (c.Status != statusConnected || c.ErrorCode != nil) {
			t.Errorf("delivery %d: connection %s, error %v; want connected, no error throughout", i, c.Status, c.ErrorCode)
		}
	}
	return g, out, verdicts
}

func TestRefreshDisabledScenario(t *testing.T) {
	_, objs, verdicts := playFreshness(t, "refresh-disabled")
	var got []string
	for _, o := range objs {
		got = append(got, o.OngoingRefresh.Status)
	}
	if want := []string{"idle", "enabled", "enabled", "disabled"}; !slices.Equal(got, want) {
		t.Errorf("ongoing_refresh = %v, want %v", got, want)
	}
	if f := verdicts[len(verdicts)-1]; f != health.FreshnessRefreshDisabled {
		t.Errorf("the health model ends %s, want REFRESH_DISABLED", f)
	}
}

// sync-failed: paystubs fail at one periodic scan and sync at the next, and
// scanned_at moves when each scan ends, not when it starts.
func TestSyncFailedScenario(t *testing.T) {
	_, objs, verdicts := playFreshness(t, "sync-failed")
	var got []string
	for i, o := range objs {
		status := "null"
		if p := o.Availability.Paystubs; p != nil {
			status = p.Status
		}
		got = append(got, status)
		if i == 0 {
			continue
		}
		prev := objs[i-1].ScannedAt
		ended := status == "synced" || status == "sync_failed"
		if moved := o.ScannedAt != nil && (prev == nil || o.ScannedAt.After(*prev)); moved != ended {
			t.Errorf("delivery %d (paystubs %s): scanned_at %v after %v", i, status, o.ScannedAt, prev)
		}
	}
	want := []string{"null", "in_progress", "synced", "in_progress", "sync_failed", "in_progress", "synced"}
	if !slices.Equal(got, want) {
		t.Fatalf("paystubs = %v, want %v", got, want)
	}
	fresh, failed := health.FreshnessFresh, health.FreshnessSyncFailed
	if want := []health.Freshness{health.FreshnessUnknown, fresh, fresh, fresh, failed, failed, fresh}; !slices.Equal(verdicts, want) {
		t.Errorf("the health model derives %v, want %v", verdicts, want)
	}
	if gap := objs[5].Availability.Paystubs.UpdatedAt.Sub(*objs[4].ScannedAt); gap < periodGap {
		t.Errorf("the next scan started %v after the failed one, want a period (%v) or more", gap, periodGap)
	}
}

// stale: the account was scanned 7 days before the generator's clock (but
// for the half minute its login and scan take), and never since; only
// that scan is delivered, as to a service that started after the login.
func TestStaleScenario(t *testing.T) {
	g, objs, verdicts := playFreshness(t, "stale")
	last := objs[len(objs)-1]
	if last.ScannedAt == nil {
		t.Fatal("never scanned")
	}
	if age := g.clock.Sub(*last.ScannedAt); age <= staleAge-time.Minute || age > staleAge {
		t.Errorf("scanned %v before the generator's clock, want %v within a minute", age, staleAge)
	}
	for i, o := range objs[:len(objs)-1] {
		if o.ScannedAt != nil {
			t.Errorf("delivery %d: scanned at %v before the one scan", i, o.ScannedAt)
		}
	}
	if last.OngoingRefresh.Status != "enabled" || last.Availability.Paystubs.Status != "synced" {
		t.Errorf("refresh %s, paystubs %s; want enabled and synced: nothing but age makes it stale",
			last.OngoingRefresh.Status, last.Availability.Paystubs.Status)
	}
	// Deliveries alone leave it fresh: the service's sweeper judges age.
	if f := verdicts[len(verdicts)-1]; f != health.FreshnessFresh {
		t.Errorf("the health model ends %s, want FRESH until the sweeper's verdict", f)
	}
}

func TestPlayAll(t *testing.T) {
	ds, err := NewGenerator(Options{Seed: 1, Start: start}).Play(AllScenarios)
	if err != nil {
		t.Fatal(err)
	}
	accounts := map[string]string{} // account -> scenario
	for _, d := range ds {
		if s, ok := accounts[d.Account]; ok && s != d.Scenario {
			t.Errorf("account %s plays %s and %s", d.Account, s, d.Scenario)
		}
		accounts[d.Account] = d.Scenario
	}
	if len(accounts) != len(Scenarios()) {
		t.Errorf("%d accounts for %d scenarios", len(accounts), len(Scenarios()))
	}
}

// TestItemOutageScenario: eight accounts of one item, six failing on the
// platform's side and recovering, one logged out, and the provider's two
// reports of the item in between.
func TestItemOutageScenario(t *testing.T) {
	ds, err := NewGenerator(Options{Seed: 1, Start: start}).Play(ItemOutageScenario)
	if err != nil {
		t.Fatal(err)
	}
	records := map[string]health.Record{}
	items := map[string]bool{}
	var reports []string
	for _, d := range ds {
		del := decode(t, d).Delivery
		if r := del.ItemReport; r != nil {
			reports, items[r.Item] = append(reports, r.Status), true
			continue
		}
		items[del.Snapshot.Item] = true
		records[del.AccountID] = health.Apply(records[del.AccountID], del).Record
	}
	states := map[health.State]int{}
	for _, r := range records {
		states[r.State]++
	}
	if len(items) != 1 || len(records) != 8 || states[health.StateHealthy] != 7 || states[health.StateDisconnected] != 1 ||
		!slices.Equal(reports, []string{health.ReportedUnavailable, health.ReportedHealthy}) {
		t.Errorf("items %v, %d accounts ending %v, reports %v; want one item, 8 accounts (7 healthy, 1 disconnected), unavailable then healthy",
			items, len(records), states, reports)
	}
}

func TestPlayUnknown(t *testing.T) {
	_, err := NewGenerator(Options{}).Play("frobnicate")
	if !errors.Is(err, ErrUnknownScenario) || !strings.Contains(err.Error(), "all, connect, failed-login") {
		t.Errorf("err = %v", err)
	}
}

// Bodies have the shape of the provider's: the same keys in the same order
// as the realistic fixtures, but for the datasets of availability, which
// come in the order of the recorded account objects (the realistic
// fixtures were written with paystubs first); ids that are UUIDv7,
// timestamps in UTC with microseconds.
func TestBodyShape(t *testing.T) {
	recorded, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "fixtures", "recorded", "account_object_bob_single.json"))
	if err != nil {
		t.Fatal(err)
	}
	datasets := children(keyLines(recorded), `"availability"`)
	if len(datasets) != 10 {
		t.Fatalf("the recorded object has datasets %q, want all ten", datasets)
	}
	cases := []struct {
		fixture  string
		lean     bool
		scenario string
		index    int
	}{
		{"02_accounts_connected_with_resource.json", false, "connect", 2},
		{"03_accounts_failed_invalid_mfa_with_resource.json", false, "wrong-mfa", 1},
		{"04_accounts_failed_mfa_timeout_no_resource.json", true, "mfa-timeout", 1},
		{"10_accounts_removed.json", true, "revoke", 3},
		// The freshness scenarios' objects differ in values only.
		{"02_accounts_connected_with_resource.json", false, "refresh-disabled", 3},
		{"02_accounts_connected_with_resource.json", false, "sync-failed", 4},
	}
	for _, c := range cases {
		t.Run(c.scenario, func(t *testing.T) {
			fixture, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "fixtures", "deliveries", c.fixture))
			if err != nil {
				t.Fatal(err)
			}
			ds, err := NewGenerator(Options{Seed: 7, Start: start, Lean: c.lean}).Play(c.scenario)
			if err != nil {
				t.Fatal(err)
			}
			body := ds[c.index].Body
			if got, want := keyLines(body), reorder(keyLines(fixture), `"availability"`, datasets); !slices.Equal(got, want) {
				t.Errorf("keys differ from the fixture's:\n got %q\nwant %q", got, want)
			}
			if bytes.HasSuffix(body, []byte("\n")) {
				t.Error("the provider sends no final newline")
			}
			var v struct {
				Data struct {
					Account, User string
					Resource      *struct {
						CreatedAt  string `json:"created_at"`
						UpdatedAt  string `json:"updated_at"`
						Connection struct {
							UpdatedAt string `json:"updated_at"`
						}
					}
				}
			}
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{v.Data.Account, v.Data.User} {
				if !uuidV7.MatchString(id) {
					t.Errorf("id %q is not a UUIDv7", id)
				}
			}
			if r := v.Data.Resource; r != nil {
				for _, ts := range []string{r.CreatedAt, r.UpdatedAt, r.Connection.UpdatedAt} {
					if !stampRE.MatchString(ts) {
						t.Errorf("timestamp %q is not UTC with microseconds", ts)
					}
				}
				if r.CreatedAt != "2026-10-05T14:00:00.000000Z" {
					t.Errorf("created_at = %s, want the start time", r.CreatedAt)
				}
			}
		})
	}
}

// Lean deliveries carry no account object, but accounts.failed still
// carries its error in data.
func TestLean(t *testing.T) {
	ds, err := NewGenerator(Options{Lean: true, Name: "lean"}).Play(AllScenarios)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		env := decode(t, d)
		if env.Delivery.Snapshot != nil || env.Name != "lean" {
			t.Errorf("%s of %s: %+v", d.Event, d.Scenario, env)
		}
		if (d.Event == EventFailed) != (env.Delivery.ErrorCode != "") {
			t.Errorf("%s of %s: error code %q", d.Event, d.Scenario, env.Delivery.ErrorCode)
		}
	}
}

// A seed reproduces every byte; without one, ids are fresh.
func TestSeed(t *testing.T) {
	play := func(seed int64) []Delivery {
		ds, err := NewGenerator(Options{Seed: seed, Start: start}).Play(AllScenarios)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	same := func(a, b []Delivery) bool {
		return slices.EqualFunc(a, b, func(x, y Delivery) bool { return bytes.Equal(x.Body, y.Body) })
	}
	if !same(play(3), play(3)) {
		t.Error("the same seed gave different deliveries")
	}
	if same(play(3), play(4)) {
		t.Error("different seeds gave the same deliveries")
	}
	if a, b := play(0), play(0); a[0].Account == b[0].Account {
		t.Error("unseeded generators repeated an id")
	}
}

// keyLines lists the keys of an indented JSON document with their
// indentation, in document order: its shape, without the values.
func keyLines(doc []byte) []string {
	var out []string
	for _, m := range keyLine.FindAllSubmatch(doc, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

// children lists the keys right below the first key named parent, without
// indentation, in document order.
func children(lines []string, parent string) []string {
	var out []string
	for _, block := range blocks(lines, parent) {
		out = append(out, strings.TrimSpace(block[0]))
	}
	return out
}

// reorder returns lines with the keys right below the first key named
// parent, each with the keys below it, in the order of names. A key not in
// names is left out, so that comparing the result shows it.
func reorder(lines []string, parent string, names []string) []string {
	i := slices.IndexFunc(lines, func(l string) bool { return strings.TrimSpace(l) == parent })
	if i < 0 {
		return lines
	}
	bs := blocks(lines, parent)
	end := i + 1
	for _, b := range bs {
		end += len(b)
	}
	out := slices.Clone(lines[:i+1])
	for _, name := range names {
		for _, b := range bs {
			if strings.TrimSpace(b[0]) == name {
				out = append(out, b...)
			}
		}
	}
	return append(out, lines[end:]...)
}

// blocks splits what lies below the first key named parent into one run of
// lines per key right below it, that key first.
func blocks(lines []string, parent string) [][]string {
	i := slices.IndexFunc(lines, func(l string) bool { return strings.TrimSpace(l) == parent })
	if i < 0 {
		return nil
	}
	depth := indent(lines[i])
	var out [][]string
	for j := i + 1; j < len(lines) && indent(lines[j]) > depth; j++ {
		if len(out) == 0 || indent(lines[j]) <= indent(out[len(out)-1][0]) {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], lines[j])
	}
	return out
}

// indent is how deep a key line is indented.
func indent(line string) int { return len(line) - len(strings.TrimLeft(line, " ")) }
