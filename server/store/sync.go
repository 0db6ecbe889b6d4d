package store

import (
	"fmt"
	"time"
)

// SyncState is the progress of the backfill from the provider's account
// list. One process is meant to run the backfill at a time: the store
// keeps one SyncState, and of two processes saving it, the last one to
// save wins, so a second backfill running at once may set the cursor back
// (pages are fetched again and their accounts committed again, which the
// commit rules make harmless) but never loses an account.
type SyncState struct {
	Cursor               string // the provider's cursor after the last committed page; "" before the first
	Done                 bool   // the last page was committed
	Pages, Seen, Applied int64
	StartedAt, UpdatedAt time.Time
	FinishedAt           time.Time
}

// MaxClaim bounds DueQuery.Limit: one claim's accounts are leased in one
// statement.
const MaxClaim = 1000

// DueQuery selects accounts to reconcile.
type DueQuery struct {
	Holder          string        // the process asking (the lease's owner)
	Now             time.Time     // the holder's clock: leases start and are checked against it
	ConfirmedBefore time.Time     // due when confirmed_at is before this, or never confirmed
	LeaseFor        time.Duration // the lease lasts until Now+LeaseFor
	Limit           int           // at most this many (1..MaxClaim)
}

// DueAccount is an account ClaimDue leased.
type DueAccount struct {
	AccountID   string
	Unconfirmed bool
	ConfirmedAt time.Time // zero: never
}

// Check validates q: ErrInvalidArgument when a field is out of range.
func (q DueQuery) Check() error {
	switch {
	case q.Holder == "":
		return fmt.Errorf("%w: due query: no holder", ErrInvalidArgument)
	case q.Now.IsZero():
		return fmt.Errorf("%w: due query: no time", ErrInvalidArgument)
	case q.LeaseFor <= 0:
		return fmt.Errorf("%w: due query: lease of %v", ErrInvalidArgument, q.LeaseFor)
	case q.Limit < 1 || q.Limit > MaxClaim:
		return fmt.Errorf("%w: due query: limit %d not in 1..%d", ErrInvalidArgument, q.Limit, MaxClaim)
	}
	return nil
}
