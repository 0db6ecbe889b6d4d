package health

import (
	"slices"
	"time"
)

// Freshness says whether a HEALTHY account's data still arrives. It is a
// property of a connected account, not a state of its own: the account
// needs nobody to log in again (its state and remedy say so), yet its
// data may be old. Accounts in any other state have FreshnessUnknown:
// their state already tells why no data comes.
type Freshness int

const (
	FreshnessUnknown Freshness = iota
	// FreshnessFresh: refresh on, no dataset failed, scanned recently.
	FreshnessFresh
	// FreshnessStale: not scanned for longer than the service's stale-after
	// age (a Staleness entry said so), and no scan since.
	FreshnessStale
	// FreshnessRefreshDisabled: the provider's ongoing refresh of the
	// account is disabled; no new data comes until it is enabled again.
	FreshnessRefreshDisabled
	// FreshnessSyncFailed: some datasets failed to sync (FailedDatasets).
	FreshnessSyncFailed
)

var freshnessNames = [...]string{"UNKNOWN", "FRESH", "STALE", "REFRESH_DISABLED", "SYNC_FAILED"}

func (f Freshness) String() string {
	if f < 0 || int(f) >= len(freshnessNames) {
		return "INVALID"
	}
	return freshnessNames[f]
}

// Values of the account object's ongoing_refresh.status and of its
// availability.<dataset>.status that the rules read; others are kept
// without meaning anything.
const (
	RefreshDisabled   = "disabled"
	DatasetSynced     = "synced"
	DatasetInProgress = "in_progress"
	DatasetSyncFailed = "sync_failed"
)

// DatasetStatus is one entry of the account object's availability.
type DatasetStatus struct {
	Name   string // e.g. "paystubs"
	Status string // synced, in_progress, sync_failed, or a new value
}

// EventAccountStale names the entries of the service's own staleness
// sweeper (see Staleness).
const EventAccountStale = "freshness.stale"

// Staleness is what a freshness.stale entry says: the account's data,
// fresh as of FreshAsOf (the record's, as the sweeper read it), has been
// stale since Since. The age that makes data stale is the service's
// setting, not a rule: the entry carries its verdict, so a rebuild derives
// the same freshness whatever the setting is by then.
type Staleness struct {
	FreshAsOf time.Time
	Since     time.Time
}

// FreshnessMessage explains f to a person.
func FreshnessMessage(f Freshness) string {
	switch f {
	case FreshnessFresh:
		return "The account's data is up to date."
	case FreshnessStale:
		return "The provider has not scanned the account for longer than the service's stale-after age; its data may be old. No action from the user is needed unless it stays so."
	case FreshnessRefreshDisabled:
		return "The provider's ongoing refresh of the account is disabled: no new data arrives until it is enabled again at the provider."
	case FreshnessSyncFailed:
		return "Some of the account's datasets failed to sync at their last scan; their data may be old until a later scan syncs them."
	}
	return "Freshness applies to HEALTHY accounts only; the account's state tells why no data arrives."
}

// deriveFreshness sets next's freshness after a delivery d applied to it
// (from cur). Only a snapshot tells it, and in ways that do not flap over
// the provider's rescans:
//   - a dataset in_progress (or of a status not known) keeps its verdict
//     from before the scan: a failed one stays failed until it is synced;
//   - a snapshot that does not say ongoing_refresh keeps what was known;
//   - a newer scanned_at ends staleness; nothing else does.
//
// Leaving HEALTHY forgets staleness (its age counts from the return), not
// what the datasets and refresh were last seen to be.
func deriveFreshness(cur Record, next *Record, d Delivery) {
	if s := d.Snapshot; s != nil {
		next.FailedDatasets = failedDatasets(cur.FailedDatasets, s.Datasets)
		if s.RefreshStatus != "" {
			next.RefreshDisabled = s.RefreshStatus == RefreshDisabled
		}
		if s.ScannedAt.After(cur.ScannedAt) {
			next.ScannedAt = s.ScannedAt
			next.StaleSince = time.Time{}
		}
	}
	settleFreshness(cur, next, d.ReceivedAt)
}

// settleFreshness derives next's Freshness, FreshnessSince and FreshAsOf
// from its state and verdicts, at is when the change happened.
func settleFreshness(cur Record, next *Record, at time.Time) {
	next.FreshAsOf = time.Time{}
	if next.State != StateHealthy {
		next.StaleSince = time.Time{}
	} else if next.StaleSince.IsZero() {
		next.FreshAsOf = freshAsOf(cur, *next)
	}
	switch {
	case next.State != StateHealthy:
		next.Freshness = FreshnessUnknown
	case next.RefreshDisabled:
		next.Freshness = FreshnessRefreshDisabled
	case len(next.FailedDatasets) > 0:
		next.Freshness = FreshnessSyncFailed
	case !next.StaleSince.IsZero():
		next.Freshness = FreshnessStale
	default:
		next.Freshness = FreshnessFresh
	}
	switch {
	case next.Freshness == FreshnessUnknown:
		next.FreshnessSince = time.Time{}
	case next.Freshness == cur.Freshness:
	case next.Freshness == FreshnessStale:
		next.FreshnessSince = next.StaleSince
	default:
		next.FreshnessSince = at
	}
}

// freshAsOf is when the data of next, HEALTHY and not judged stale, was
// last known fresh: its last scan, or its return to HEALTHY after a
// problem when later (data is not old for having waited for the user to
// log in again, and the provider rescans after a reconnection), or, never
// scanned, when it became HEALTHY. An account connecting for the first
// time, or first seen HEALTHY, is as fresh as its last scan says: the
// service's late start makes it no fresher.
func freshAsOf(cur, next Record) time.Time {
	var base time.Time
	switch {
	case cur.State == StateHealthy:
		base = cur.FreshAsOf // zero when it was stale: only a scan renews it
	case cur.State != StateUnknown && cur.EverConnected:
		base = next.StateSince
	}
	if next.ScannedAt.After(base) {
		base = next.ScannedAt
	}
	if base.IsZero() {
		base = next.StateSince
	}
	return base
}

// failedDatasets is the sorted names of the datasets that failed to sync,
// from the verdicts before (was) and a snapshot's availability.
func failedDatasets(was []string, got []DatasetStatus) []string {
	var out []string
	seen := map[string]bool{}
	for _, ds := range got {
		seen[ds.Name] = true
		switch ds.Status {
		case DatasetSyncFailed:
			out = append(out, ds.Name)
		case DatasetSynced:
		default:
			if slices.Contains(was, ds.Name) {
				out = append(out, ds.Name)
			}
		}
	}
	for _, name := range was {
		if !seen[name] {
			// A dataset the snapshot does not list (null: nothing to say
			// yet) keeps its verdict.
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// freshnessKind names the freshness event, if any, of going from cur to
// next within HEALTHY: a change of state is told by its own event, which
// carries the freshness.
func freshnessKind(cur, next Record) Kind {
	switch {
	case cur.State != StateHealthy || next.State != StateHealthy || cur.Freshness == next.Freshness:
		return KindUnspecified
	case cur.Freshness == FreshnessUnknown:
		// A record derived under rules that knew no freshness: its first
		// verdict restores or loses nothing.
		return KindUnspecified
	case next.Freshness == FreshnessFresh:
		return KindFreshnessRestored
	}
	return KindFreshnessLost
}

// applyStaleness applies a freshness.stale entry: the account's data is
// stale when the record is the one the sweeper judged (HEALTHY, not stale
// yet, fresh as of the same time); a scan or a change of state since makes
// the verdict late.
func applyStaleness(cur Record, d Delivery) Result {
	s := d.Staleness
	switch {
	case d.AccountID == "" || cur.State == StateUnknown:
		return Result{Record: cur, Outcome: OutcomeNotAccountEvent}
	case cur.State == StateRemoved:
		return Result{Record: cur, Outcome: OutcomeAfterRemoval}
	case cur.State != StateHealthy || !cur.StaleSince.IsZero() || !cur.FreshAsOf.Equal(s.FreshAsOf) || s.Since.IsZero():
		return Result{Record: cur, Outcome: OutcomeStale}
	}
	next := cur
	next.StaleSince = s.Since
	settleFreshness(cur, &next, d.ReceivedAt)
	return Result{Record: next, Outcome: OutcomeApplied, Transition: freshnessTransition(cur, next, d.ReceivedAt)}
}

// freshnessTransition is the freshness event of going from cur to next,
// nil when there is none.
func freshnessTransition(cur, next Record, at time.Time) *Transition {
	kind := freshnessKind(cur, next)
	if kind == KindUnspecified {
		return nil
	}
	return &Transition{
		Kind: kind, PreviousState: cur.State, State: next.State, ErrorCode: next.ErrorCode, ErrorMessage: next.ErrorMessage,
		Remedy: next.Remedy, OccurredAt: at, Freshness: next.Freshness, PreviousFreshness: cur.Freshness,
		FailedDatasets: next.FailedDatasets,
	}
}
