package service

import (
	"context"
	"log/slog"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/intake"
)

// WebhookService takes deliveries in over gRPC; the HTTP route on the
// webhook listener forwards to it with the exact bytes received.
type WebhookService struct {
	ahv1.UnimplementedWebhookServiceServer
	pipeline *intake.Pipeline
	logger   *slog.Logger
}

var _ ahv1.WebhookServiceServer = (*WebhookService)(nil)

// NewWebhookService serves ReceiveArgyleWebhook through p.
func NewWebhookService(p *intake.Pipeline, logger *slog.Logger) *WebhookService {
	return &WebhookService{pipeline: p, logger: logger}
}

func (s *WebhookService) ReceiveArgyleWebhook(ctx context.Context, req *ahv1.ReceiveArgyleWebhookRequest) (*ahv1.ReceiveArgyleWebhookResponse, error) {
	acc, err := s.pipeline.Receive(ctx, req.GetPayload(), req.GetSignature())
	if err != nil {
		s.logger.WarnContext(ctx, "webhook rejected", "bytes", len(req.GetPayload()), "error", err)
		return nil, toStatus(ctx, s.logger, err)
	}
	d := acc.Envelope.Delivery
	s.logger.InfoContext(ctx, "webhook accepted", "event", acc.Envelope.Event, "account", d.AccountID,
		"outcome", acc.Result.Outcome.String(), "sequence", acc.Result.EntrySeq)
	return &ahv1.ReceiveArgyleWebhookResponse{
		Event:     acc.Envelope.Event,
		AccountId: d.AccountID,
		Outcome:   outcomeToProto(acc.Result.Outcome),
		Sequence:  acc.Result.EntrySeq,
	}, nil
}
