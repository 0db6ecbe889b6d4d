package sqlstore

import (
	"context"
	"database/sql"
	"math"
	"strconv"
	"strings"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// neverConfirmed stands for a NULL confirmed_at in the order of the
// records_due index: below every time Nanos encodes but its clamped
// minimum, at which no delivery is received.
const neverConfirmed int64 = math.MinInt64 + 1

// The terms of the due SQL that the migrations' records_due index repeats:
// a planner matches an index's expressions and predicate as written.
var (
	confirmedKey = "COALESCE(confirmed_at, " + strconv.FormatInt(neverConfirmed, 10) + ")"
	notRemoved   = "state <> " + strconv.Itoa(int(health.StateRemoved))
)

// Claim is a store.DueQuery's values as the SQL binds them: times in
// Unix nanoseconds, Before in the order of records_due.
type Claim struct {
	Holder             string
	Now, Until, Before int64
	Limit              int
}

// NewClaim encodes q, which q.Check accepted.
func NewClaim(q store.DueQuery) Claim {
	c := Claim{Holder: q.Holder, Now: clampedNanos(q.Now), Until: clampedNanos(q.Now.Add(q.LeaseFor)), Limit: q.Limit}
	// Never confirmed is due whatever the bound.
	c.Before = neverConfirmed + 1
	if !q.ConfirmedBefore.IsZero() {
		c.Before = max(c.Before, clampedNanos(q.ConfirmedBefore))
	}
	return c
}

// DueSQL selects, binding with b, up to c.Limit accounts that are due and
// not leased after c.Now, in ClaimDue's order: the unconfirmed ones, or
// else those confirmed before c.Before. Each is one range of records_due.
// Where writers run at once, it locks the records it selects and skips
// those another claim locked, so concurrent claims pick different ones.
func DueSQL(d Dialect, c *Claim, unconfirmed bool, b *Binder) string {
	q := "SELECT account_id, unconfirmed, confirmed_at FROM records WHERE " + notRemoved
	if unconfirmed {
		q += " AND unconfirmed = TRUE"
	} else {
		q += " AND unconfirmed = FALSE AND " + confirmedKey + " < " + b.Bind(c.Before)
	}
	return q + " AND NOT EXISTS (SELECT 1 FROM leases WHERE leases.account_id = records.account_id" +
		" AND leases.expires_at > " + b.Bind(c.Now) + ")" +
		" ORDER BY " + DueOrder("") + " LIMIT " + b.Bind(c.Limit) +
		d.skipLocked("NO KEY UPDATE", "records")
}

// DueOrder orders rows of DueSQL's columns, qualified with prefix, within
// one of its ranges.
func DueOrder(prefix string) string {
	return "COALESCE(" + prefix + "confirmed_at, " + strconv.FormatInt(neverConfirmed, 10) + "), " + prefix + "account_id"
}

// LeaseConflict ends an INSERT into leases: an account's lease is taken
// over only once it expired at now (a placeholder), so that a claim that
// lost a race leases nothing.
func LeaseConflict(now string) string {
	return " ON CONFLICT (account_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at" +
		" WHERE leases.expires_at <= " + now
}

// ScanDue scans a row of DueSQL's columns.
func ScanDue(sc Scanner) (a store.DueAccount, err error) {
	var at sql.NullInt64
	err = sc.Scan(&a.AccountID, &a.Unconfirmed, &at)
	a.ConfirmedAt = FromNanos(at)
	return a, err
}

// QueryDue runs a query that returns rows of DueSQL's columns.
func QueryDue(ctx context.Context, q Querier, query string, args []any) ([]store.DueAccount, error) {
	return queryAll(ctx, q, query, args, ScanDue)
}

// ClaimRanges claims up to c.Limit accounts with some, which claims up
// to c.Limit of one range of DueSQL: the unconfirmed ones first.
func ClaimRanges(c Claim, some func(c *Claim, unconfirmed bool) ([]store.DueAccount, error)) ([]store.DueAccount, error) {
	var out []store.DueAccount
	limit := c.Limit
	for _, unconfirmed := range []bool{true, false} {
		c.Limit = limit - len(out)
		if c.Limit == 0 {
			break
		}
		due, err := some(&c, unconfirmed)
		if err != nil {
			return nil, err
		}
		out = append(out, due...)
	}
	return out, nil
}

// Expire deletes up to c.Limit leases that expired at c.Now, when a claim
// leased claimed accounts, fewer than it could: an idle claim cleans up
// after earlier ones, leases of removed accounts included (no claim takes
// them over), and one that meets a backlog does only what it must. An
// expired lease left in place means nothing.
func (s *SyncSQL) Expire(ctx context.Context, q TxQuerier, c *Claim, claimed int) error {
	if claimed >= c.Limit {
		return nil
	}
	return q.Exec(ctx, s.expire, c.Now, c.Limit)
}

// ClaimInTx claims in a transaction that no other writer runs alongside
// (SQLite's): it selects what is due, then leases it.
func (s *SyncSQL) ClaimInTx(ctx context.Context, q TxQuerier, c Claim) ([]store.DueAccount, error) {
	due, err := s.claimRanges(ctx, q, c)
	if err != nil {
		return nil, err
	}
	return due, s.Expire(ctx, q, &c, len(due))
}

func (s *SyncSQL) claimRanges(ctx context.Context, q TxQuerier, c Claim) ([]store.DueAccount, error) {
	return ClaimRanges(c, func(c *Claim, unconfirmed bool) ([]store.DueAccount, error) {
		b := NewBinder(s.dialect.P)
		due, err := QueryDue(ctx, q, DueSQL(s.dialect, c, unconfirmed, b), b.Args)
		if err != nil {
			return nil, err
		}
		if len(due) == 0 {
			return nil, nil
		}
		query, args := leaseSQL(s.dialect.P, c, due)
		return due, q.Exec(ctx, query, args...)
	})
}

// leaseSQL leases the due accounts to c.Holder in one statement: parsing
// it costs less than running one for each.
func leaseSQL(p Placeholder, c *Claim, due []store.DueAccount) (string, []any) {
	b := NewBinder(p)
	rows := make([]string, len(due))
	for i, a := range due {
		rows[i] = "(" + b.Bind(a.AccountID) + ", " + b.Bind(c.Holder) + ", " + b.Bind(c.Until) + ")"
	}
	return "INSERT INTO leases (account_id, holder, expires_at) VALUES " + strings.Join(rows, ", ") + LeaseConflict(b.Bind(c.Now)), b.Args
}
