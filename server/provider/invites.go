package provider

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"slices"
	"time"
)

// InviteStatus is an invite's status. Like every enum of the provider's,
// it may gain values.
type InviteStatus string

// The documented invite statuses.
const (
	InviteSent      InviteStatus = "sent"
	InviteInitiated InviteStatus = "initiated" // the user opened Link from the invite
	InviteAttempted InviteStatus = "attempted" // the user submitted credentials; nothing connected
	InviteCompleted InviteStatus = "completed" // an account connected
	// InviteRevoked: the URL no longer opens Link, and the provider refuses
	// to re-send the invite.
	InviteRevoked InviteStatus = "revoked"
)

// Invite is an invite, the way back to Link for a user who was sent one:
// its URL does not expire, and re-sending it (ResendInvite) brings the
// user back to their accounts, where a new invite would create a second
// user. The user token and the recipient's contact details the provider
// sends along are deliberately not kept: nothing here needs them, and
// without them an Invite holds no credential but its URL.
type Invite struct {
	ID        string       `json:"id"`
	User      string       `json:"user"`
	URL       string       `json:"url"`
	Status    InviteStatus `json:"status"`
	CreatedAt time.Time    `json:"created_at"`
	// UpdatedAt and InvitedAt move when the invite is re-sent; InvitedAt
	// is when it was last sent.
	UpdatedAt time.Time `json:"updated_at"`
	InvitedAt time.Time `json:"invited_at"`
	// RevokedAt is zero unless the invite was revoked.
	RevokedAt time.Time `json:"revoked_at"`
}

// String prints the invite with its URL redacted: the URL opens Link as
// the user, so it goes to the user, not into logs.
func (i Invite) String() string {
	return fmt.Sprintf("provider.Invite{ID:%q User:%q URL:%q Status:%q InvitedAt:%s}",
		i.ID, i.User, redacted(i.URL), i.Status, i.InvitedAt.Format(time.RFC3339))
}

// GoString covers %#v.
func (i Invite) GoString() string { return i.String() }

// LogValue logs the invite with its URL redacted.
func (i Invite) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", i.ID), slog.String("user", i.User), slog.String("url", redacted(i.URL)),
		slog.String("status", string(i.Status)), slog.Time("invited_at", i.InvitedAt),
	)
}

// ListInvitesParams selects a page of invites.
type ListInvitesParams = ListParams

// InvitePage is one page of ListInvites.
type InvitePage struct {
	Invites []Invite
	// Next and Previous are the provider's page links; empty at the ends.
	Next, Previous string
	// NextCursor is the ListInvitesParams.Cursor that fetches the next
	// page; empty on the last page.
	NextCursor string
}

// ListInvites fetches one page of invites. The provider documents no user
// filter for this list, only status and reply_to: User is sent as the
// user query parameter and the page is filtered here too, so that the
// answer holds only User's invites either way. A filtered page may then
// be short, or empty, with more pages after it.
func (c *Client) ListInvites(ctx context.Context, params ListInvitesParams) (InvitePage, error) {
	q, err := params.query("invites")
	if err != nil {
		return InvitePage{}, err
	}
	p, next, err := listPage[Invite](ctx, c, "/invites", q)
	if err != nil {
		return InvitePage{}, err
	}
	invites := p.Results
	if params.User != "" {
		invites = slices.DeleteFunc(invites, func(i Invite) bool { return i.User != params.User })
	}
	return InvitePage{Invites: invites, Next: p.Next, Previous: p.Previous, NextCursor: next}, nil
}

// InvitePages walks the invites page by page from params.Cursor on, the
// way AccountPages walks accounts.
func (c *Client) InvitePages(ctx context.Context, params ListInvitesParams) iter.Seq2[InvitePage, error] {
	return walk("invites", params.Cursor, func(cursor string) (InvitePage, string, error) {
		params.Cursor = cursor
		p, err := c.ListInvites(ctx, params)
		return p, p.NextCursor, err
	})
}

// ResendInvite sends invite id again, by the way it was first sent, and
// returns it as updated: the same invite and URL, never a new invite nor a
// new user. An unknown id ends in an error matching ErrNotFound. The
// provider documents no answer for a revoked invite; expect a 4xx
// *APIError matching no sentinel, and check Status first. It is retried
// only when the provider surely sent nothing (see creating): a repeat
// would reach the user twice.
func (c *Client) ResendInvite(ctx context.Context, id string) (Invite, error) {
	p, err := segment("invite", id)
	if err != nil {
		return Invite{}, err
	}
	var inv Invite
	if err := c.do(ctx, request{method: http.MethodPost, path: "/invites/" + p, policy: creating}, &inv); err != nil {
		return Invite{}, err
	}
	return inv, nil
}
