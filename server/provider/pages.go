package provider

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// MaxPageSize is the largest page the provider serves.
const MaxPageSize = 200

// page is the provider's list envelope.
type page[T any] struct {
	Next     string `json:"next"`
	Previous string `json:"previous"`
	Results  []T    `json:"results"`
}

// nextCursor takes the cursor out of the next link. Following the link
// itself would send our credentials wherever it points; the cursor is
// applied to our own base URL instead.
func (p page[T]) nextCursor() (string, error) {
	if p.Next == "" {
		return "", nil
	}
	u, err := url.Parse(p.Next)
	if err != nil {
		return "", fmt.Errorf("argyle: malformed next page link: %w", err)
	}
	cursor := u.Query().Get("cursor")
	if cursor == "" {
		return "", fmt.Errorf("argyle: next page link %s has no cursor", u.Redacted())
	}
	return cursor, nil
}

// ListParams selects a page of a list (ListAccountsParams,
// ListInvitesParams).
type ListParams struct {
	// User limits the list to one user's items; empty: all.
	User string
	// Limit is the page size, at most MaxPageSize; 0: the provider's
	// default of 10.
	Limit int
	// Cursor is a previous page's NextCursor; empty: the first page.
	Cursor string
}

// query is the query selecting the page of list that p names.
func (p ListParams) query(list string) (url.Values, error) {
	if p.Limit < 0 || p.Limit > MaxPageSize {
		return nil, fmt.Errorf("argyle: list %s: limit %d out of range [0, %d]", list, p.Limit, MaxPageSize)
	}
	q := url.Values{}
	if p.User != "" {
		q.Set("user", p.User)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
	return q, nil
}

// listPage fetches one page of the list at path, and the cursor of the
// page after it (empty after the last).
func listPage[T any](ctx context.Context, c *Client, path string, q url.Values) (page[T], string, error) {
	var p page[T]
	if err := c.do(ctx, request{method: http.MethodGet, path: path, query: q}, &p); err != nil {
		return page[T]{}, "", err
	}
	next, err := p.nextCursor()
	if err != nil {
		return page[T]{}, "", err
	}
	return p, next, nil
}

// walk yields the pages fetch returns from cursor on, each with no error,
// following each page's next cursor until the last page or until the
// caller stops. A failed fetch is yielded once, as the error with a zero
// page, and ends the walk. A next cursor already fetched ends it with an
// error too, instead of the page that named it: a provider that loops
// must not keep a caller paging forever.
func walk[P any](list, cursor string, fetch func(cursor string) (P, string, error)) iter.Seq2[P, error] {
	return func(yield func(P, error) bool) {
		var zero P
		seen := map[string]bool{cursor: true}
		for {
			p, next, err := fetch(cursor)
			switch {
			case err != nil:
				yield(zero, err)
				return
			case next != "" && seen[next]:
				yield(zero, fmt.Errorf("argyle: list %s: the next page link repeats cursor %q; the provider's paging loops, start again from the first page", list, next))
				return
			}
			if !yield(p, nil) || next == "" {
				return
			}
			seen[next] = true
			cursor = next
		}
	}
}
