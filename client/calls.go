package client

import (
	"context"
	"errors"
	"io"
	"iter"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

// Health returns one account's health. IsNotFound(err) when no delivery
// ever named the account.
func (c *Client) Health(ctx context.Context, accountID string) (*ahv1.AccountHealth, error) {
	resp, err := c.api.GetAccountHealth(ctx, &ahv1.GetAccountHealthRequest{AccountId: accountID})
	return resp.GetAccountHealth(), err
}

// ListOptions filters and pages ListHealth and AllHealth. Zero values mean
// no filter; filters of different fields all apply.
type ListOptions struct {
	UserID     string
	Item       string             // only accounts on this payroll platform
	States     []ahv1.HealthState // any of them
	ErrorCodes []string           // any of them
	// Freshness: only HEALTHY accounts whose data freshness is any of
	// these (other states have none, so this leaves them out).
	Freshness []ahv1.FreshnessStatus
	// PageSize is 1..500; 0 means the server's default (50).
	PageSize int32
	// PageToken is the previous page's NextPageToken; AllHealth starts there.
	PageToken string
	// Order is by account id when unspecified, else by time in state.
	Order ahv1.AccountOrder
}

// ListHealth returns one page of accounts, in opts.Order.
func (c *Client) ListHealth(ctx context.Context, opts ListOptions) (*ahv1.ListAccountHealthResponse, error) {
	return c.api.ListAccountHealth(ctx, &ahv1.ListAccountHealthRequest{
		UserId: opts.UserID, Item: opts.Item, States: opts.States, ErrorCodes: opts.ErrorCodes, Freshness: opts.Freshness,
		PageSize: opts.PageSize, PageToken: opts.PageToken, OrderBy: opts.Order,
	})
}

// AllHealth iterates over every matching account, page after page; it ends
// after yielding the first error.
func (c *Client) AllHealth(ctx context.Context, opts ListOptions) iter.Seq2[*ahv1.AccountHealth, error] {
	return pages(opts.PageToken, func(token string) ([]*ahv1.AccountHealth, string, error) {
		opts.PageToken = token
		resp, err := c.ListHealth(ctx, opts)
		return resp.GetAccounts(), resp.GetNextPageToken(), err
	})
}

// Summary counts accounts by state (every state, zeros included), HEALTHY
// ones by freshness (every status, zeros included) and by error code.
func (c *Client) Summary(ctx context.Context) (*ahv1.GetHealthSummaryResponse, error) {
	return c.api.GetHealthSummary(ctx, &ahv1.GetHealthSummaryRequest{})
}

// ItemHealth returns one payroll platform's (item's) health.
// IsNotFound(err) when no account names it and the provider reported
// nothing of it.
func (c *Client) ItemHealth(ctx context.Context, item string) (*ahv1.ItemHealth, error) {
	resp, err := c.api.GetItemHealth(ctx, &ahv1.GetItemHealthRequest{Item: item})
	return resp.GetItemHealth(), err
}

// AllItemHealth iterates over the items in any of statuses (every item
// when none), worst first; it ends after yielding the first error.
func (c *Client) AllItemHealth(ctx context.Context, statuses ...ahv1.ItemStatus) iter.Seq2[*ahv1.ItemHealth, error] {
	return pages("", func(token string) ([]*ahv1.ItemHealth, string, error) {
		resp, err := c.api.ListItemHealth(ctx, &ahv1.ListItemHealthRequest{Statuses: statuses, PageSize: 500, PageToken: token})
		return resp.GetItems(), resp.GetNextPageToken(), err
	})
}

// PageOptions pages Events and AllEvents.
type PageOptions struct {
	// PageSize is 1..500; 0 means the server's default (50).
	PageSize  int32
	PageToken string
}

// Events returns one page of an account's timeline, oldest first.
func (c *Client) Events(ctx context.Context, accountID string, opts PageOptions) (*ahv1.ListAccountEventsResponse, error) {
	return c.api.ListAccountEvents(ctx, &ahv1.ListAccountEventsRequest{AccountId: accountID, PageSize: opts.PageSize, PageToken: opts.PageToken})
}

// AllEvents iterates over an account's whole timeline, oldest first; it
// ends after yielding the first error.
func (c *Client) AllEvents(ctx context.Context, accountID string, opts PageOptions) iter.Seq2[*ahv1.AccountEvent, error] {
	return pages(opts.PageToken, func(token string) ([]*ahv1.AccountEvent, string, error) {
		opts.PageToken = token
		resp, err := c.Events(ctx, accountID, opts)
		return resp.GetEvents(), resp.GetNextPageToken(), err
	})
}

// pages yields the items of page after page, from token on, until a page
// has no next token or fetching fails.
func pages[T any](token string, fetch func(token string) ([]T, string, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			items, next, err := fetch(token)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, item := range items {
				if !yield(item, nil) {
					return
				}
			}
			if next == "" {
				return
			}
			token = next
		}
	}
}

// DeleteOptions modify DeleteFailed.
type DeleteOptions struct {
	// Force also deletes a failed account that once connected (the
	// provider deletes its data too).
	Force bool
	// DryRun checks the preconditions and reports what would happen.
	DryRun bool
}

// DeleteFailed deletes, at the provider, an account whose login failed.
// IsFailedPrecondition(err) when the account does not qualify (the message
// says why; a once-connected one needs Force). A repeated call returns the
// first answer without a second deletion, which is why it is retried.
func (c *Client) DeleteFailed(ctx context.Context, accountID string, opts DeleteOptions) (*ahv1.DeleteFailedAccountResponse, error) {
	return c.api.DeleteFailedAccount(ctx, &ahv1.DeleteFailedAccountRequest{AccountId: accountID, Force: opts.Force, DryRun: opts.DryRun})
}

// PurgeOptions select the accounts PurgeFailed deletes.
type PurgeOptions struct {
	// OlderThan: only failed accounts that never connected and had no
	// delivery for this long (at least a minute).
	OlderThan time.Duration
	// DryRun lists what would be deleted.
	DryRun bool
	// Limit stops after this many accounts; 0 means no limit.
	Limit int32
}

// PurgeFailed deletes every failed account that qualifies, one at a time,
// calling progress (when not nil) with each account's result and the
// counts so far. It has no default deadline and is never retried: if it
// ends early, run it again; it only finds what is left.
func (c *Client) PurgeFailed(ctx context.Context, opts PurgeOptions, progress func(*ahv1.PurgeFailedAccountsResponse)) error {
	stream, err := c.api.PurgeFailedAccounts(ctx, &ahv1.PurgeFailedAccountsRequest{
		OlderThan: durationpb.New(opts.OlderThan), DryRun: opts.DryRun, Limit: opts.Limit,
	})
	if err != nil {
		return asError(ahv1.AccountHealthService_PurgeFailedAccounts_FullMethodName, err)
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return asError(ahv1.AccountHealthService_PurgeFailedAccounts_FullMethodName, err)
		}
		if progress != nil {
			progress(msg)
		}
	}
}
