package health

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// staleAfter is the sweeper's age in these tests.
const staleAfter = 72 * time.Hour

var freshStart = time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)

// freshStep is one thing that happens to an account, and what its
// freshness must be after it.
type freshStep struct {
	at   time.Duration // after freshStart
	do   func(rec Record, at time.Time) Result
	want Freshness
	kind Kind     // the event it must cause; KindUnspecified: none
	sets []string // FailedDatasets after it
}

func synced(name string) DatasetStatus     { return DatasetStatus{name, DatasetSynced} }
func inProgress(name string) DatasetStatus { return DatasetStatus{name, DatasetInProgress} }
func syncFailed(name string) DatasetStatus { return DatasetStatus{name, DatasetSyncFailed} }

// object delivers an accounts.updated whose object says the connection is
// status, last scanned scannedAt after freshStart (negative: never), with
// ongoing_refresh refresh and availability ds.
func object(status string, scannedAt time.Duration, refresh string, ds ...DatasetStatus) func(Record, time.Time) Result {
	return func(rec Record, at time.Time) Result {
		s := &Snapshot{ConnectionStatus: status, UpdatedAt: at, ConnectionUpdatedAt: at, RefreshStatus: refresh, Datasets: ds}
		if status == ConnectionError {
			s.ConnectionErrorCode = "auth_required"
		}
		if scannedAt >= 0 {
			s.ScannedAt = freshStart.Add(scannedAt)
		}
		return Apply(rec, Delivery{Event: EventAccountsUpdated, AccountID: testAccount, UserID: testUser, ReceivedAt: at, Snapshot: s})
	}
}

func connectedObject(scannedAt time.Duration, ds ...DatasetStatus) func(Record, time.Time) Result {
	return object(ConnectionConnected, scannedAt, "enabled", ds...)
}

// sweep is what the staleness sweeper does at at: judge the record stale
// when its data is older than staleAfter.
func sweep(rec Record, at time.Time) Result {
	if rec.FreshAsOf.IsZero() || at.Sub(rec.FreshAsOf) <= staleAfter {
		return Result{Record: rec, Outcome: OutcomeStale}
	}
	return Apply(rec, Delivery{Event: EventAccountStale, AccountID: testAccount, UserID: testUser, ReceivedAt: at,
		Staleness: &Staleness{FreshAsOf: rec.FreshAsOf, Since: rec.FreshAsOf.Add(staleAfter)}})
}

// staleVerdict delivers a freshness.stale entry judged on a record fresh
// as of freshAsOf after freshStart.
func staleVerdict(freshAsOf time.Duration) func(Record, time.Time) Result {
	return func(rec Record, at time.Time) Result {
		return Apply(rec, Delivery{Event: EventAccountStale, AccountID: testAccount, UserID: testUser, ReceivedAt: at,
			Staleness: &Staleness{FreshAsOf: freshStart.Add(freshAsOf), Since: freshStart.Add(freshAsOf + staleAfter)}})
	}
}

// rescans are a week of the provider's rescans every 8 hours, each
// telling the datasets in progress and then how they ended (end), with
// the sweeper passing every hour between them.
func rescans(from time.Duration, end func(scan int) []DatasetStatus, want func(scan int) Freshness) []freshStep {
	var steps []freshStep
	for scan := range 21 {
		start := from + time.Duration(scan)*8*time.Hour
		steps = append(steps,
			freshStep{at: start, do: connectedObject(start-8*time.Hour, inProgress("paystubs"), inProgress("identities")), want: want(scan - 1)},
			freshStep{at: start + 20*time.Minute, do: connectedObject(start+20*time.Minute, end(scan)...), want: want(scan)})
		for h := 1; h < 8; h++ {
			steps = append(steps, freshStep{at: start + time.Duration(h)*time.Hour, do: sweep, want: want(scan)})
		}
	}
	return steps
}

func TestFreshness(t *testing.T) {
	allSynced := func(int) []DatasetStatus { return []DatasetStatus{synced("paystubs"), synced("identities")} }
	always := func(f Freshness) func(int) Freshness { return func(int) Freshness { return f } }
	connect := freshStep{at: 0, do: connectedObject(0, synced("paystubs"), synced("identities")), want: FreshnessFresh, kind: KindUnspecified}
	tests := []struct {
		name  string
		steps []freshStep
		// kinds, when set, are all the events the steps cause, in order,
		// instead of each step's kind (for long generated stories).
		kinds []Kind
	}{
		{
			name:  "a week of rescans every 8 hours never leaves FRESH",
			steps: append([]freshStep{connect}, rescans(8*time.Hour, allSynced, always(FreshnessFresh))...),
			kinds: []Kind{},
		},
		{
			name: "a dataset failing at every other rescan is one event each way, not one per scan",
			steps: append([]freshStep{connect}, rescans(8*time.Hour, func(scan int) []DatasetStatus {
				if scan >= 5 && scan < 10 {
					return []DatasetStatus{syncFailed("paystubs"), synced("identities")}
				}
				return allSynced(scan)
			}, func(scan int) Freshness {
				if scan >= 5 && scan < 10 {
					return FreshnessSyncFailed
				}
				return FreshnessFresh
			})...),
			kinds: []Kind{KindFreshnessLost, KindFreshnessRestored},
		},
		{
			name: "in_progress and new statuses keep a failed dataset failed until it is synced",
			steps: []freshStep{
				connect,
				{at: time.Hour, do: connectedObject(time.Hour, syncFailed("paystubs"), synced("identities")), want: FreshnessSyncFailed, kind: KindFreshnessLost, sets: []string{"paystubs"}},
				{at: 9 * time.Hour, do: connectedObject(time.Hour, inProgress("paystubs"), DatasetStatus{"identities", "queued"}), want: FreshnessSyncFailed, sets: []string{"paystubs"}},
				{at: 10 * time.Hour, do: connectedObject(10*time.Hour, DatasetStatus{"paystubs", "queued"}, syncFailed("identities")), want: FreshnessSyncFailed, sets: []string{"identities", "paystubs"}},
				{at: 11 * time.Hour, do: connectedObject(11 * time.Hour), want: FreshnessSyncFailed, sets: []string{"identities", "paystubs"}},
				{at: 12 * time.Hour, do: connectedObject(12*time.Hour, synced("paystubs"), synced("identities")), want: FreshnessFresh, kind: KindFreshnessRestored},
			},
		},
		{
			name: "no scan for longer than the age: stale once, until the next scan",
			steps: []freshStep{
				connect,
				{at: 72 * time.Hour, do: sweep, want: FreshnessFresh},
				{at: 73 * time.Hour, do: sweep, want: FreshnessStale, kind: KindFreshnessLost},
				{at: 74 * time.Hour, do: staleVerdict(0), want: FreshnessStale},
				{at: 75 * time.Hour, do: connectedObject(0, synced("paystubs")), want: FreshnessStale},
				{at: 76 * time.Hour, do: connectedObject(76*time.Hour, synced("paystubs")), want: FreshnessFresh, kind: KindFreshnessRestored},
				{at: 77 * time.Hour, do: staleVerdict(0), want: FreshnessFresh},
			},
		},
		{
			name: "a verdict on data a scan has renewed since is late",
			steps: []freshStep{
				connect,
				{at: 70 * time.Hour, do: connectedObject(70 * time.Hour), want: FreshnessFresh},
				{at: 73 * time.Hour, do: staleVerdict(0), want: FreshnessFresh},
			},
		},
		{
			name: "never scanned: the age counts from the connection",
			steps: []freshStep{
				{at: 0, do: connectedObject(-1), want: FreshnessFresh},
				{at: 73 * time.Hour, do: sweep, want: FreshnessStale, kind: KindFreshnessLost},
			},
		},
		{
			name: "first seen HEALTHY with an old scan: stale at the first sweep, however late the service came",
			steps: []freshStep{
				{at: 200 * time.Hour, do: connectedObject(0), want: FreshnessFresh},
				{at: 201 * time.Hour, do: sweep, want: FreshnessStale, kind: KindFreshnessLost},
			},
		},
		{
			name: "a first connection, through CONNECTING, with an old scan: as old as the scan",
			steps: []freshStep{
				{at: 200 * time.Hour, do: object(ConnectionConnecting, -1, "enabled"), want: FreshnessUnknown},
				{at: 201 * time.Hour, do: connectedObject(0), want: FreshnessFresh},
				{at: 202 * time.Hour, do: sweep, want: FreshnessStale, kind: KindFreshnessLost},
			},
		},
		{
			name: "refresh disabled outranks staleness, which shows once refresh is enabled, until a scan",
			steps: []freshStep{
				connect,
				{at: time.Hour, do: object(ConnectionConnected, 0, RefreshDisabled), want: FreshnessRefreshDisabled, kind: KindFreshnessLost},
				{at: 9 * time.Hour, do: object(ConnectionConnected, 0, RefreshDisabled), want: FreshnessRefreshDisabled},
				{at: 10 * time.Hour, do: object(ConnectionConnected, 0, ""), want: FreshnessRefreshDisabled},
				{at: 80 * time.Hour, do: sweep, want: FreshnessRefreshDisabled},
				{at: 81 * time.Hour, do: object(ConnectionConnected, 0, "idle"), want: FreshnessStale, kind: KindFreshnessLost},
				{at: 82 * time.Hour, do: connectedObject(82 * time.Hour), want: FreshnessFresh, kind: KindFreshnessRestored},
			},
		},
		{
			name: "a disconnection forgets staleness; the recovery carries the freshness, with no event of its own, and the age counts from it",
			steps: []freshStep{
				connect,
				{at: 73 * time.Hour, do: sweep, want: FreshnessStale, kind: KindFreshnessLost},
				{at: 74 * time.Hour, do: object(ConnectionError, 0, "enabled"), want: FreshnessUnknown, kind: KindDisconnected},
				{at: 200 * time.Hour, do: sweep, want: FreshnessUnknown},
				{at: 201 * time.Hour, do: connectedObject(0), want: FreshnessFresh, kind: KindRecovered},
				{at: 273 * time.Hour, do: sweep, want: FreshnessFresh},
				{at: 274 * time.Hour, do: sweep, want: FreshnessStale, kind: KindFreshnessLost},
			},
		},
		{
			name: "a recovery into a failed sync carries it",
			steps: []freshStep{
				connect,
				{at: time.Hour, do: object(ConnectionError, 0, "enabled"), want: FreshnessUnknown, kind: KindDisconnected},
				{at: 2 * time.Hour, do: connectedObject(2*time.Hour, syncFailed("paystubs")), want: FreshnessSyncFailed, kind: KindRecovered, sets: []string{"paystubs"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec Record
			var kinds []Kind
			for i, s := range tt.steps {
				at := freshStart.Add(s.at)
				res := s.do(rec, at)
				label := fmt.Sprintf("step %d at +%v", i, s.at)
				if res.Record.Freshness != s.want {
					t.Fatalf("%s: freshness %v, want %v (record %+v)", label, res.Record.Freshness, s.want, res.Record)
				}
				if s.sets != nil && !slices.Equal(res.Record.FailedDatasets, s.sets) {
					t.Errorf("%s: failed datasets %q, want %q", label, res.Record.FailedDatasets, s.sets)
				}
				var kind Kind
				if tr := res.Transition; tr != nil {
					kind = tr.Kind
					kinds = append(kinds, kind)
					if tr.Freshness != res.Record.Freshness || !slices.Equal(tr.FailedDatasets, res.Record.FailedDatasets) {
						t.Errorf("%s: event carries freshness %v %q, the record has %v %q", label, tr.Freshness, tr.FailedDatasets, res.Record.Freshness, res.Record.FailedDatasets)
					}
				}
				if tt.kinds == nil && kind != s.kind {
					t.Errorf("%s: event %v, want %v", label, kind, s.kind)
				}
				checkFreshness(t, res.Record)
				rec = res.Record
			}
			if tt.kinds != nil && !slices.Equal(kinds, tt.kinds) {
				t.Errorf("events %v, want %v", kinds, tt.kinds)
			}
		})
	}
}

// TestFreshnessSince: staleness begins when the data passed the age, not
// when the sweeper noticed; other changes begin at their delivery.
func TestFreshnessSince(t *testing.T) {
	rec := connectedObject(0)(Record{}, freshStart).Record
	if !rec.FreshnessSince.Equal(freshStart) {
		t.Fatalf("fresh since %v, want %v", rec.FreshnessSince, freshStart)
	}
	rec = sweep(rec, freshStart.Add(100*time.Hour)).Record
	if want := freshStart.Add(staleAfter); rec.Freshness != FreshnessStale || !rec.FreshnessSince.Equal(want) {
		t.Fatalf("%v since %v, want STALE since %v", rec.Freshness, rec.FreshnessSince, want)
	}
	at := freshStart.Add(101 * time.Hour)
	rec = object(ConnectionConnected, 0, RefreshDisabled)(rec, at).Record
	if rec.Freshness != FreshnessRefreshDisabled || !rec.FreshnessSince.Equal(at) {
		t.Fatalf("%v since %v, want REFRESH_DISABLED since %v", rec.Freshness, rec.FreshnessSince, at)
	}
}

// TestStalenessEntryRecordedOnly: a verdict on no record, a removed one or
// one in another state changes nothing.
func TestStalenessEntryRecordedOnly(t *testing.T) {
	removed := Apply(connectedObject(0)(Record{}, freshStart).Record,
		Delivery{Event: EventAccountsRemoved, AccountID: testAccount, ReceivedAt: freshStart.Add(time.Hour)}).Record
	disconnected := object(ConnectionError, 0, "enabled")(Record{}, freshStart).Record
	for _, tt := range []struct {
		name string
		cur  Record
		want Outcome
	}{
		{"no record", Record{}, OutcomeNotAccountEvent},
		{"removed", removed, OutcomeAfterRemoval},
		{"disconnected", disconnected, OutcomeStale},
	} {
		res := staleVerdict(0)(tt.cur, freshStart.Add(100*time.Hour))
		if res.Outcome != tt.want || res.Transition != nil || !slices.Equal(res.Record.FailedDatasets, tt.cur.FailedDatasets) || res.Record.Freshness != tt.cur.Freshness {
			t.Errorf("%s: %v, transition %+v, freshness %v; want %v, unchanged", tt.name, res.Outcome, res.Transition, res.Record.Freshness, tt.want)
		}
	}
}

// TestFreshnessFirstVerdictSilent: a HEALTHY record derived under rules
// that knew no freshness gets its first verdict without an event, whatever
// the delivery says (a fuzzed lean accounts.updated once made it
// FRESHNESS_RESTORED).
func TestFreshnessFirstVerdictSilent(t *testing.T) {
	legacy := Record{AccountID: testAccount, State: StateHealthy, StateSince: freshStart, EverConnected: true}
	legacy.Remedy = remedyFor(legacy)
	at := freshStart.Add(time.Hour)
	for _, tt := range []struct {
		name    string
		deliver func(Record, time.Time) Result
		want    Freshness
	}{
		{"lean accounts.updated", func(rec Record, at time.Time) Result {
			return Apply(rec, Delivery{Event: EventAccountsUpdated, AccountID: testAccount, ReceivedAt: at})
		}, FreshnessFresh},
		{"an object with a failed dataset", connectedObject(time.Hour, syncFailed("paystubs")), FreshnessSyncFailed},
		{"an object with refresh disabled", object(ConnectionConnected, time.Hour, RefreshDisabled), FreshnessRefreshDisabled},
	} {
		res := tt.deliver(legacy, at)
		if res.Record.Freshness != tt.want || res.Transition != nil {
			t.Errorf("%s: %v, transition %+v; want %v and no event", tt.name, res.Record.Freshness, res.Transition, tt.want)
		}
	}
}
