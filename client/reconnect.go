package client

import (
	"context"
	"errors"
	"io"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

// Refresh asks the server to fetch the account from the provider now and
// returns the health that results. IsNotFound(err) only when neither the
// server nor the provider knows the account; IsUnavailable(err) when the
// provider cannot be reached.
func (c *Client) Refresh(ctx context.Context, accountID string) (*ahv1.RefreshAccountHealthResponse, error) {
	return c.api.RefreshAccountHealth(ctx, &ahv1.RefreshAccountHealthRequest{AccountId: accountID})
}

// ReconnectLink returns a fresh Link user token and the parameters that
// open Link at the account, for an account whose remedy happens in Link;
// IsFailedPrecondition(err) for other accounts, with the reason
// ACCOUNT_NOT_RECONNECTABLE. The token is a secret for the user's Link
// session.
func (c *Client) ReconnectLink(ctx context.Context, accountID string) (*ahv1.GetReconnectLinkResponse, error) {
	return c.api.GetReconnectLink(ctx, &ahv1.GetReconnectLinkRequest{AccountId: accountID})
}

// ResendInvite re-sends the original invite of the account's user.
func (c *Client) ResendInvite(ctx context.Context, accountID string) (*ahv1.ResendInviteResponse, error) {
	return c.api.ResendInvite(ctx, &ahv1.ResendInviteRequest{AccountId: accountID})
}

// Sync has the server backfill every account from the provider's list,
// calling progress after each page and with the final state; it returns
// once the backfill finished or failed. Interrupted, a later call resumes
// it. restart starts it over after one finished.
func (c *Client) Sync(ctx context.Context, restart bool, progress func(*ahv1.SyncAccountsResponse)) error {
	const method = ahv1.AccountHealthService_SyncAccounts_FullMethodName
	stream, err := c.api.SyncAccounts(ctx, &ahv1.SyncAccountsRequest{Restart: restart})
	if err != nil {
		return asError(method, err)
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return asError(method, err)
		}
		if progress != nil {
			progress(msg)
		}
	}
}
