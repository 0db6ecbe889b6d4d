package health

import (
	"sort"
	"time"
)

// ItemStatus is a payroll platform's (an item's) health as this service
// derives it from what the provider reports and from its accounts. Higher
// is worse.
type ItemStatus int

const (
	// ItemStatusUnknown: no account names the item and no report came.
	ItemStatusUnknown ItemStatus = iota
	ItemStatusHealthy
	// ItemStatusIssues: the provider reports issues, or a status we do not
	// know, while its accounts do not fail together.
	ItemStatusIssues
	// ItemStatusSuspectedOutage: its accounts moved into provider-side or
	// login errors together, well above their usual rate, and no report
	// since says otherwise.
	ItemStatusSuspectedOutage
	// ItemStatusOutage: the provider reports it unavailable, or reports
	// issues while its accounts fail together.
	ItemStatusOutage
)

var itemStatusNames = [...]string{"UNKNOWN", "HEALTHY", "ISSUES", "SUSPECTED_OUTAGE", "OUTAGE"}

func (s ItemStatus) String() string {
	if s < 0 || int(s) >= len(itemStatusNames) {
		return "INVALID"
	}
	return itemStatusNames[s]
}

// InOutage reports whether s is an outage, reported or suspected: the
// accounts' users cannot fix it, so nobody should ask them to.
func (s ItemStatus) InOutage() bool {
	return s == ItemStatusOutage || s == ItemStatusSuspectedOutage
}

// Item statuses the provider documents for items.updated.
const (
	ReportedHealthy     = "healthy"
	ReportedIssues      = "issues"
	ReportedUnavailable = "unavailable"
)

// EventItemsUpdated is the provider's event for a change of an item.
const EventItemsUpdated = "items.updated"

// Our events that tell that an item's outage began or ended: item-wide
// (no account), committed once per change of the item's outage, and one
// per account of the item whose remedy depends on it (see ApplyItemOutage).
const (
	EventItemOutageBegan = "items.outage_began"
	EventItemOutageEnded = "items.outage_ended"
)

// ItemOutage is what an items.outage_* entry says.
type ItemOutage struct {
	Item     string
	InOutage bool       // began (true) or ended
	Status   ItemStatus // the item's status when it was decided
	Since    time.Time  // when the status began
}

// Event is the event name of o.
func (o ItemOutage) Event() string {
	if o.InOutage {
		return EventItemOutageBegan
	}
	return EventItemOutageEnded
}

// ItemReport is what the newest items.updated said of an item.
type ItemReport struct {
	Item       string
	Name       string
	Status     string // as the provider sent it; new values may appear
	Details    string // status_details, at most MaxMessageBytes of it
	ReceivedAt time.Time
}

// FailureBucket counts the accounts of an item that moved into a
// provider-side or login error (DEGRADED, AUTH_FAILED) within the minute
// that begins at Start.
type FailureBucket struct {
	Start time.Time
	N     int
}

// ItemSignals is what the store keeps of an item, from which
// DeriveItemHealth derives its status.
type ItemSignals struct {
	Item string
	// Counts are the item's accounts by state.
	Counts map[State]int
	// Failures are the item's recent failure buckets, oldest first.
	Failures []FailureBucket
	// Report is the newest items.updated for the item; nil when none came.
	Report *ItemReport
}

// ItemRules are the thresholds of the outage derivation.
type ItemRules struct {
	// Window is the short window in which failures count as together.
	Window time.Duration
	// Baseline is how far back the usual rate of failures is measured; it
	// must be longer than Window.
	Baseline time.Duration
	// MinFailures in Window, at least, and Factor times the usual number
	// per Window, suspect an outage: a trickle of single failures never
	// does, nor does the steady rate of a large item.
	MinFailures int
	Factor      float64
	// EndFailures and EndFactor: a suspected outage ends when fewer
	// failures than EndFailures, or than EndFactor times the usual number,
	// are in Window. Below MinFailures and Factor, so that a rate hovering
	// around the thresholds does not flap.
	EndFailures int
	EndFactor   float64
	// MinFailingAccounts of the item's accounts, at least, must be in
	// those errors at the time derived at for a suspicion to hold: one
	// account's troubles are its own, however often it fails.
	MinFailingAccounts int
}

// DefaultItemRules suits the provider's usual traffic: five accounts of
// one platform failing within 15 minutes, five times their usual rate over
// the day, start an outage; it ends when fewer than two, or than twice the
// usual number, failed in the last 15 minutes.
var DefaultItemRules = ItemRules{
	Window:      15 * time.Minute,
	Baseline:    24 * time.Hour,
	MinFailures: 5,
	Factor:      5,
	EndFailures: 2,
	EndFactor:   2,

	MinFailingAccounts: 2,
}

// ItemHealth is an item's derived health at one time.
type ItemHealth struct {
	Item   string
	Status ItemStatus
	// Since is when Status began, as far as the signals tell; zero when
	// they do not.
	Since  time.Time
	Counts map[State]int
	// RecentFailures are the failures within Window of the time derived
	// at; UsualFailures the number per Window over Baseline before it.
	RecentFailures int
	UsualFailures  float64
	Report         *ItemReport
}

// Failing counts the item's accounts that need attention and are not
// removed.
func (h ItemHealth) Failing() int {
	return h.Counts[StateAuthFailed] + h.Counts[StateDisconnected] + h.Counts[StateDegraded]
}

// Accounts counts all the item's accounts.
func (h ItemHealth) Accounts() int {
	n := 0
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// DeriveItemHealth derives an item's health at now from its signals under
// rules. It is pure. The suspicion is replayed through time, failure by
// failure, over the last Baseline before now (older failures only serve as
// the usual rate of the first moments; an outage is not told from the
// item's usual rate for longer than that), so that it has hysteresis
// without keeping a state: it begins at the first moment when at least
// MinFailures failed within Window and at least Factor times the usual
// number, and ends at the first moment after when fewer than EndFailures,
// or than EndFactor times the usual number, are within Window, or when a
// report of "healthy" came after it began (failures up to that report no
// longer count). The signals must hold the failures of 2*Baseline before
// now for the first moments' usual rate. A suspicion holds only while at
// least MinFailingAccounts of the item's accounts are in those errors.
// Then the report:
//   - "unavailable" is an outage whatever the accounts say;
//   - "issues" (or a status we do not know) is an outage while the
//     accounts are suspected, else issues;
//   - "healthy", or none, leaves the accounts' verdict.
func DeriveItemHealth(sig ItemSignals, rules ItemRules, now time.Time) ItemHealth {
	h := ItemHealth{Item: sig.Item, Counts: sig.Counts, Report: sig.Report}
	sp := replaySuspicion(sig.Failures, sig.Report, rules, now)
	h.RecentFailures, h.UsualFailures = sp.recent, sp.usual
	if sig.Counts[StateAuthFailed]+sig.Counts[StateDegraded] < rules.MinFailingAccounts {
		sp.suspected = false
	}
	rep := sig.Report
	switch {
	case rep != nil && rep.Status == ReportedUnavailable:
		h.Status, h.Since = ItemStatusOutage, rep.ReceivedAt
	case sp.suspected && rep != nil && rep.Status != ReportedHealthy:
		h.Status, h.Since = ItemStatusOutage, sp.began
	case sp.suspected:
		h.Status, h.Since = ItemStatusSuspectedOutage, sp.began
	case rep != nil && rep.Status != ReportedHealthy:
		h.Status, h.Since = ItemStatusIssues, rep.ReceivedAt
	case rep != nil || len(sig.Failures) > 0 || h.Accounts() > 0:
		h.Status, h.Since = ItemStatusHealthy, sp.ended
		if rep != nil && rep.ReceivedAt.After(h.Since) {
			h.Since = rep.ReceivedAt
		}
	}
	return h
}

// suspicion is the outcome of replaying an item's failures.
type suspicion struct {
	suspected bool
	began     time.Time // of the suspicion under way, or of the last one
	ended     time.Time // of the last suspicion that ended; zero if none
	recent    int
	usual     float64
}

// replaySuspicion walks the moments at which the failures within Window
// change (a bucket enters, a bucket leaves) up to now, and the report's
// arrival, through the begin and end conditions of DeriveItemHealth.
func replaySuspicion(failures []FailureBucket, rep *ItemReport, rules ItemRules, now time.Time) suspicion {
	fw := newFailureWindow(failures)
	var healthyAt time.Time
	if rep != nil && rep.Status == ReportedHealthy {
		healthyAt = rep.ReceivedAt
	}
	moments := make([]time.Time, 0, 2*len(failures)+2)
	for _, b := range failures {
		moments = append(moments, b.Start, b.Start.Add(rules.Window))
	}
	if !healthyAt.IsZero() {
		moments = append(moments, healthyAt)
	}
	moments = append(moments, now)
	sort.Slice(moments, func(i, j int) bool { return moments[i].Before(moments[j]) })

	var (
		sp    suspicion
		floor time.Time // failures at or before it no longer count
	)
	start := now.Add(-rules.Baseline)
	for _, t := range moments {
		if t.Before(start) {
			continue
		}
		if t.After(now) {
			break
		}
		if sp.suspected && !healthyAt.IsZero() && !t.Before(healthyAt) && !healthyAt.Before(sp.began) {
			sp.suspected, sp.ended, floor = false, healthyAt, healthyAt
		}
		from := t.Add(-rules.Window)
		if floor.After(from) {
			from = floor
		}
		recent := fw.count(from, t)
		usual := float64(fw.count(t.Add(-rules.Baseline), t.Add(-rules.Window))) *
			float64(rules.Window) / float64(rules.Baseline-rules.Window)
		switch {
		case !sp.suspected && recent >= rules.MinFailures && float64(recent) >= rules.Factor*usual:
			sp.suspected, sp.began = true, t
		case sp.suspected && (recent < rules.EndFailures || float64(recent) < rules.EndFactor*usual):
			sp.suspected, sp.ended = false, t
		}
		sp.recent, sp.usual = recent, usual
	}
	return sp
}

// failureWindow counts failures between two times by prefix sums.
type failureWindow struct {
	starts []time.Time
	prefix []int // prefix[i]: failures in the buckets before i
}

func newFailureWindow(failures []FailureBucket) failureWindow {
	fw := failureWindow{starts: make([]time.Time, len(failures)), prefix: make([]int, len(failures)+1)}
	for i, b := range failures {
		fw.starts[i] = b.Start
		fw.prefix[i+1] = fw.prefix[i] + b.N
	}
	return fw
}

// count is the failures in (from, to].
func (fw failureWindow) count(from, to time.Time) int {
	return fw.prefix[fw.upTo(to)] - fw.prefix[fw.upTo(from)]
}

// upTo is the number of buckets that start at or before t.
func (fw failureWindow) upTo(t time.Time) int {
	return sort.Search(len(fw.starts), func(i int) bool { return fw.starts[i].After(t) })
}
