package service

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/backfill"
)

// SyncAccounts implements the RPC; see its doc in the proto.
func (s *AccountHealthService) SyncAccounts(req *ahv1.SyncAccountsRequest, stream ahv1.AccountHealthService_SyncAccountsServer) error {
	if s.backfill == nil {
		return notConfigured
	}
	ctx := stream.Context()
	var sendErr error
	var rate float64
	state, err := s.backfill.Run(ctx, req.GetRestart(), func(p backfill.Progress) {
		rate = p.Rate
		if sendErr == nil {
			sendErr = stream.Send(syncProgress(p))
		}
	})
	if err != nil {
		return err
	}
	if sendErr != nil {
		return sendErr
	}
	// The final state, also when the backfill had finished before.
	return stream.Send(syncProgress(backfill.Progress{SyncState: state, Rate: rate}))
}

// syncProgress is one progress message; its ETA comes from the accounts
// the store knows, the best guess of how many the provider lists.
func syncProgress(p backfill.Progress) *ahv1.SyncAccountsResponse {
	out := &ahv1.SyncAccountsResponse{
		Pages: p.Pages, Seen: p.Seen, Applied: p.Applied, AccountsPerSecond: p.Rate, Done: p.Done,
		StartedAt: timeToProto(p.StartedAt),
	}
	if p.Waiting != nil {
		out.Waiting = text(p.Waiting.Error())
	}
	if p.Expected > p.Seen && p.Rate > 0 && !p.Done {
		out.Eta = durationpb.New(time.Duration(float64(p.Expected-p.Seen) / p.Rate * float64(time.Second)))
	}
	return out
}
