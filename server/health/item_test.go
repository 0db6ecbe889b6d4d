package health

import (
	"testing"
	"time"
)

var itemT0 = time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)

// itemAt is itemT0 plus d.
func itemAt(d time.Duration) time.Time { return itemT0.Add(d) }

// every makes n buckets of one failure each, step apart, from start.
func every(start time.Time, step time.Duration, n int) []FailureBucket {
	bs := make([]FailureBucket, n)
	for i := range bs {
		bs[i] = FailureBucket{Start: start.Add(time.Duration(i) * step), N: 1}
	}
	return bs
}

func report(status string, d time.Duration) *ItemReport {
	return &ItemReport{Item: "item_1", Status: status, ReceivedAt: itemAt(d)}
}

func TestDeriveItemHealth(t *testing.T) {
	burst := []FailureBucket{{Start: itemAt(0), N: 2}, {Start: itemAt(time.Minute), N: 2}, {Start: itemAt(2 * time.Minute), N: 2}}
	// Six accounts in error now: enough for a suspicion to hold.
	healthyCounts := map[State]int{StateHealthy: 34, StateDegraded: 4, StateAuthFailed: 2}
	tests := []struct {
		name       string
		sig        ItemSignals
		now        time.Time
		want       ItemStatus
		wantSince  time.Time
		wantRecent int
	}{
		{name: "nothing known", now: itemAt(0), want: ItemStatusUnknown},
		{name: "accounts only, no failure", sig: ItemSignals{Counts: healthyCounts}, now: itemAt(0), want: ItemStatusHealthy},
		{
			name: "a trickle all day is no outage",
			sig:  ItemSignals{Counts: healthyCounts, Failures: every(itemAt(-24*time.Hour), 10*time.Minute, 144)},
			now:  itemAt(0), want: ItemStatusHealthy, wantRecent: 1,
		},
		{
			name: "a steady high rate of a large item is no outage",
			sig:  ItemSignals{Counts: map[State]int{StateHealthy: 5000}, Failures: every(itemAt(-48*time.Hour), 90*time.Second, 1920)},
			now:  itemAt(0), want: ItemStatusHealthy, wantRecent: 9,
		},
		{
			name: "a burst over a large item's steady rate is a suspected outage",
			sig: ItemSignals{Counts: map[State]int{StateHealthy: 4940, StateDegraded: 60}, Failures: append(
				every(itemAt(-48*time.Hour), 90*time.Second, 1920), FailureBucket{Start: itemAt(0), N: 60})},
			now: itemAt(time.Minute), want: ItemStatusSuspectedOutage, wantSince: itemAt(0), wantRecent: 69,
		},
		{
			name: "and it ends when the steady rate is back, above EndFailures",
			sig: ItemSignals{Counts: map[State]int{StateHealthy: 5000}, Failures: append(append(
				every(itemAt(-48*time.Hour), 90*time.Second, 1920), FailureBucket{Start: itemAt(0), N: 60}),
				every(itemAt(90*time.Second), 90*time.Second, 40)...)},
			now: itemAt(time.Hour), want: ItemStatusHealthy, wantSince: itemAt(15 * time.Minute), wantRecent: 10,
		},
		{
			name: "a burst well above the usual rate is a suspected outage",
			sig:  ItemSignals{Counts: healthyCounts, Failures: burst},
			now:  itemAt(5 * time.Minute), want: ItemStatusSuspectedOutage, wantSince: itemAt(2 * time.Minute), wantRecent: 6,
		},
		{
			name: "the same burst over a day of trickle is still one",
			sig:  ItemSignals{Counts: healthyCounts, Failures: append(every(itemAt(-24*time.Hour), 30*time.Minute, 47), burst...)},
			now:  itemAt(5 * time.Minute), want: ItemStatusSuspectedOutage, wantSince: itemAt(2 * time.Minute), wantRecent: 6,
		},
		{
			name: "the same burst with one account in error now is its own trouble",
			sig:  ItemSignals{Counts: map[State]int{StateHealthy: 39, StateAuthFailed: 1}, Failures: burst},
			now:  itemAt(5 * time.Minute), want: ItemStatusHealthy, wantRecent: 6,
		},
		{
			name: "four failures together are not enough",
			sig:  ItemSignals{Counts: healthyCounts, Failures: burst[:2]},
			now:  itemAt(5 * time.Minute), want: ItemStatusHealthy, wantRecent: 4,
		},
		{
			name: "a suspicion ends when the failures leave the window",
			sig:  ItemSignals{Counts: healthyCounts, Failures: burst},
			// The last two leave at 17 min: from then on, none is within.
			now: itemAt(time.Hour), want: ItemStatusHealthy, wantSince: itemAt(17 * time.Minute),
		},
		{
			name: "hysteresis: failures below the start threshold keep it going",
			sig: ItemSignals{Counts: healthyCounts, Failures: append(burst,
				every(itemAt(10*time.Minute), 7*time.Minute, 8)...)},
			now: itemAt(65 * time.Minute), want: ItemStatusSuspectedOutage, wantSince: itemAt(2 * time.Minute), wantRecent: 2,
		},
		{
			name: "reported issues confirm the suspicion",
			sig:  ItemSignals{Counts: healthyCounts, Failures: burst, Report: report(ReportedIssues, 4*time.Minute)},
			now:  itemAt(5 * time.Minute), want: ItemStatusOutage, wantSince: itemAt(2 * time.Minute), wantRecent: 6,
		},
		{
			name: "reported unavailable is an outage without any failure",
			sig:  ItemSignals{Counts: healthyCounts, Report: report(ReportedUnavailable, 0)},
			now:  itemAt(5 * time.Minute), want: ItemStatusOutage, wantSince: itemAt(0),
		},
		{
			name: "reported healthy after it began ends the suspicion",
			sig:  ItemSignals{Counts: healthyCounts, Failures: burst, Report: report(ReportedHealthy, 4*time.Minute)},
			now:  itemAt(5 * time.Minute), want: ItemStatusHealthy, wantSince: itemAt(4 * time.Minute),
		},
		{
			name: "new failures after that report start a new one",
			sig: ItemSignals{Counts: healthyCounts, Report: report(ReportedHealthy, 4*time.Minute),
				Failures: append(burst, every(itemAt(5*time.Minute), 30*time.Second, 5)...)},
			now: itemAt(8 * time.Minute), want: ItemStatusSuspectedOutage, wantSince: itemAt(7 * time.Minute), wantRecent: 5,
		},
		{
			name: "reported healthy before the burst does not end it",
			sig:  ItemSignals{Counts: healthyCounts, Failures: burst, Report: report(ReportedHealthy, -time.Hour)},
			now:  itemAt(5 * time.Minute), want: ItemStatusSuspectedOutage, wantSince: itemAt(2 * time.Minute), wantRecent: 6,
		},
		{
			name: "reported issues alone",
			sig:  ItemSignals{Counts: healthyCounts, Report: report(ReportedIssues, 0)},
			now:  itemAt(5 * time.Minute), want: ItemStatusIssues, wantSince: itemAt(0),
		},
		{
			name: "a status we do not know reads as issues",
			sig:  ItemSignals{Report: report("maintenance", 0)},
			now:  itemAt(5 * time.Minute), want: ItemStatusIssues, wantSince: itemAt(0),
		},
		{
			name: "failures in the future of now do not count",
			sig:  ItemSignals{Counts: healthyCounts, Failures: burst},
			now:  itemAt(-time.Minute), want: ItemStatusHealthy,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.sig.Item = "item_1"
			got := DeriveItemHealth(tt.sig, DefaultItemRules, tt.now)
			if got.Status != tt.want || !got.Since.Equal(tt.wantSince) || got.RecentFailures != tt.wantRecent {
				t.Errorf("got %v since %v, %d recent; want %v since %v, %d recent",
					got.Status, got.Since, got.RecentFailures, tt.want, tt.wantSince, tt.wantRecent)
			}
		})
	}
}

// TestDeriveItemHealthNoFlap derives the status at every minute of a day
// of random-free but uneven trickle: it must never suspect an outage.
func TestDeriveItemHealthNoFlap(t *testing.T) {
	// Two failures close together every 40 minutes: near, never at, the
	// threshold.
	var fs []FailureBucket
	for i := range 36 {
		s := itemAt(time.Duration(i) * 40 * time.Minute)
		fs = append(fs, FailureBucket{Start: s, N: 2}, FailureBucket{Start: s.Add(3 * time.Minute), N: 2})
	}
	sig := ItemSignals{Item: "item_1", Counts: map[State]int{StateHealthy: 100}, Failures: fs}
	for m := range 24 * 60 {
		if got := DeriveItemHealth(sig, DefaultItemRules, itemAt(time.Duration(m)*time.Minute)); got.Status != ItemStatusHealthy {
			t.Fatalf("at minute %d: %v with %d recent", m, got.Status, got.RecentFailures)
		}
	}
}

func TestItemStatusNames(t *testing.T) {
	for s := ItemStatusUnknown; s <= ItemStatusOutage; s++ {
		if s.String() == "INVALID" {
			t.Errorf("status %d has no name", s)
		}
	}
	if ItemStatus(99).String() != "INVALID" {
		t.Error("an unknown status has a name")
	}
	if !ItemStatusSuspectedOutage.InOutage() || !ItemStatusOutage.InOutage() || ItemStatusIssues.InOutage() {
		t.Error("InOutage is wrong")
	}
}

func outageEntry(item string, in bool, n int) Delivery {
	o := &ItemOutage{Item: item, InOutage: in, Status: ItemStatusSuspectedOutage, Since: at(n)}
	return Delivery{Event: o.Event(), AccountID: testAccount, UserID: testUser, ReceivedAt: at(n), ItemOutage: o}
}

// onTestItem applies d, then puts the record on item_1, as an account
// object naming it would.
func onTestItem(cur Record, ds ...Delivery) Record {
	for _, d := range ds {
		if d.Snapshot != nil {
			d.Snapshot.Item = "item_1"
		}
		cur = Apply(cur, d).Record
	}
	return cur
}

func TestApplyItemOutage(t *testing.T) {
	connected := withResource(event(EventAccountsConnected, 0), ConnectionConnected, "", 0, true)
	loggedOut := withResource(event(EventAccountsUpdated, 1), ConnectionError, "auth_required", 1, true)
	disconnected := onTestItem(Record{}, connected, loggedOut)
	waiting := Apply(disconnected, outageEntry("item_1", true, 2)).Record
	healthy := onTestItem(Record{}, connected)
	tests := []struct {
		name        string
		cur         Record
		d           Delivery
		wantOutcome Outcome
		wantAction  Action
		wantKind    Kind
		wantOutage  bool
	}{
		{"an outage makes a disconnected account wait, silently", disconnected, outageEntry("item_1", true, 2), OutcomeApplied, ActionWait, KindUnspecified, true},
		{"its end restores the remedy, with an event", waiting, outageEntry("item_1", false, 3), OutcomeApplied, ActionReconnect, KindRemedyRestored, false},
		{
			"a provider-side error waits after the outage too: no event", Apply(Apply(healthy, outageEntry("item_1", true, 2)).Record,
				withResource(event(EventAccountsUpdated, 3), ConnectionError, "platform_unavailable", 3, true)).Record,
			outageEntry("item_1", false, 4), OutcomeApplied, ActionWait, KindUnspecified, false,
		},
		{"an end repeated changes nothing", disconnected, outageEntry("item_1", false, 3), OutcomeApplied, ActionReconnect, KindUnspecified, false},
		{"a healthy account has nothing to wait for", healthy, outageEntry("item_1", true, 2), OutcomeApplied, ActionNone, KindUnspecified, true},
		{"nor any event when it ends", Apply(healthy, outageEntry("item_1", true, 2)).Record, outageEntry("item_1", false, 3), OutcomeApplied, ActionNone, KindUnspecified, false},
		{"another item's outage", disconnected, outageEntry("item_2", true, 2), OutcomeNotAccountEvent, ActionReconnect, KindUnspecified, false},
		{"no record", Record{}, outageEntry("item_1", true, 2), OutcomeNotAccountEvent, ActionNone, KindUnspecified, false},
		{"a removed account", onTestItem(disconnected, event(EventAccountsRemoved, 2)), outageEntry("item_1", true, 3), OutcomeAfterRemoval, ActionConnectNewAccount, KindUnspecified, false},
		{
			"a failure during the outage is told with the remedy to wait", Apply(healthy, outageEntry("item_1", true, 2)).Record,
			withResource(event(EventAccountsUpdated, 3), ConnectionError, "platform_unavailable", 3, true), OutcomeApplied, ActionWait, KindDegraded, true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Apply(tt.cur, tt.d)
			kind := KindUnspecified
			if res.Transition != nil {
				kind = res.Transition.Kind
				if res.Transition.Remedy != res.Record.Remedy {
					t.Errorf("transition's remedy %+v, record's %+v", res.Transition.Remedy, res.Record.Remedy)
				}
			}
			if res.Outcome != tt.wantOutcome || res.Record.Remedy.Action != tt.wantAction || kind != tt.wantKind || res.Record.ItemOutage != tt.wantOutage {
				t.Errorf("got %v, remedy %v, kind %v, outage %v; want %v, %v, %v, %v",
					res.Outcome, res.Record.Remedy.Action, kind, res.Record.ItemOutage, tt.wantOutcome, tt.wantAction, tt.wantKind, tt.wantOutage)
			}
			if res.Record.State != tt.cur.State && tt.d.ItemOutage != nil {
				t.Errorf("an outage entry changed the state from %v to %v", tt.cur.State, res.Record.State)
			}
		})
	}
}
