package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ConnectionStatus is an account's connection.status. The provider adds
// values without notice; any string may appear.
type ConnectionStatus string

// The documented connection statuses.
const (
	StatusConnecting ConnectionStatus = "connecting"
	StatusConnected  ConnectionStatus = "connected"
	StatusError      ConnectionStatus = "error" // data refreshes are paused
)

// Connection is an account's connection state.
type Connection struct {
	Status ConnectionStatus `json:"status"`
	// ErrorCode and ErrorMessage are empty unless Status is error. Codes
	// are open-ended too.
	ErrorCode    string    `json:"error_code"`
	ErrorMessage string    `json:"error_message"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Account is a v2 account object: the fields account health needs, parsed,
// and the whole object as received in Raw, unknown fields included.
type Account struct {
	ID         string     `json:"id"`
	User       string     `json:"user"`
	Connection Connection `json:"connection"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	// ScannedAt is zero when the account was never scanned.
	ScannedAt time.Time `json:"scanned_at"`
	// Raw is the account object exactly as the provider sent it.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON parses the known fields and keeps the whole object in Raw.
func (a *Account) UnmarshalJSON(b []byte) error {
	type fields Account // without methods, so this does not recurse
	if err := json.Unmarshal(b, (*fields)(a)); err != nil {
		return err
	}
	a.Raw = bytes.Clone(b)
	return nil
}

// MarshalJSON writes Raw, so that an Account re-encodes as the provider's
// object rather than as the subset parsed from it.
func (a Account) MarshalJSON() ([]byte, error) {
	if len(a.Raw) == 0 {
		type fields Account
		return json.Marshal(fields(a))
	}
	return a.Raw, nil
}

// AccountPage is one page of ListAccounts.
type AccountPage struct {
	Accounts []Account
	// Next and Previous are the provider's page links; empty at the ends.
	Next, Previous string
	// NextCursor is the ListAccountsParams.Cursor that fetches the next
	// page; empty on the last page.
	NextCursor string
}

// ListAccountsParams selects a page of accounts.
type ListAccountsParams struct {
	// User limits the list to one user's accounts; empty: all.
	User string
	// Limit is the page size, at most MaxPageSize; 0: the provider's
	// default.
	Limit int
	// Cursor is a previous page's NextCursor; empty: the first page.
	Cursor string
}

// MaxPageSize is the largest page the provider serves.
const MaxPageSize = 200

// GetAccount fetches one account. An unknown or deleted id ends in an
// error matching ErrNotFound.
func (c *Client) GetAccount(ctx context.Context, id string) (Account, error) {
	var a Account
	p, err := segment("account", id)
	if err != nil {
		return a, err
	}
	err = c.do(ctx, request{method: http.MethodGet, path: "/accounts/" + p}, &a)
	return a, err
}

// ListAccounts fetches one page of accounts.
func (c *Client) ListAccounts(ctx context.Context, params ListAccountsParams) (AccountPage, error) {
	if params.Limit < 0 || params.Limit > MaxPageSize {
		return AccountPage{}, fmt.Errorf("argyle: list accounts: limit %d out of range [0, %d]", params.Limit, MaxPageSize)
	}
	q := url.Values{}
	if params.User != "" {
		q.Set("user", params.User)
	}
	if params.Limit > 0 {
		q.Set("limit", strconv.Itoa(params.Limit))
	}
	if params.Cursor != "" {
		q.Set("cursor", params.Cursor)
	}
	var p page[Account]
	if err := c.do(ctx, request{method: http.MethodGet, path: "/accounts", query: q}, &p); err != nil {
		return AccountPage{}, err
	}
	next, err := p.nextCursor()
	if err != nil {
		return AccountPage{}, err
	}
	return AccountPage{
		Accounts: p.Results, Next: p.Next, Previous: p.Previous, NextCursor: next,
	}, nil
}

// DeleteAccount deletes an account and all its data; the provider then
// sends accounts.removed. An account already gone ends in an error matching
// ErrNotFound, which callers may take as success.
func (c *Client) DeleteAccount(ctx context.Context, id string) error {
	p, err := segment("account", id)
	if err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodDelete, path: "/accounts/" + p}, nil)
}

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

// segment escapes an id for use as one path segment, refusing ids that
// would address another resource (the list, or the parent).
func segment(kind, id string) (string, error) {
	switch id {
	case "", ".", "..":
		return "", fmt.Errorf("argyle: invalid %s id %q", kind, id)
	}
	return url.PathEscape(id), nil
}
