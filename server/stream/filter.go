package stream

import (
	"fmt"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// Filter selects the changes a subscriber receives. An empty field selects
// everything; the fields combine with AND.
//
// Recoveries are opt-in: they are sent when IncludeRecoveries is set or when
// Kinds lists health.KindRecovered (asking for a kind by name is asking for
// it). Corrections (a rebuild under new rules changed what subscribers were
// told) come with the disconnection kinds when Kinds is empty. ErrorCodes
// applies to neither: a recovery carries no error code, and a correction
// may take away the very code a subscriber filtered on, so filtering them by
// code would hide what the subscriber most needs. Removals carry no error
// code either, so an ErrorCodes filter excludes them. Restored remedies
// (an item's outage ended, the user must act) come with the disconnection
// kinds and are not filtered by code either. Item-wide events (an item's
// outage began or ended) are opt-in like recoveries, with
// IncludeItemEvents; they name no user, so a UserIDs filter excludes them.
// Items selects the changes that name one of them: accounts' on those
// items and those items' item-wide ones. Freshness events (a HEALTHY
// account's data went stale or fresh again) are opt-in too, with
// IncludeFreshnessEvents, and not filtered by code: they carry none.
type Filter struct {
	UserIDs                []string
	Kinds                  []health.Kind
	ErrorCodes             []string
	IncludeRecoveries      bool
	Items                  []string
	IncludeItemEvents      bool
	IncludeFreshnessEvents bool
}

// matcher is a Filter compiled for the hot path, plus the start time of a
// subscription that starts at a time.
type matcher struct {
	users map[string]struct{} // nil: all
	items map[string]struct{} // nil: all
	kinds uint64              // bit k set: health.Kind(k) wanted
	codes map[string]struct{} // nil: all
	since time.Time           // zero: no bound
}

func kindBit(k health.Kind) uint64 {
	// A negative or large kind (a newer writer's) shifts out to 0: unwanted.
	return 1 << uint(k)
}

func (f Filter) compile(since time.Time) (matcher, error) {
	m := matcher{users: set(f.UserIDs), items: set(f.Items), codes: set(f.ErrorCodes), since: since}
	if len(f.Kinds) == 0 {
		for k := health.KindDisconnected; k < health.KindRecovered; k++ {
			m.kinds |= kindBit(k)
		}
		m.kinds |= kindBit(health.KindCorrected) | kindBit(health.KindRemedyRestored)
	}
	if f.IncludeItemEvents {
		m.kinds |= kindBit(health.KindItemOutageBegan) | kindBit(health.KindItemOutageEnded)
	}
	if f.IncludeFreshnessEvents {
		m.kinds |= kindBit(health.KindFreshnessLost) | kindBit(health.KindFreshnessRestored)
	}
	for _, k := range f.Kinds {
		if k <= health.KindUnspecified || k > health.KindFreshnessRestored {
			return matcher{}, fmt.Errorf("%w: unknown kind %d", store.ErrInvalidArgument, int(k))
		}
		m.kinds |= kindBit(k)
	}
	if f.IncludeRecoveries {
		m.kinds |= kindBit(health.KindRecovered)
	}
	return m, nil
}

func set(xs []string) map[string]struct{} {
	if len(xs) == 0 {
		return nil
	}
	s := make(map[string]struct{}, len(xs))
	for _, x := range xs {
		s[x] = struct{}{}
	}
	return s
}

func (m *matcher) match(c *store.Change) bool {
	if m.kinds&kindBit(c.Kind) == 0 {
		return false
	}
	if m.users != nil && !has(m.users, c.UserID) {
		return false
	}
	if m.items != nil && !has(m.items, c.Item) {
		return false
	}
	if m.codes != nil && codedKind(c.Kind) && !has(m.codes, c.ErrorCode) {
		return false
	}
	// A start time also applies to live changes: a delivery accepted
	// before it may commit after the stream began.
	return m.since.IsZero() || !c.OccurredAt.Before(m.since)
}

// codedKind reports whether an ErrorCodes filter applies to kind k.
func codedKind(k health.Kind) bool {
	switch k {
	case health.KindRecovered, health.KindCorrected, health.KindRemedyRestored, health.KindItemOutageBegan, health.KindItemOutageEnded,
		health.KindFreshnessLost, health.KindFreshnessRestored:
		return false
	}
	return true
}

func has(s map[string]struct{}, x string) bool {
	_, ok := s[x]
	return ok
}

// Matcher is a checked, compiled Filter, for readers of the log other
// than the broker's subscriptions that select changes the same way (the
// outbound webhooks).
type Matcher struct{ m matcher }

// Compile checks f (ErrInvalidArgument wrapped, for an unknown kind) and
// compiles it.
func (f Filter) Compile() (Matcher, error) {
	m, err := f.compile(time.Time{})
	return Matcher{m: m}, err
}

// Match reports whether f selects c.
func (m *Matcher) Match(c *store.Change) bool { return m.m.match(c) }
