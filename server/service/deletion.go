package service

import (
	"context"

	"google.golang.org/grpc/status"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/deletion"
)

// deletionOutcomes translate deletion outcomes into the API's enum.
var deletionOutcomes = map[deletion.Outcome]ahv1.DeletionOutcome{
	deletion.WouldDelete: ahv1.DeletionOutcome_DELETION_OUTCOME_WOULD_DELETE,
	deletion.Deleted:     ahv1.DeletionOutcome_DELETION_OUTCOME_DELETED,
	deletion.AlreadyGone: ahv1.DeletionOutcome_DELETION_OUTCOME_ALREADY_GONE,
	deletion.Failed:      ahv1.DeletionOutcome_DELETION_OUTCOME_FAILED,
	deletion.Skipped:     ahv1.DeletionOutcome_DELETION_OUTCOME_SKIPPED,
}

// DeleteFailedAccount implements the RPC; see its doc in the proto.
func (s *AccountHealthService) DeleteFailedAccount(ctx context.Context, req *ahv1.DeleteFailedAccountRequest) (*ahv1.DeleteFailedAccountResponse, error) {
	if err := checkID("account_id", req.GetAccountId(), true); err != nil {
		return nil, err
	}
	rec, outcome, err := s.deleter.Delete(ctx, deletion.Request{
		AccountID: req.GetAccountId(), Force: req.GetForce(), DryRun: req.GetDryRun(), Actor: callerName(ctx),
	})
	if err != nil {
		return nil, accountError(req.GetAccountId(), err)
	}
	return &ahv1.DeleteFailedAccountResponse{AccountHealth: s.recordToProto(ctx, rec), Outcome: deletionOutcomes[outcome]}, nil
}

// PurgeFailedAccounts implements the RPC; see its doc in the proto.
func (s *AccountHealthService) PurgeFailedAccounts(req *ahv1.PurgeFailedAccountsRequest, stream ahv1.AccountHealthService_PurgeFailedAccountsServer) error {
	ctx := stream.Context()
	age := req.GetOlderThan().AsDuration()
	if req.GetOlderThan() == nil || req.GetOlderThan().CheckValid() != nil || age < deletion.MinPurgeAge {
		return invalidArgument("older_than", "is required and must be at least 1m (e.g. \"2592000s\" over REST, 720h on the CLI: 30 days)")
	}
	if req.GetLimit() < 0 {
		return invalidArgument("limit", "must not be negative (0 means no limit)")
	}
	purge := deletion.PurgeRequest{OlderThan: age, Limit: int(req.GetLimit()), DryRun: req.GetDryRun(), Actor: callerName(ctx)}
	return s.deleter.Purge(ctx, purge, func(r deletion.PurgeResult) error {
		if r.Total == 0 {
			return stream.Send(&ahv1.PurgeFailedAccountsResponse{}) // nothing matched
		}
		return stream.Send(&ahv1.PurgeFailedAccountsResponse{Result: s.purgeResult(ctx, r), Processed: int32(r.Processed), Total: int32(r.Total)})
	})
}

// purgeResult reports one account of a purge; a failure's message and
// reason are those an error about that account alone would carry.
func (s *AccountHealthService) purgeResult(ctx context.Context, r deletion.PurgeResult) *ahv1.PurgeResult {
	out := &ahv1.PurgeResult{
		AccountId: text(r.Account.AccountID), UserId: text(r.Account.UserID),
		Outcome: deletionOutcomes[r.Outcome], LastEventAt: timeToProto(r.Account.LastEventAt),
	}
	if r.Err != nil {
		st := toStatus(ctx, s.logger, r.Err)
		out.Message = text(status.Convert(st).Message())
		out.Reason = reasonOf(st)
	}
	return out
}
