package service

import (
	"context"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/provider"
)

// notConfigured is the error of the calls that need the provider's API
// when no key is configured.
var notConfigured = errorf(provider.ErrNotConfigured,
	"the provider API is not configured: start the server with --argyle-api-key-id and --argyle-api-key-secret")

// RefreshAccountHealth implements the RPC; see its doc in the proto.
func (s *AccountHealthService) RefreshAccountHealth(ctx context.Context, req *ahv1.RefreshAccountHealthRequest) (*ahv1.RefreshAccountHealthResponse, error) {
	if err := checkID("account_id", req.GetAccountId(), true); err != nil {
		return nil, err
	}
	if s.refresher == nil {
		return nil, notConfigured
	}
	res, err := s.refresher.Fetch(ctx, req.GetAccountId())
	if err != nil {
		return nil, err
	}
	rec, err := s.store.GetHealth(ctx, req.GetAccountId())
	if err != nil {
		return nil, err
	}
	return &ahv1.RefreshAccountHealthResponse{AccountHealth: s.recordToProto(ctx, rec), Outcome: outcomeToProto(res.Outcome)}, nil
}

// GetReconnectLink implements the RPC; see its doc in the proto.
func (s *AccountHealthService) GetReconnectLink(ctx context.Context, req *ahv1.GetReconnectLinkRequest) (*ahv1.GetReconnectLinkResponse, error) {
	if err := checkID("account_id", req.GetAccountId(), true); err != nil {
		return nil, err
	}
	if s.reconnector == nil {
		return nil, notConfigured
	}
	link, err := s.reconnector.Link(ctx, req.GetAccountId())
	if err != nil {
		return nil, accountError(req.GetAccountId(), err)
	}
	out := &ahv1.GetReconnectLinkResponse{
		AccountId:          text(link.Account.AccountID),
		UserId:             text(link.Account.UserID),
		UserToken:          link.Token.Token,
		UserTokenExpiresAt: timeToProto(link.Token.ExpiresAt),
		Remedy:             remedyToProto(link.Account.Remedy),
		LinkParameters:     link.Parameters,
	}
	if link.Invite != nil {
		out.InviteId, out.InviteUrl = text(link.Invite.ID), text(link.Invite.URL)
	}
	return out, nil
}

// ResendInvite implements the RPC; see its doc in the proto.
func (s *AccountHealthService) ResendInvite(ctx context.Context, req *ahv1.ResendInviteRequest) (*ahv1.ResendInviteResponse, error) {
	if err := checkID("account_id", req.GetAccountId(), true); err != nil {
		return nil, err
	}
	if s.reconnector == nil {
		return nil, notConfigured
	}
	sent, err := s.reconnector.ResendInvite(ctx, req.GetAccountId(), callerName(ctx))
	if err != nil {
		return nil, accountError(req.GetAccountId(), err)
	}
	return &ahv1.ResendInviteResponse{
		InviteId:     text(sent.Invite.ID),
		UserId:       text(sent.UserID),
		InviteStatus: text(string(sent.Invite.Status)),
		InvitedAt:    timeToProto(sent.Invite.InvitedAt),
		NextResendAt: timeToProto(sent.NextAt),
	}, nil
}
