package stream

import (
	"errors"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// TestFilters streams a log with every kind of change through each filter
// field alone and in combination.
func TestFilters(t *testing.T) {
	e := newEnv(t, Options{HeartbeatInterval: 20 * time.Millisecond})
	changes := e.ingest(
		failed(1, 1, "invalid_mfa", 0),                            // 0: AUTH_FAILED, user 1
		connected(1, 1, time.Minute),                              // 1: RECOVERED, user 1
		connected(2, 2, 2*time.Minute),                            // no change: nothing to recover from
		updatedError(2, 2, "auth_required", 3*time.Minute),        // 2: DISCONNECTED, user 2
		connected(3, 2, 4*time.Minute),                            // no change
		updatedError(3, 2, "platform_unavailable", 5*time.Minute), // 3: DEGRADED, user 2
		removed(4, 1, 6*time.Minute),                              // 4: REMOVED, user 1, no code
		connected(2, 2, 7*time.Minute),                            // 5: RECOVERED, user 2
	)
	wantKinds := []health.Kind{health.KindAuthFailed, health.KindRecovered, health.KindDisconnected,
		health.KindDegraded, health.KindRemoved, health.KindRecovered}
	if len(changes) != len(wantKinds) {
		t.Fatalf("the script made %d changes, want %d", len(changes), len(wantKinds))
	}
	for i, k := range wantKinds {
		if changes[i].Kind != k {
			t.Fatalf("change %d is %s, want %s", i, changes[i].Kind, k)
		}
	}
	if changes[1].ErrorCode != "" || changes[4].ErrorCode != "" {
		t.Fatalf("recoveries and removals carry no error code, got %q and %q", changes[1].ErrorCode, changes[4].ErrorCode)
	}

	cases := []struct {
		name   string
		filter Filter
		want   []int // indexes in changes
	}{
		{"none: recoveries off by default", Filter{}, []int{0, 2, 3, 4}},
		{"include recoveries", Filter{IncludeRecoveries: true}, []int{0, 1, 2, 3, 4, 5}},
		{"user", Filter{UserIDs: []string{userID(1)}}, []int{0, 4}},
		{"users with recoveries", Filter{UserIDs: []string{userID(1), userID(9)}, IncludeRecoveries: true}, []int{0, 1, 4}},
		{"kinds", Filter{Kinds: []health.Kind{health.KindAuthFailed, health.KindRemoved}}, []int{0, 4}},
		{"kind recovered asks for recoveries", Filter{Kinds: []health.Kind{health.KindRecovered}}, []int{1, 5}},
		{"kinds plus recoveries", Filter{Kinds: []health.Kind{health.KindDegraded}, IncludeRecoveries: true}, []int{1, 3, 5}},
		{"error codes exclude removals", Filter{ErrorCodes: []string{"auth_required", "invalid_mfa"}}, []int{0, 2}},
		{"error codes leave recoveries alone", Filter{ErrorCodes: []string{"auth_required"}, IncludeRecoveries: true}, []int{1, 2, 5}},
		{"all fields", Filter{UserIDs: []string{userID(2)}, Kinds: []health.Kind{health.KindDisconnected, health.KindDegraded},
			ErrorCodes: []string{"platform_unavailable"}}, []int{3}},
		{"nothing matches", Filter{UserIDs: []string{userID(9)}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sub := e.subscribe(Request{Filter: c.filter, Start: StartAfter(0)})
			var want []store.Change
			for _, i := range c.want {
				want = append(want, changes[i])
			}
			checkSame(t, "received", want, drain(t, sub, lastSeq(changes)))
			// A compiled filter selects the same changes.
			m, err := c.filter.Compile()
			if err != nil {
				t.Fatal(err)
			}
			var matched []store.Change
			for i := range changes {
				if m.Match(&changes[i]) {
					matched = append(matched, changes[i])
				}
			}
			checkSame(t, "matched", want, matched)
		})
	}
}

func TestFilterRejectsUnknownKinds(t *testing.T) {
	e := newEnv(t, Options{})
	for _, k := range []health.Kind{health.KindUnspecified, health.KindFreshnessRestored + 1, -1} {
		_, err := e.broker.Subscribe(t.Context(), Request{Filter: Filter{Kinds: []health.Kind{k}}})
		if !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("kind %d: err = %v, want store.ErrInvalidArgument", int(k), err)
		}
		if _, err := (Filter{Kinds: []health.Kind{k}}).Compile(); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("kind %d: Compile: err = %v, want store.ErrInvalidArgument", int(k), err)
		}
	}
}

// TestFilterCorrections: corrections come with the default kinds, or when
// asked for by kind, whatever the error codes asked for; a user filter
// applies to them as to every change.
func TestFilterCorrections(t *testing.T) {
	correction := &store.Change{UserID: userID(1), Transition: health.Transition{
		Kind: health.KindCorrected, PreviousState: health.StateDisconnected, State: health.StateAuthFailed, ErrorCode: "invalid_mfa"}}
	cases := []struct {
		name   string
		filter Filter
		want   bool
	}{
		{"default kinds", Filter{}, true},
		{"asked for by kind", Filter{Kinds: []health.Kind{health.KindCorrected}}, true},
		{"other kinds only", Filter{Kinds: []health.Kind{health.KindDisconnected}}, false},
		{"another error code", Filter{ErrorCodes: []string{"auth_required"}}, true},
		{"the user", Filter{UserIDs: []string{userID(1)}}, true},
		{"another user", Filter{UserIDs: []string{userID(2)}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := c.filter.compile(time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if got := m.match(correction); got != c.want {
				t.Errorf("match = %v, want %v", got, c.want)
			}
		})
	}
}

// TestFilterItems: restored remedies come with the default kinds whatever
// the error codes; item-wide events only when asked for; an item filter
// selects both by their item, and a user filter leaves item-wide events
// (which name no user) out.
func TestFilterItems(t *testing.T) {
	restored := &store.Change{UserID: userID(1), Item: "item_1", Transition: health.Transition{
		Kind: health.KindRemedyRestored, State: health.StateDisconnected, ErrorCode: "auth_required"}}
	began := &store.Change{Item: "item_1", Transition: health.Transition{Kind: health.KindItemOutageBegan}}
	cases := []struct {
		name                string
		filter              Filter
		wantRestored, began bool
	}{
		{"default kinds", Filter{}, true, false},
		{"item events asked for", Filter{IncludeItemEvents: true}, true, true},
		{"asked for by kind", Filter{Kinds: []health.Kind{health.KindItemOutageBegan}}, false, true},
		{"another error code", Filter{ErrorCodes: []string{"invalid_mfa"}, IncludeItemEvents: true}, true, true},
		{"the item", Filter{Items: []string{"item_1"}, IncludeItemEvents: true}, true, true},
		{"another item", Filter{Items: []string{"item_2"}, IncludeItemEvents: true}, false, false},
		{"a user", Filter{UserIDs: []string{userID(1)}, IncludeItemEvents: true}, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := c.filter.compile(time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if got, gotBegan := m.match(restored), m.match(began); got != c.wantRestored || gotBegan != c.began {
				t.Errorf("match restored, began = %v, %v; want %v, %v", got, gotBegan, c.wantRestored, c.began)
			}
		})
	}
}

// TestFilterFreshness: freshness events come only when asked for (by the
// option or by kind), are not filtered by error code, and are filtered by
// user and item like any account's change.
func TestFilterFreshness(t *testing.T) {
	lost := &store.Change{UserID: userID(1), Item: "item_1", Transition: health.Transition{
		Kind: health.KindFreshnessLost, PreviousState: health.StateHealthy, State: health.StateHealthy,
		Freshness: health.FreshnessStale, PreviousFreshness: health.FreshnessFresh}}
	restored := &store.Change{UserID: userID(1), Item: "item_1", Transition: health.Transition{
		Kind: health.KindFreshnessRestored, PreviousState: health.StateHealthy, State: health.StateHealthy,
		Freshness: health.FreshnessFresh, PreviousFreshness: health.FreshnessStale}}
	cases := []struct {
		name                string
		filter              Filter
		wantLost, wantFresh bool
	}{
		{"default kinds", Filter{}, false, false},
		{"recoveries are not freshness", Filter{IncludeRecoveries: true}, false, false},
		{"asked for", Filter{IncludeFreshnessEvents: true}, true, true},
		{"asked for by kind", Filter{Kinds: []health.Kind{health.KindFreshnessLost}}, true, false},
		{"an error code", Filter{ErrorCodes: []string{"auth_required"}, IncludeFreshnessEvents: true}, true, true},
		{"the user", Filter{UserIDs: []string{userID(1)}, IncludeFreshnessEvents: true}, true, true},
		{"another user", Filter{UserIDs: []string{userID(2)}, IncludeFreshnessEvents: true}, false, false},
		{"another item", Filter{Items: []string{"item_2"}, IncludeFreshnessEvents: true}, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := c.filter.Compile()
			if err != nil {
				t.Fatal(err)
			}
			if gotLost, gotFresh := m.Match(lost), m.Match(restored); gotLost != c.wantLost || gotFresh != c.wantFresh {
				t.Errorf("match lost, restored = %v, %v; want %v, %v", gotLost, gotFresh, c.wantLost, c.wantFresh)
			}
		})
	}
}
