package service

import (
	"context"
	"log/slog"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/intake"
	"github.com/accounthealth/accounthealth/server/refresh"
)

// WebhookService takes deliveries in over gRPC; the HTTP route on the
// webhook listener forwards to it with the exact bytes received.
type WebhookService struct {
	ahv1.UnimplementedWebhookServiceServer
	pipeline  *intake.Pipeline
	refresher *refresh.Refresher // nil: unconfirmed accounts stay so
	logger    *slog.Logger
}

var _ ahv1.WebhookServiceServer = (*WebhookService)(nil)

func (s *WebhookService) ReceiveArgyleWebhook(ctx context.Context, req *ahv1.ReceiveArgyleWebhookRequest) (*ahv1.ReceiveArgyleWebhookResponse, error) {
	acc, err := s.pipeline.Receive(ctx, req.GetPayload(), req.GetSignature())
	if err != nil {
		s.logger.WarnContext(ctx, "webhook rejected", "bytes", len(req.GetPayload()), "error", err)
		return nil, toStatus(ctx, s.logger, err)
	}
	d := acc.Envelope.Delivery
	if acc.Result.Outcome == health.OutcomeUnconfirmed && s.refresher != nil {
		s.refresher.Request(d.AccountID)
	}
	s.logger.InfoContext(ctx, "webhook accepted", "event", acc.Envelope.Event, "account", d.AccountID,
		"outcome", acc.Result.Outcome.String(), "sequence", acc.Result.EntrySeq)
	return &ahv1.ReceiveArgyleWebhookResponse{
		Event:     acc.Envelope.Event,
		AccountId: d.AccountID,
		Outcome:   outcomeToProto(acc.Result.Outcome),
		Sequence:  acc.Result.EntrySeq,
	}, nil
}
