package service

import (
	"context"
	"log/slog"
	"strings"

	"google.golang.org/grpc/metadata"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/intake"
	"github.com/accounthealth/accounthealth/server/refresh"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// WebhookService takes deliveries in over gRPC; the webhook listener's
// gateway route calls it with the exact bytes received.
type WebhookService struct {
	ahv1.UnimplementedWebhookServiceServer
	pipeline  *intake.Pipeline
	refresher *refresh.Refresher // nil: unconfirmed accounts stay so
	// inflight, on the gRPC listener, holds each payload's bytes until it
	// is answered; the webhook route holds its bodies itself.
	inflight *inflightBodies
	logger   *slog.Logger
}

var _ ahv1.WebhookServiceServer = (*WebhookService)(nil)

// signatureMetadata carries the signature header from the webhook route,
// which cannot put a header into a request field.
var signatureMetadata = strings.ToLower(webhook.SignatureHeader)

func (s *WebhookService) ReceiveArgyleWebhook(ctx context.Context, req *ahv1.ReceiveArgyleWebhookRequest) (*ahv1.ReceiveArgyleWebhookResponse, error) {
	if s.inflight != nil {
		n := int64(len(req.GetPayload()))
		if !s.inflight.hold(ctx, n) {
			err := s.inflight.busy()
			s.logger.WarnContext(ctx, "webhook rejected", "bytes", n, "error", err)
			return nil, err
		}
		defer s.inflight.release(n)
	}
	signature := req.GetSignature()
	if signature == "" {
		signature = firstMetadata(ctx, signatureMetadata)
	}
	acc, err := s.pipeline.Receive(ctx, req.GetPayload(), signature)
	if err != nil {
		s.logger.WarnContext(ctx, "webhook rejected", "bytes", len(req.GetPayload()), "error", err)
		return nil, err
	}
	d := acc.Envelope.Delivery
	if s.refresher != nil {
		s.refresher.Accepted(d.AccountID, acc.Result)
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

// firstMetadata returns the first value of key in the call's metadata.
// ValueFromIncomingContext copies that key's values only, where
// FromIncomingContext copies all of them: it was the largest allocation
// per delivery, once per interceptor.
func firstMetadata(ctx context.Context, key string) string {
	if v := metadata.ValueFromIncomingContext(ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}
