package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// itemCountCols are item_counts' columns of counts, in health.State order
// from StateConnecting (migration 0010).
var itemCountCols = "connecting, healthy, auth_failed, disconnected, degraded, removed"

// failureBucket is the length of a bucket of item_failures: a minute, as
// migration 0010's triggers cut them.
const failureBucket = time.Minute

// ItemSQL is the SQL of the item reads in one dialect. Each binds the item
// twice (SQLite numbers no placeholder): an empty one selects every item.
type ItemSQL struct {
	counts, failures, reports, outages string
}

// NewItemSQL builds the item reads for placeholder style p.
func NewItemSQL(p Placeholder) ItemSQL {
	oneOrAll := "(" + p(1) + " = '' OR item = " + p(2) + ")"
	return ItemSQL{
		counts: "SELECT item, " + itemCountCols + " FROM item_counts WHERE " + oneOrAll + " ORDER BY item",
		failures: "SELECT item, minute, n FROM item_failures WHERE " + oneOrAll + " AND minute >= " + p(3) +
			" AND item IN (SELECT item FROM item_failures WHERE minute >= " + p(4) + ") ORDER BY item, minute",
		reports: "SELECT item, name, status, details, received_at FROM item_reports WHERE " + oneOrAll + " ORDER BY item",
		outages: "SELECT item, in_outage, status, since, changed_at FROM item_outages ORDER BY item",
	}
}

// PutItemReportSQL keeps a report unless the one kept arrived later; it
// binds ItemReportArgs.
func PutItemReportSQL(p Placeholder) string {
	return InsertSQL(p, "item_reports", []string{"item", "name", "status", "details", "received_at"}, "item") +
		" WHERE item_reports.received_at IS NULL OR item_reports.received_at <= excluded.received_at"
}

// SetItemOutageSQL keeps an item's outage when it changes whether the
// item is in one, returning the item then (no row: unchanged); it binds
// ItemOutageArgs.
func SetItemOutageSQL(p Placeholder) string {
	return InsertSQL(p, "item_outages", []string{"item", "in_outage", "status", "since", "changed_at"}, "item") +
		" WHERE item_outages.in_outage <> excluded.in_outage RETURNING item"
}

// ItemOutageArgs follows SetItemOutageSQL.
func ItemOutageArgs(o *health.ItemOutage, at time.Time) []any {
	return []any{o.Item, o.InOutage, o.Status, Nanos(o.Since), Nanos(at)}
}

// ItemReportArgs follows PutItemReportSQL.
func ItemReportArgs(r *health.ItemReport) []any {
	return []any{r.Item, r.Name, r.Status, r.Details, Nanos(r.ReceivedAt)}
}

// ItemSignals returns what the store keeps of the items q selects.
func (r Reader) ItemSignals(ctx context.Context, q store.ItemQuery) ([]health.ItemSignals, error) {
	const op = "item signals"
	if err := r.guard.CheckOpen(op); err != nil {
		return nil, err
	}
	byItem := map[string]*health.ItemSignals{}
	var order []string
	get := func(item string) *health.ItemSignals {
		s, ok := byItem[item]
		if !ok {
			s = &health.ItemSignals{Item: item, Counts: map[health.State]int{}}
			byItem[item] = s
			order = append(order, item)
		}
		return s
	}
	err := r.q.Query(ctx, r.sql.items.counts, []any{q.Item, q.Item}, func(rows Rows) error {
		return scanItemCounts(rows, get)
	})
	if err == nil {
		since := clampedNanos(q.FailuresSince) / int64(failureBucket)
		active := since
		if !q.ActiveSince.IsZero() {
			active = max(since, clampedNanos(q.ActiveSince)/int64(failureBucket))
		}
		err = r.q.Query(ctx, r.sql.items.failures, []any{q.Item, q.Item, since, active}, func(rows Rows) error {
			return scanItemFailures(rows, get)
		})
	}
	if err == nil {
		err = r.q.Query(ctx, r.sql.items.reports, []any{q.Item, q.Item}, func(rows Rows) error {
			return scanItemReports(rows, get)
		})
	}
	if err != nil {
		return nil, r.guard.Fail(op, err)
	}
	out := make([]health.ItemSignals, 0, len(order))
	for _, item := range order {
		if s := byItem[item]; s.Report != nil || len(s.Failures) > 0 || hasAccounts(s.Counts) {
			out = append(out, *s)
		}
	}
	return out, nil
}

// hasAccounts: an item whose accounts all went keeps its row of zeros.
func hasAccounts(counts map[health.State]int) bool {
	for _, n := range counts {
		if n != 0 {
			return true
		}
	}
	return false
}

func scanItemCounts(rows Rows, get func(string) *health.ItemSignals) error {
	for rows.Next() {
		var (
			item string
			n    [health.StateRemoved]int
		)
		if err := rows.Scan(&item, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5]); err != nil {
			return err
		}
		s := get(item)
		for i, c := range n {
			if c != 0 {
				s.Counts[health.StateConnecting+health.State(i)] = c
			}
		}
	}
	return rows.Err()
}

func scanItemFailures(rows Rows, get func(string) *health.ItemSignals) error {
	for rows.Next() {
		var (
			item      string
			minute, n int64
		)
		if err := rows.Scan(&item, &minute, &n); err != nil {
			return err
		}
		s := get(item)
		s.Failures = append(s.Failures, health.FailureBucket{Start: time.Unix(0, minute*int64(failureBucket)).UTC(), N: int(n)})
	}
	return rows.Err()
}

func scanItemReports(rows Rows, get func(string) *health.ItemSignals) error {
	for rows.Next() {
		var (
			rep health.ItemReport
			at  sql.NullInt64
		)
		if err := rows.Scan(&rep.Item, &rep.Name, &rep.Status, &rep.Details, &at); err != nil {
			return err
		}
		rep.ReceivedAt = FromNanos(at)
		get(rep.Item).Report = &rep
	}
	return rows.Err()
}

// ItemOutages lists the outages the log told, by item.
func (r Reader) ItemOutages(ctx context.Context) ([]store.ItemOutageState, error) {
	const op = "item outages"
	if err := r.guard.CheckOpen(op); err != nil {
		return nil, err
	}
	out, err := queryAll(ctx, r.q, r.sql.items.outages, nil, scanItemOutage)
	if err != nil {
		return nil, r.guard.Fail(op, err)
	}
	return out, nil
}

func scanItemOutage(sc Scanner) (o store.ItemOutageState, err error) {
	var since, changedAt sql.NullInt64
	err = sc.Scan(&o.Item, &o.InOutage, &o.Status, &since, &changedAt)
	o.Since, o.ChangedAt = FromNanos(since), FromNanos(changedAt)
	return o, err
}
