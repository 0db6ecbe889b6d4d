// Package reconnect brings a user back to Link to fix an account: a user
// token and the Link parameters that open Link at the account, and the
// user's original invite, re-sent rather than replaced (a new invite
// creates a second user at the provider).
package reconnect

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/store"
)

// Errors of reconnecting. Each wraps a message saying what to do; the API
// maps them to status codes and reasons.
var (
	// ErrNotReconnectable: the account's state has no remedy in Link.
	ErrNotReconnectable = errors.New("account not reconnectable")
	// ErrNoInvite: the provider holds no invite for the user.
	ErrNoInvite = errors.New("no invite for the user")
	// ErrInviteRevoked: the user's invites are all revoked.
	ErrInviteRevoked = errors.New("the user's invite is revoked")
	// ErrResentRecently: the invite was sent within the resend interval.
	ErrResentRecently = errors.New("invite sent recently")
)

// Provider is what reconnecting needs of the provider; *provider.Client is
// one.
type Provider interface {
	CreateUserToken(ctx context.Context, userID string) (provider.UserToken, error)
	InvitePages(ctx context.Context, params provider.ListInvitesParams) iter.Seq2[provider.InvitePage, error]
	ResendInvite(ctx context.Context, inviteID string) (provider.Invite, error)
}

// Commit stores an entry of our own; normally the intake batcher's Submit.
type Commit func(context.Context, store.Delivery) (store.Result, error)

// Defaults of Options.
const (
	DefaultResendInterval = 24 * time.Hour
	DefaultTokenWindow    = 10 * time.Second
)

// Options tune a Reconnector; zero values take the defaults.
type Options struct {
	// ResendInterval is the least time between two sends of a user's
	// invite, counted from the provider's invited_at, so that re-sends
	// from the provider's console count too.
	ResendInterval time.Duration
	// TokenWindow is how long a minted user token is handed to further
	// calls for the same user, so that a burst of calls costs one token
	// request. The token stays in memory only, for this long at most.
	TokenWindow time.Duration
}

// Reconnector answers reconnect links and invite re-sends.
type Reconnector struct {
	store    store.Store
	provider Provider
	commit   Commit
	logger   *slog.Logger
	now      func() time.Time
	opts     Options
	tokens   *tokenShare
	resends  singleflight.Group // one re-send per user at a time
}

// New returns a Reconnector over s and p.
func New(s store.Store, p Provider, commit Commit, logger *slog.Logger, opts Options) *Reconnector {
	if opts.ResendInterval <= 0 {
		opts.ResendInterval = DefaultResendInterval
	}
	if opts.TokenWindow <= 0 {
		opts.TokenWindow = DefaultTokenWindow
	}
	r := &Reconnector{store: s, provider: p, commit: commit, logger: logger, now: time.Now, opts: opts}
	r.tokens = newTokenShare(p.CreateUserToken, opts.TokenWindow, func() time.Time { return r.now() })
	return r
}

// Link is what opens Link at an account.
type Link struct {
	Account health.Record
	Token   provider.UserToken
	// Parameters are the Link initialisation parameters, by their Link
	// names.
	Parameters map[string]string
	// Invite is the user's original invite, nil when they have none that
	// is not revoked.
	Invite *provider.Invite
}

// Link returns what opens Link at the account's Reconnect or login screen.
func (r *Reconnector) Link(ctx context.Context, accountID string) (Link, error) {
	rec, err := r.store.GetHealth(ctx, accountID)
	if err != nil {
		return Link{}, err
	}
	if err := reconnectable(rec); err != nil {
		return Link{}, err
	}
	invite, err := r.originalInvite(ctx, rec.UserID)
	if err != nil && !errors.Is(err, ErrNoInvite) && !errors.Is(err, ErrInviteRevoked) {
		return Link{}, err
	}
	tok, err := r.tokens.get(ctx, rec.UserID)
	if err != nil {
		return Link{}, fmt.Errorf("minting a Link user token for user %s: %w", rec.UserID, err)
	}
	l := Link{Account: rec, Token: tok, Invite: invite,
		Parameters: map[string]string{"userToken": tok.Token, "accountId": rec.AccountID}}
	return l, nil
}

// reconnectable says whether the account's remedy happens in Link, and
// what to do instead when it does not.
func reconnectable(rec health.Record) error {
	switch rec.State {
	case health.StateDisconnected, health.StateAuthFailed:
		if rec.UserID == "" {
			return fmt.Errorf("%w: account %s names no user, and Link opens for a user; wait for a delivery or a refresh that names one", ErrNotReconnectable, rec.AccountID)
		}
		return nil
	case health.StateRemoved:
		return fmt.Errorf("%w: account %s was removed and cannot be reconnected; the user connects the payroll account again in Link, which makes a new account", ErrNotReconnectable, rec.AccountID)
	case health.StateHealthy:
		return fmt.Errorf("%w: account %s is connected; there is nothing to fix in Link", ErrNotReconnectable, rec.AccountID)
	case health.StateDegraded:
		return fmt.Errorf("%w: account %s has a problem on the provider's or the payroll platform's side, which Link cannot fix; wait for it to recover", ErrNotReconnectable, rec.AccountID)
	}
	return fmt.Errorf("%w: account %s is %s; wait for the connection attempt to end", ErrNotReconnectable, rec.AccountID, rec.State)
}

// originalInvite is the user's first invite that is not revoked: the one
// to send again, since every new invite makes a new user.
func (r *Reconnector) originalInvite(ctx context.Context, userID string) (*provider.Invite, error) {
	var original *provider.Invite
	revoked := false
	for page, err := range r.provider.InvitePages(ctx, provider.ListInvitesParams{User: userID, Limit: 200}) {
		if err != nil {
			return nil, fmt.Errorf("listing the invites of user %s: %w", userID, err)
		}
		for _, inv := range page.Invites {
			switch {
			case inv.User != userID:
			case inv.Status == provider.InviteRevoked:
				revoked = true
			case original == nil || inv.CreatedAt.Before(original.CreatedAt):
				original = &inv
			}
		}
	}
	switch {
	case original != nil:
		return original, nil
	case revoked:
		return nil, fmt.Errorf("%w: every invite of user %s is revoked; a new invite would create a second user, so bring them back through your own Link integration", ErrInviteRevoked, userID)
	}
	return nil, fmt.Errorf("%w: the provider holds no invite for user %s, who reached Link another way; open Link with a user token instead", ErrNoInvite, userID)
}
