package reconnect

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/store"
)

// ResendAction names the audit entry a re-send leaves in the timeline.
const ResendAction = "invite.resent"

// Resent is what re-sending an invite did.
type Resent struct {
	UserID string
	Invite provider.Invite
	// NextAt is the earliest time the invite may be sent again.
	NextAt time.Time
}

// ResendInvite re-sends the original invite of the account's user, at most
// once per user within the resend interval, and records it in the
// account's timeline.
func (r *Reconnector) ResendInvite(ctx context.Context, accountID, actor string) (Resent, error) {
	rec, err := r.store.GetHealth(ctx, accountID)
	if err != nil {
		return Resent{}, err
	}
	if rec.UserID == "" {
		return Resent{}, fmt.Errorf("%w: account %s names no user yet", ErrNoInvite, accountID)
	}
	// Concurrent calls for one user send once; the provider's invited_at
	// then holds the others back. The shared call outlives the first
	// caller's context, as the audit entry depends on it.
	v, err, _ := r.resends.Do(rec.UserID, func() (any, error) {
		return r.resend(context.WithoutCancel(ctx), rec, actor)
	})
	res, _ := v.(Resent)
	return res, err
}

func (r *Reconnector) resend(ctx context.Context, rec health.Record, actor string) (Resent, error) {
	inv, err := r.originalInvite(ctx, rec.UserID)
	if err != nil {
		return Resent{}, err
	}
	if next := inv.InvitedAt.Add(r.opts.ResendInterval); r.now().Before(next) {
		return Resent{}, fmt.Errorf("%w: invite %s of user %s was sent at %s; it may be sent again from %s",
			ErrResentRecently, inv.ID, rec.UserID, inv.InvitedAt.UTC().Format(time.RFC3339), next.UTC().Format(time.RFC3339))
	}
	sent, err := r.provider.ResendInvite(ctx, inv.ID)
	if err != nil {
		return Resent{}, fmt.Errorf("re-sending invite %s: %w", inv.ID, err)
	}
	if sent.InvitedAt.IsZero() {
		sent.InvitedAt = r.now()
	}
	r.logger.InfoContext(ctx, "invite re-sent", "account", rec.AccountID, "user", rec.UserID, "invite", sent.ID, "actor", actor)
	if err := r.audit(ctx, rec, sent, actor); err != nil {
		// Sent all the same: the provider's invited_at still holds further
		// re-sends back, so the caller hears of success.
		r.logger.ErrorContext(ctx, "invite re-sent but its audit entry was not stored", "account", rec.AccountID, "invite", sent.ID, "error", err)
	}
	return Resent{UserID: rec.UserID, Invite: sent, NextAt: sent.InvitedAt.Add(r.opts.ResendInterval)}, nil
}

// audit records the re-send in the account's timeline; it is no account
// event, so health does not change.
func (r *Reconnector) audit(ctx context.Context, rec health.Record, inv provider.Invite, actor string) error {
	body, err := json.Marshal(struct {
		Action string `json:"action"`
		Invite string `json:"invite"`
		User   string `json:"user"`
		Actor  string `json:"actor"`
	}{ResendAction, inv.ID, rec.UserID, actor})
	if err != nil {
		return err
	}
	_, err = r.commit(ctx, store.Delivery{
		Source:  store.SourceAPI,
		Actor:   actor,
		Name:    ResendAction,
		Body:    body,
		Decoded: health.Delivery{Event: ResendAction, AccountID: rec.AccountID, UserID: rec.UserID, ReceivedAt: r.now().UTC()},
	})
	return err
}
