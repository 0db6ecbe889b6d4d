// Package store keeps the durable event log and the health derived from it.
//
// The log is the source of truth: every accepted delivery is appended as an
// Entry, applied to its account's health.Record, and each transition that a
// subscriber must hear about is appended as a Change, all in one commit.
// Drivers (sqlite, postgres) implement Store; the shared rules of
// a commit live in Apply so that every driver behaves the same, and the
// conformance suite in storetest proves it.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
)

// Sentinel errors. Drivers wrap them with %w.
var (
	// ErrNotFound: the account (or entry) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidArgument: a query's field is out of range or a page token
	// is not one this store issued.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrUnavailable: the store failed in a way that a retry can fix (it
	// is unreachable, full, locked, failing over); nothing was committed.
	// A cancelled or expired ctx is not one: that error stays ctx's.
	ErrUnavailable = errors.New("store unavailable")
	// ErrOutOfRange: a page token points into a part of the log that
	// pruning removed after the token was issued (see RunPrune).
	ErrOutOfRange = errors.New("out of range")
)

// Source says where a log entry came from.
type Source string

const (
	SourceWebhook Source = "webhook" // a delivery from the provider
	SourceAPI     Source = "api"     // an action taken through our API (audit)
)

// Delivery is one accepted webhook delivery to commit, or an action taken
// through our API that the health model must see (Source SourceAPI: e.g. a
// deletion at the provider, recorded as the removal it causes, with Actor).
type Delivery struct {
	Source   Source          // empty means SourceWebhook
	Actor    string          // who asked, for SourceAPI
	Body     []byte          // the exact bytes received; hashed for redelivery detection
	Name     string          // the subscription's name, for the timeline
	Decoded  health.Delivery // what the health model reads; Decoded.ReceivedAt orders the log
	Verified bool            // its signature was checked (false only when unsigned deliveries are allowed)
}

// Result is what committing one Delivery did.
type Result struct {
	// EntrySeq is the log position of the entry; for a duplicate, the
	// position of the original delivery it repeats.
	EntrySeq int64
	Outcome  health.Outcome
	// Change is the transition committed with the entry, nil when none.
	Change *Change
	// Unconfirmed is the record's Unconfirmed flag after the commit (false
	// for OutcomeNotAccountEvent): the caller knows that a fetch is due
	// without reading the record again.
	Unconfirmed bool
}

// Entry is one row of an account's timeline: a delivery or an API action.
type Entry struct {
	Seq          int64
	Source       Source
	Event        string // the delivery's event, or the API action's name
	Name         string // the subscription's name (webhook) or empty
	AccountID    string
	UserID       string
	ReceivedAt   time.Time
	Outcome      health.Outcome
	Redeliveries int    // byte-identical redeliveries recognised after this one
	Actor        string // who asked, for API actions
	Body         []byte // the delivery's exact bytes; nil for API actions
	Change       *Change
}

// Change is one transition in the global, ordered change log that streams
// read. Seq is strictly increasing in commit order: a reader that has seen
// Seq n never later finds a committed change below n.
type Change struct {
	Seq       int64
	EntrySeq  int64  // the entry that caused it
	Event     string // that entry's event
	AccountID string // empty for an item-wide change
	UserID    string
	Item      string // the account's payroll platform, or the item of an item-wide change
	health.Transition
}

// StaleCandidate is a record the staleness sweeper may judge stale.
type StaleCandidate struct {
	AccountID, UserID string
	FreshAsOf         time.Time
}

// ItemOutageState is the outage of an item as the log last told it (the
// last items.outage_* entry that changed it).
type ItemOutageState struct {
	health.ItemOutage
	ChangedAt time.Time // when that entry was received
}

// HealthQuery selects health records. Zero values mean "no filter".
type HealthQuery struct {
	UserID     string
	Item       string         // only accounts on this payroll platform
	States     []health.State // any of these
	ErrorCodes []string       // any of these
	// Freshness selects HEALTHY accounts whose data has any of these
	// freshnesses; FreshnessUnknown is none to ask for.
	Freshness []health.Freshness
	Order     HealthOrder
	PageSize  int    // 1..MaxPageSize; 0 means DefaultPageSize
	PageToken string // from a previous HealthPage.NextPageToken
}

// HealthOrder is the order of ListHealth's records.
type HealthOrder int

const (
	ByAccountID HealthOrder = iota
	// By the time each record entered its state, then account id: the
	// longest in their state first (Asc) or the newest (Desc). A record
	// without that time sorts as 1970.
	ByStateSinceAsc
	ByStateSinceDesc
)

// HealthKey is where a page of ListHealth starts: after (in the query's
// order) the record with this account id, and, ordered by state since,
// this StateSince.
type HealthKey struct {
	StateSince time.Time
	AccountID  string // "" for the first page
}

// HealthPage is one page of records in the query's order. Besides
// PageSize, a page is bounded by PageBytes of RecordBytes.
type HealthPage struct {
	Records       []health.Record
	NextPageToken string // empty on the last page
}

// EntryQuery selects an account's timeline, oldest first.
type EntryQuery struct {
	AccountID string
	PageSize  int
	PageToken string
}

// EntryPage is one page of a timeline. Besides PageSize, a page is
// bounded by PageBytes of EntryBytes.
type EntryPage struct {
	Entries       []Entry
	NextPageToken string
}

// Summary counts records.
type Summary struct {
	Total       int
	ByState     map[health.State]int
	ByErrorCode map[string]int // records whose current error code is non-empty
	// ByFreshness counts the HEALTHY records by freshness; the others'
	// (FreshnessUnknown) are not counted here.
	ByFreshness map[health.Freshness]int
}

// ChangeCountQuery asks how many changes of each kind occurred in each
// bucket of Bucket width from From (inclusive) to To (exclusive), by the
// changes' OccurredAt.
type ChangeCountQuery struct {
	From, To time.Time
	Bucket   time.Duration
}

// ChangeCount is the number of changes of one kind that occurred in the
// bucket starting at Start.
type ChangeCount struct {
	Start time.Time
	Kind  health.Kind
	N     int
}

// ItemQuery selects what the store keeps of items (see ItemSignals).
type ItemQuery struct {
	Item string // only this item (whatever ActiveSince says); empty: every item
	// FailuresSince leaves out the failure buckets (minutes) that ended
	// at or before it.
	FailuresSince time.Time
	// ActiveSince, when set, selects the active items only: those with a
	// failure bucket that ended after it, a report of another status than
	// healthy, a report of an item no record names, or an outage the log
	// tells under way (ItemOutages). The others are quiet: no derivation
	// can find them in an outage or with issues (see QuietItems).
	ActiveSince time.Time
}

// QuietQuery pages through the items records name by the number of their
// accounts that need attention (AUTH_FAILED, DISCONNECTED, DEGRADED), most
// first, then by id: after the item After with AfterFailing such accounts
// (from the first when After is empty), up to Limit.
type QuietQuery struct {
	AfterFailing int
	After        string
	Limit        int
}

// ItemFailureRetention is how long the store keeps an item's failure
// buckets (migration 0010's triggers prune older ones): twice the
// baseline of health.DefaultItemRules, which the derivation needs (see
// health.DeriveItemHealth).
const ItemFailureRetention = 48 * time.Hour

// Page size bounds shared by all queries.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
	// PageBytes bounds the records or entries of a page, as RecordBytes
	// and EntryBytes measure them: a page ends before the one that would
	// take it past PageBytes, with a next page token, unless that one is
	// its first, so that paging always moves on. Records and entries of
	// the provider's usual deliveries, a few KB each, fill a page of
	// MaxPageSize in well under it; the bound is for the rare large ones,
	// whose page would otherwise be hundreds of MB to read and to send.
	PageBytes = 1 << 20
)

// Store is the durable log plus derived health. Methods are safe for
// concurrent use; ctx cancellation aborts the call.
type Store interface {
	// Ingest commits the deliveries in order, atomically: either all of them
	// are durable when it returns nil, or none is. Results are in input order.
	Ingest(ctx context.Context, deliveries []Delivery) ([]Result, error)
	// GetHealth returns the account's record or ErrNotFound.
	GetHealth(ctx context.Context, accountID string) (health.Record, error)
	// ListHealth pages through records matching q; ErrInvalidArgument when
	// q.Cursor rejects it (page size, state, page token).
	ListHealth(ctx context.Context, q HealthQuery) (HealthPage, error)
	// Summary counts all records. It reads counts that each commit keeps
	// up to date, so its cost does not grow with the number of records.
	Summary(ctx context.Context) (Summary, error)
	// ItemSignals returns what the store keeps of the items q selects, by
	// item id: the counts of their accounts by state and the buckets of
	// their accounts' moves into provider-side or login errors, both kept
	// by each commit of a record, and the newest items.updated of each.
	// An item is there once an account named it or a report came; the
	// counts are one snapshot, the buckets and reports each another.
	ItemSignals(ctx context.Context, q ItemQuery) ([]health.ItemSignals, error)
	// QuietItems pages through the items records name, with their
	// reports, as q says; the caller leaves out the active ones (see
	// ItemQuery.ActiveSince). It reads a page, whatever the number of
	// items.
	QuietItems(ctx context.Context, q QuietQuery) ([]health.ItemSignals, error)
	// ItemOutages lists the items whose outage the log ever told, by item
	// id, as it last told it.
	ItemOutages(ctx context.Context) ([]ItemOutageState, error)
	// StaleCandidates lists up to limit (PageLimit) HEALTHY records not
	// judged stale whose data was last fresh (health.Record.FreshAsOf)
	// before before, the oldest first, through an index of those only.
	StaleCandidates(ctx context.Context, before time.Time, limit int) ([]StaleCandidate, error)
	// ListEntries pages through an account's timeline; ErrNotFound when the
	// log holds nothing for the account, ErrInvalidArgument when q.Cursor
	// rejects q, ErrOutOfRange when pruning removed entries past q's page
	// token since it was issued (see EntryQuery.CheckPruned).
	ListEntries(ctx context.Context, q EntryQuery) (EntryPage, error)
	// ReadChanges returns up to limit changes with Seq > after, in Seq order,
	// and fewer when their ChangeBytes would pass PageBytes (at least one,
	// when there is one): fewer than limit does not mean the end of the log;
	// an empty page does. limit obeys PageLimit: 0 means DefaultPageSize,
	// above MaxPageSize is ErrInvalidArgument.
	ReadChanges(ctx context.Context, after int64, limit int) ([]Change, error)
	// LastChangeSeq is the Seq of the newest committed change, 0 if none.
	LastChangeSeq(ctx context.Context) (int64, error)
	// ChangeSeqBefore returns the Seq just below the first change whose
	// OccurredAt is at or after t, or LastChangeSeq when there is none:
	// reading after it yields every change that occurred since t (and maybe
	// a few older ones committed later, which the caller filters out).
	ChangeSeqBefore(ctx context.Context, t time.Time) (int64, error)
	// CountChanges counts the changes of q's window by bucket and kind,
	// ordered by bucket then kind, leaving out empty ones. It reads hourly
	// counts that each commit keeps up to date, so its cost grows with the
	// hours in the window, never with the changes or the records.
	// ErrInvalidArgument when q.Check rejects q.
	CountChanges(ctx context.Context, q ChangeCountQuery) ([]ChangeCount, error)
	// Derivation says under which rules the records were derived: a
	// RulesVersion below health.RulesVersion means they need a Rebuild.
	Derivation(ctx context.Context) (Derivation, error)
	// Rebuild re-derives every record from the log under the store's
	// rules (see RunRebuild). It is safe alongside Ingest and in several
	// processes at once: one rebuilds, the others wait, then find it done.
	Rebuild(ctx context.Context, o RebuildOptions) (RebuildProgress, error)
	// Check reads the whole store and reports what is damaged or
	// inconsistent (see RunCheck); it writes nothing and is safe alongside
	// Ingest.
	Check(ctx context.Context, o CheckOptions) (CheckReport, error)
	// Prune runs one pruning pass (see RunPrune): it removes the bodies,
	// entries and account objects that o's ages no longer keep, in short
	// write transactions alongside Ingest, and is safe in several
	// processes at once.
	Prune(ctx context.Context, o PruneOptions) (PruneReport, error)
	// SyncState returns the backfill's progress, the zero value when no
	// backfill ever saved any.
	SyncState(ctx context.Context) (SyncState, error)
	// SaveSyncState replaces the backfill's progress. Saves from several
	// processes are not ordered: the last one wins (see SyncState).
	SaveSyncState(ctx context.Context, st SyncState) error
	// ClaimDue leases and returns up to q.Limit accounts that are due: not
	// removed, either Unconfirmed or confirmed before q.ConfirmedBefore (or
	// never), and not leased to anyone (any holder, including q.Holder)
	// until after q.Now. Unconfirmed ones first, then the oldest
	// confirmation first (never confirmed before all), each account once.
	// The lease is in the store, so of several processes sharing it, one at
	// a time fetches an account. ErrInvalidArgument when q.Check rejects q.
	ClaimDue(ctx context.Context, q DueQuery) ([]DueAccount, error)
	// OldestUnconfirmed returns the LastEventAt of the record, not
	// removed, that has been Unconfirmed the longest by that measure;
	// false when none is.
	OldestUnconfirmed(ctx context.Context) (time.Time, bool, error)
	// Ping checks that the store can serve reads and commit a write: it
	// commits a heartbeat, so a store that can no longer write (full,
	// read-only, failed over) fails it.
	Ping(ctx context.Context) error
	// Close releases the store; every call after it, Close included, fails
	// with ErrClosed.
	Close() error
}

// Watcher is implemented by stores that several processes share (e.g.
// PostgreSQL behind several replicas): WatchChanges calls wake whenever any
// process may have committed new changes, until ctx ends or the store is
// closed. Wake-ups are hints; the log stays the source of truth, so a
// spurious or coalesced wake-up is harmless and readers re-read the log.
type Watcher interface {
	WatchChanges(ctx context.Context, wake func()) error
}
