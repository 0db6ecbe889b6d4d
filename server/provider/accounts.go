package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/jsonstruct"
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
	// unusable says why ID or User is not the id the provider sent, nil
	// when both are: GetAccount fails with it, ListAccounts leaves the
	// account out.
	unusable error
}

// UnmarshalJSON parses the known fields and keeps the whole object in Raw.
func (a *Account) UnmarshalJSON(b []byte) error {
	type fields Account // without methods, so this does not recurse
	if err := json.Unmarshal(b, (*fields)(a)); err != nil {
		return err
	}
	a.Raw = bytes.Clone(b)
	// encoding/json repairs what it cannot decode as U+FFFD; only then
	// may an id differ from the one sent.
	if strings.ContainsAny(a.ID+a.User, "\uFFFD\x00") {
		a.unusable = unusableID(b)
	}
	return nil
}

// unusableID says why the id or user of the account object b cannot be
// used as sent, as a delivery's ids cannot (see jsonstruct.ID).
func unusableID(b []byte) error {
	var ids struct {
		ID   json.RawMessage `json:"id"`
		User json.RawMessage `json:"user"`
	}
	if err := json.Unmarshal(b, &ids); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"id", ids.ID}, {"user", ids.User}} {
		if len(f.raw) == 0 || f.raw[0] != '"' {
			continue // absent or null
		}
		if _, err := jsonstruct.ID(f.raw); err != nil {
			return fmt.Errorf("argyle: account %s: %s: %v; an id is used as sent, never repaired", ids.ID, f.name, err)
		}
	}
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
	// Unusable are the page's accounts left out of Accounts, each saying
	// why its id cannot be used as sent (see Account).
	Unusable []error
}

// ListAccountsParams selects a page of accounts.
type ListAccountsParams = ListParams

// GetAccount fetches one account. An unknown or deleted id ends in an
// error matching ErrNotFound.
func (c *Client) GetAccount(ctx context.Context, id string) (Account, error) {
	var a Account
	p, err := segment("account", id)
	if err != nil {
		return a, err
	}
	if err = c.do(ctx, request{method: http.MethodGet, path: "/accounts/" + p}, &a); err == nil {
		err = a.unusable
	}
	return a, err
}

// ListAccounts fetches one page of accounts.
func (c *Client) ListAccounts(ctx context.Context, params ListAccountsParams) (AccountPage, error) {
	q, err := params.query("accounts")
	if err != nil {
		return AccountPage{}, err
	}
	p, next, err := listPage[Account](ctx, c, "/accounts", q)
	if err != nil {
		return AccountPage{}, err
	}
	page := AccountPage{Accounts: p.Results[:0], Next: p.Next, Previous: p.Previous, NextCursor: next}
	for _, a := range p.Results {
		if a.unusable != nil {
			page.Unusable = append(page.Unusable, a.unusable)
			continue
		}
		page.Accounts = append(page.Accounts, a)
	}
	return page, nil
}

// AccountPages walks the accounts page by page from params.Cursor on, as
// a backfill does: each page comes with the NextCursor to persist once the
// page is handled, so that a walk cut short resumes where it stopped when
// that cursor is passed back as params.Cursor. The last page has an empty
// NextCursor: a walk started again from there starts from the first page.
// An error is yielded once, with a zero page, and ends the walk.
func (c *Client) AccountPages(ctx context.Context, params ListAccountsParams) iter.Seq2[AccountPage, error] {
	return walk("accounts", params.Cursor, func(cursor string) (AccountPage, string, error) {
		params.Cursor = cursor
		p, err := c.ListAccounts(ctx, params)
		return p, p.NextCursor, err
	})
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

// segment escapes an id for use as one path segment, refusing ids that
// would address another resource (the list, or the parent).
func segment(kind, id string) (string, error) {
	switch id {
	case "", ".", "..":
		return "", fmt.Errorf("argyle: invalid %s id %q", kind, id)
	}
	return url.PathEscape(id), nil
}
