package sqlstore

import (
	"context"
	"database/sql"
	"math"
	"strings"
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

// ItemSQL is the SQL of the item reads in one dialect: counts, failures
// and reports of one item (binding it), of the active items (binding the
// first minute of failures that make an item active), or of all; failures
// then binds the first minute it reads. Each selection has its own
// statement, so that each uses its index.
type ItemSQL struct {
	one, active, all itemReads
	outages, quiet   string
}

// itemReads are the reads of one selection of items.
type itemReads struct{ counts, failures, reports string }

func newItemReads(where func(next int) string, next int, p Placeholder) itemReads {
	return itemReads{
		counts:   "SELECT item, " + itemCountCols + " FROM item_counts WHERE " + where(next) + " ORDER BY item",
		failures: "SELECT item, minute, n FROM item_failures WHERE " + where(next) + " AND minute >= " + p(next) + " ORDER BY item, minute",
		reports:  "SELECT item, name, status, details, received_at FROM item_reports WHERE " + where(next) + " ORDER BY item",
	}
}

// activeItemReads are the reads of the active items. They start from the
// few active items, each read by its key: SQLite takes a CROSS JOIN's
// tables in the order written, and left to choose, it walks two days of
// failures by minute rather than the active items' own.
func activeItemReads(p Placeholder) itemReads {
	from := func(table string) string {
		return " FROM (" + activeItemsSQL(p(1)) + ") AS a CROSS JOIN " + table + " t WHERE t.item = a.item"
	}
	return itemReads{
		counts:   "SELECT t.item, " + Cols("t", strings.Split(itemCountCols, ", ")) + from("item_counts") + " ORDER BY t.item",
		failures: "SELECT t.item, t.minute, t.n" + from("item_failures") + " AND t.minute >= " + p(2) + " ORDER BY t.item, t.minute",
		reports:  "SELECT t.item, t.name, t.status, t.details, t.received_at" + from("item_reports") + " ORDER BY t.item",
	}
}

// activeItemsSQL selects the items a list must derive (store.ItemQuery's
// ActiveSince): failures since the minute it binds, a report of another
// status than healthy, a report of an item no record names, an outage the
// log tells under way.
func activeItemsSQL(minute string) string {
	return "SELECT item FROM item_failures WHERE minute >= " + minute +
		" UNION SELECT item FROM item_reports WHERE status <> 'healthy'" +
		" UNION SELECT r.item FROM item_reports r WHERE NOT EXISTS (SELECT 1 FROM item_counts c WHERE c.item = r.item)" +
		" UNION SELECT item FROM item_outages WHERE in_outage"
}

// failingSQL is the accounts of an item_counts row c that need attention.
const failingSQL = "(c.auth_failed + c.disconnected + c.degraded)"

// NewItemSQL builds the item reads for placeholder style p.
func NewItemSQL(p Placeholder) ItemSQL {
	return ItemSQL{
		one:     newItemReads(func(int) string { return "item = " + p(1) }, 2, p),
		active:  activeItemReads(p),
		all:     newItemReads(func(int) string { return "true" }, 1, p),
		outages: "SELECT item, in_outage, status, since, changed_at FROM item_outages ORDER BY item",
		quiet: "SELECT c.item, " + Cols("c", strings.Split(itemCountCols, ", ")) +
			", r.item IS NOT NULL, COALESCE(r.name, ''), COALESCE(r.status, ''), COALESCE(r.details, ''), r.received_at" +
			" FROM item_counts c LEFT JOIN item_reports r ON r.item = c.item" +
			" WHERE c.connecting + c.healthy + c.auth_failed + c.disconnected + c.degraded + c.removed > 0" +
			" AND (" + failingSQL + " < " + p(1) + " OR (" + failingSQL + " = " + p(2) + " AND c.item > " + p(3) + "))" +
			" ORDER BY " + failingSQL + " DESC, c.item LIMIT " + p(4),
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
	since := clampedNanos(q.FailuresSince) / int64(failureBucket)
	reads, args := r.sql.items.all, []any{}
	switch {
	case q.Item != "":
		reads, args = r.sql.items.one, []any{q.Item}
	case !q.ActiveSince.IsZero():
		reads, args = r.sql.items.active, []any{clampedNanos(q.ActiveSince) / int64(failureBucket)}
	}
	err := r.q.Query(ctx, reads.counts, args, func(rows Rows) error {
		return scanItemCounts(rows, get)
	})
	if err == nil {
		err = r.q.Query(ctx, reads.failures, append(args, since), func(rows Rows) error {
			return scanItemFailures(rows, get)
		})
	}
	if err == nil {
		err = r.q.Query(ctx, reads.reports, args, func(rows Rows) error {
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

// QuietItems returns up to q.Limit items that records name, with their
// reports, by the accounts needing attention (most first), then by id,
// after q's place in that order.
func (r Reader) QuietItems(ctx context.Context, q store.QuietQuery) ([]health.ItemSignals, error) {
	const op = "quiet items"
	if err := r.guard.CheckOpen(op); err != nil {
		return nil, err
	}
	failing := int64(math.MaxInt64)
	if q.After != "" {
		failing = int64(q.AfterFailing)
	}
	out, err := queryAll(ctx, r.q, r.sql.items.quiet, []any{failing, failing, q.After, q.Limit}, scanQuietItem)
	if err != nil {
		return nil, r.guard.Fail(op, err)
	}
	return out, nil
}

func scanQuietItem(sc Scanner) (health.ItemSignals, error) {
	var (
		s        = health.ItemSignals{Counts: map[health.State]int{}}
		n        [health.StateRemoved]int
		reported bool
		rep      health.ItemReport
		reportAt sql.NullInt64
	)
	err := sc.Scan(&s.Item, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5], &reported, &rep.Name, &rep.Status, &rep.Details, &reportAt)
	setCounts(&s, n)
	if reported {
		rep.Item, rep.ReceivedAt = s.Item, FromNanos(reportAt)
		s.Report = &rep
	}
	return s, err
}

// setCounts puts the counts of item_counts' columns in s.
func setCounts(s *health.ItemSignals, n [health.StateRemoved]int) {
	for i, c := range n {
		if c != 0 {
			s.Counts[health.StateConnecting+health.State(i)] = c
		}
	}
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
		setCounts(get(item), n)
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
