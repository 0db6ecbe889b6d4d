package sqlstore

import (
	"fmt"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// AccountNotFound is the error for an account the store holds nothing of.
func AccountNotFound(accountID string) error {
	return fmt.Errorf("account %q: %w", accountID, store.ErrNotFound)
}

// HealthPage is the page of q for the records a driver fetched: up to
// limit+1 (limit from q.Cursor), the one beyond limit telling that there
// is a next page.
func HealthPage(q store.HealthQuery, limit int, recs []health.Record) store.HealthPage {
	page := store.HealthPage{Records: recs}
	if len(recs) > limit {
		page.Records = recs[:limit]
		page.NextPageToken = q.NextPageToken(recs[limit-1].AccountID)
	}
	return page
}

// EntryPage is the page of q for the entries a driver fetched: up to
// limit+1 after the Seq after (limit and after from q.Cursor).
func EntryPage(q store.EntryQuery, limit int, after int64, entries []store.Entry) (store.EntryPage, error) {
	if len(entries) == 0 && after == 0 {
		// Entries are never deleted, so only a first page can be empty
		// because the account is unknown.
		return store.EntryPage{}, AccountNotFound(q.AccountID)
	}
	page := store.EntryPage{Entries: entries}
	if len(entries) > limit {
		page.Entries = entries[:limit]
		page.NextPageToken = q.NextPageToken(entries[limit-1].Seq)
	}
	return page, nil
}

// SummaryCount is one row of a driver's summary query, which selects the
// columns (by error code, state, error code, count): a row per state, with
// by error code false and an empty error code, then a row per non-empty
// error code, with by error code true and state 0.
type SummaryCount struct {
	byCode bool
	state  health.State
	code   string
	n      int
}

// ScanSummaryCount scans a row of the summary query.
func ScanSummaryCount(sc Scanner) (c SummaryCount, err error) {
	return c, sc.Scan(&c.byCode, &c.state, &c.code, &c.n)
}

// Summarize adds up the rows of the summary query.
func Summarize(counts []SummaryCount) store.Summary {
	sum := store.Summary{ByState: map[health.State]int{}, ByErrorCode: map[string]int{}}
	for _, c := range counts {
		if c.byCode {
			sum.ByErrorCode[c.code] = c.n
			continue
		}
		sum.ByState[c.state] = c.n
		sum.Total += c.n
	}
	return sum
}
