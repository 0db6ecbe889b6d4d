package providerfake

import (
	"fmt"
	"net/http"
	"time"

	"github.com/accounthealth/accounthealth/server/provider/accountobject"
)

// Invite statuses the fake gives meaning to; any other is kept as given.
const (
	InviteSent    = "sent"
	InviteRevoked = "revoked" // re-sending is refused
)

// InviteSeed describes an invite: what AddInvite takes and Invites
// returns. Its JSON form is what POST /_fake/invites takes.
type InviteSeed struct {
	// ID and User are generated when empty: the provider makes a new user
	// for every new invite.
	ID   string `json:"id"`
	User string `json:"user"`
	// URL opens Link; default a URL of an unreachable host naming the id.
	URL string `json:"url"`
	// Status defaults to sent; any value is kept.
	Status string `json:"status"`
	// CreatedAt defaults to now, InvitedAt and UpdatedAt to CreatedAt;
	// RevokedAt, for a revoked invite, to UpdatedAt.
	CreatedAt time.Time `json:"created_at"`
	InvitedAt time.Time `json:"invited_at"`
	UpdatedAt time.Time `json:"updated_at"`
	RevokedAt time.Time `json:"revoked_at"`
}

type invite struct {
	InviteSeed
	seq int64
}

// AddInvite adds an invite as if it had been sent, filling in what s
// leaves empty, and returns it complete. An id in use is refused.
func (f *Fake) AddInvite(s InviteSeed) (InviteSeed, error) {
	if s.ID == "" {
		s.ID = newID()
	}
	if s.User == "" {
		s.User = newID()
	}
	if s.URL == "" {
		s.URL = "https://link.providerfake.invalid/invites/" + s.ID
	}
	if s.Status == "" {
		s.Status = InviteSent
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = f.opts.Clock()
	}
	for _, t := range []*time.Time{&s.InvitedAt, &s.UpdatedAt} {
		if t.IsZero() {
			*t = s.CreatedAt
		}
	}
	if s.Status == InviteRevoked && s.RevokedAt.IsZero() {
		s.RevokedAt = s.UpdatedAt
	}
	for _, t := range []*time.Time{&s.CreatedAt, &s.InvitedAt, &s.UpdatedAt, &s.RevokedAt} {
		*t = accountobject.Truncate(*t)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.invites[s.ID] != nil {
		return InviteSeed{}, fmt.Errorf("providerfake: invite %s exists", s.ID)
	}
	f.seq++
	f.invites[s.ID] = &invite{InviteSeed: s, seq: f.seq}
	f.log.Info("invite added", "invite", s.ID, "user", s.User, "status", s.Status)
	return s, nil
}

// Invites returns the invites, oldest first.
func (f *Fake) Invites() []InviteSeed {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []InviteSeed
	for _, inv := range f.sortedInvites("") {
		out = append(out, inv.InviteSeed)
	}
	return out
}

// ResendCount is how many times invite id was re-sent through POST
// /v2/invites/{id}; refusals (unknown, revoked) and requests answered by an
// injected fault are not counted.
func (f *Fake) ResendCount(id string) int { return f.count(f.resends, id) }

// sortedInvites lists the invites of user (empty: all) in the order they
// were added. f.mu is held.
func (f *Fake) sortedInvites(user string) []*invite {
	return inOrder(f.invites, func(inv *invite) int64 { return inv.seq },
		func(inv *invite) bool { return user == "" || inv.User == user })
}

// listInvites serves GET /v2/invites, filtered by the user query parameter,
// which the provider does not document; its documented status and
// reply_to filters are ignored.
func (f *Fake) listInvites(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	var entries []entry
	for _, inv := range f.sortedInvites(r.URL.Query().Get("user")) {
		seed := inv.InviteSeed
		entries = append(entries, entry{seq: inv.seq, obj: func() any { return renderInvite(seed, "") }})
	}
	f.mu.Unlock()
	servePage(w, r, entries)
}

// resendInvite re-sends an invite: the same invite, its sent and update
// times moved, and a fresh user token in the answer as the provider's
// example shows. The provider documents no answer for a revoked invite:
// the fake refuses it with 400 and a detail.
func (f *Fake) resendInvite(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	inv := f.invites[id]
	revoked := inv != nil && inv.Status == InviteRevoked
	var s InviteSeed
	if inv != nil && !revoked {
		now := accountobject.Truncate(f.opts.Clock())
		if !now.After(inv.UpdatedAt) {
			now = inv.UpdatedAt.Add(time.Microsecond)
		}
		inv.InvitedAt, inv.UpdatedAt = now, now
		f.resends[id]++
		s = inv.InviteSeed
	}
	f.mu.Unlock()
	switch {
	case inv == nil:
		writeDetail(w, http.StatusNotFound, "Not found.")
	case revoked:
		writeDetail(w, http.StatusBadRequest, "This invite was revoked and cannot be re-sent.")
	default:
		f.log.Info("invite re-sent", "invite", id, "user", s.User)
		writeJSON(w, http.StatusOK, renderInvite(s, f.mintToken(s.User)))
	}
}

// inviteObject is the provider's invite object. The recipient's details
// are null: the fake has no recipients.
type inviteObject struct {
	ID               string             `json:"id"`
	User             string             `json:"user"`
	UserToken        *string            `json:"user_token"`
	Email            *string            `json:"email"`
	PhoneNumber      *string            `json:"phone_number"`
	FullName         *string            `json:"full_name"`
	FirstName        *string            `json:"first_name"`
	LastName         *string            `json:"last_name"`
	RevokedAt        accountobject.Time `json:"revoked_at"`
	Status           string             `json:"status"`
	GroupID          *string            `json:"group_id"`
	URL              string             `json:"url"`
	CreatedAt        accountobject.Time `json:"created_at"`
	UpdatedAt        accountobject.Time `json:"updated_at"`
	InvitedAt        accountobject.Time `json:"invited_at"`
	FlowID           *string            `json:"flow_id"`
	FlowItems        []string           `json:"flow_items"`
	ReplyTo          []string           `json:"reply_to"`
	Deliveries       []struct{}         `json:"deliveries"`
	InviteTemplateID *string            `json:"invite_template_id"`
}

// renderInvite builds the invite object for s, with userToken (empty:
// null, as in lists).
func renderInvite(s InviteSeed, userToken string) inviteObject {
	return inviteObject{
		ID: s.ID, User: s.User, UserToken: nullable(userToken), RevokedAt: accountobject.Time(s.RevokedAt),
		Status: s.Status, URL: s.URL, CreatedAt: accountobject.Time(s.CreatedAt),
		UpdatedAt: accountobject.Time(s.UpdatedAt), InvitedAt: accountobject.Time(s.InvitedAt),
		FlowItems: []string{}, ReplyTo: []string{}, Deliveries: []struct{}{},
	}
}
