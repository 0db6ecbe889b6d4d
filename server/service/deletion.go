package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/store"
)

// AccountDeleter deletes an account at the provider; *provider.Client is
// one. Errors wrap the provider package's sentinels.
type AccountDeleter interface {
	DeleteAccount(ctx context.Context, accountID string) error
}

// Reasons in ErrorInfo for deletions.
const (
	ReasonNotDeletable        = "ACCOUNT_NOT_DELETABLE"
	ReasonProviderNotSet      = "PROVIDER_NOT_CONFIGURED"
	ReasonProviderAuth        = "PROVIDER_AUTH_FAILED"
	ReasonProviderUnavailable = "PROVIDER_UNAVAILABLE"
)

// deleteAction names the audit entry a deletion leaves in the timeline.
const deleteAction = "delete_failed_account"

// auditRecord is the body of the audit entry: what was asked and answered.
type auditRecord struct {
	Action  string `json:"action"`
	Outcome string `json:"outcome"`
	Force   bool   `json:"force"`
	Actor   string `json:"actor"`
}

// deleter deletes failed accounts at the provider and records the removal.
type deleter struct {
	store    store.Store
	provider AccountDeleter // nil when no API key is configured
	commit   func(context.Context, store.Delivery) (store.Result, error)
	logger   *slog.Logger
	now      func() time.Time
	// inflight makes concurrent deletions of one account share one DELETE
	// and one result.
	inflight singleflight.Group
}

// deletable says whether rec may be deleted, and why not.
func deletable(rec health.Record, force bool) error {
	switch {
	case rec.State == health.StateAuthFailed && !rec.EverConnected:
		return nil
	case rec.State == health.StateAuthFailed && force:
		return nil
	case rec.State == health.StateAuthFailed:
		return notDeletable("account %s once connected and holds the user's payroll data; its re-authentication failed, which the user can fix in Link. Pass force to delete it anyway", rec.AccountID)
	case rec.State == health.StateRemoved:
		return notDeletable("account %s is already removed", rec.AccountID)
	}
	return notDeletable("account %s is %s; only an account whose login failed is deleted by this call", rec.AccountID, rec.State)
}

func notDeletable(format string, args ...any) error {
	return withReason(codes.FailedPrecondition, ReasonNotDeletable, fmt.Sprintf(format, args...))
}

// delete runs one DeleteFailedAccount. It returns a gRPC status error.
func (d *deleter) delete(ctx context.Context, accountID string, force, dryRun bool, actor string) (health.Record, ahv1.DeletionOutcome, error) {
	rec, err := d.store.GetHealth(ctx, accountID)
	if err != nil {
		return rec, 0, err
	}
	if rec.State == health.StateRemoved {
		// A retried call gets the answer the first one got.
		if outcome, ok := d.previousOutcome(ctx, accountID); ok {
			return rec, outcome, nil
		}
	}
	if err := deletable(rec, force); err != nil {
		return rec, 0, err
	}
	if dryRun {
		return rec, ahv1.DeletionOutcome_DELETION_OUTCOME_WOULD_DELETE, nil
	}
	if d.provider == nil {
		return rec, 0, withReason(codes.FailedPrecondition, ReasonProviderNotSet,
			"the provider API is not configured: start the server with --argyle-api-key-id and --argyle-api-key-secret")
	}
	type result struct {
		rec     health.Record
		outcome ahv1.DeletionOutcome
	}
	// The shared call must not die with the first caller's context: the
	// others, and the audit entry, depend on it.
	v, err, _ := d.inflight.Do(accountID, func() (any, error) {
		rec, outcome, err := d.deleteAtProvider(context.WithoutCancel(ctx), rec, force, actor)
		return result{rec, outcome}, err
	})
	r, _ := v.(result)
	return r.rec, r.outcome, err
}

// deleteAtProvider sends the DELETE and records the removal it causes.
func (d *deleter) deleteAtProvider(ctx context.Context, rec health.Record, force bool, actor string) (health.Record, ahv1.DeletionOutcome, error) {
	// Re-read: a caller that waited for an earlier flight may find the
	// account already removed by it.
	if cur, err := d.store.GetHealth(ctx, rec.AccountID); err == nil && cur.State == health.StateRemoved {
		if outcome, ok := d.previousOutcome(ctx, rec.AccountID); ok {
			return cur, outcome, nil
		}
	}
	outcome := ahv1.DeletionOutcome_DELETION_OUTCOME_DELETED
	err := d.provider.DeleteAccount(ctx, rec.AccountID)
	switch {
	case errors.Is(err, provider.ErrNotFound):
		outcome = ahv1.DeletionOutcome_DELETION_OUTCOME_ALREADY_GONE
	case errors.Is(err, provider.ErrUnauthorized):
		d.logger.ErrorContext(ctx, "provider refused the API key", "account", rec.AccountID, "error", err)
		return rec, 0, withReason(codes.FailedPrecondition, ReasonProviderAuth,
			"the provider refused this service's API key (check --argyle-api-key-id/--argyle-api-key-secret and that the key is for the environment of --argyle-api-url); nothing was deleted")
	case err != nil:
		d.logger.WarnContext(ctx, "provider delete failed", "account", rec.AccountID, "error", err)
		return rec, 0, withReason(codes.Unavailable, ReasonProviderUnavailable,
			"the provider could not be reached or kept refusing (rate limit or outage); nothing changed, retry later: "+err.Error())
	}

	body, _ := json.Marshal(auditRecord{Action: deleteAction, Outcome: outcome.String(), Force: force, Actor: actor})
	_, err = d.commit(ctx, store.Delivery{
		Source: store.SourceAPI,
		Actor:  actor,
		Name:   deleteAction,
		Body:   body,
		Decoded: health.Delivery{
			Event:      health.EventAccountsRemoved,
			AccountID:  rec.AccountID,
			UserID:     rec.UserID,
			ReceivedAt: d.now().UTC(),
		},
	})
	if err != nil {
		// The provider deleted it; its accounts.removed webhook will
		// record the removal even though our audit entry failed.
		d.logger.ErrorContext(ctx, "account deleted at the provider but the audit entry was not stored", "account", rec.AccountID, "error", err)
		return rec, 0, withReason(codes.Unavailable, ReasonStoreUnavailable,
			"the provider deleted the account, but recording it failed; the provider's accounts.removed webhook will record it")
	}
	d.logger.InfoContext(ctx, "failed account deleted", "account", rec.AccountID, "outcome", outcome.String(), "actor", actor)
	after, err := d.store.GetHealth(ctx, rec.AccountID)
	if err != nil {
		return rec, 0, err
	}
	return after, outcome, nil
}

// previousOutcome finds the audit entry of an earlier deletion of the
// account by this service and returns what it answered.
func (d *deleter) previousOutcome(ctx context.Context, accountID string) (ahv1.DeletionOutcome, bool) {
	q := store.EntryQuery{AccountID: accountID, PageSize: store.MaxPageSize}
	for {
		page, err := d.store.ListEntries(ctx, q)
		if err != nil {
			return 0, false
		}
		for _, e := range page.Entries {
			var a auditRecord
			if e.Source == store.SourceAPI && json.Unmarshal(e.Body, &a) == nil && a.Action == deleteAction {
				return ahv1.DeletionOutcome(ahv1.DeletionOutcome_value[a.Outcome]), true
			}
		}
		if page.NextPageToken == "" {
			return 0, false
		}
		q.PageToken = page.NextPageToken
	}
}

// purgeCandidates lists failed accounts that never connected and have had
// no delivery since cutoff, oldest activity first is not needed: the
// provider deletes in any order.
func (d *deleter) purgeCandidates(ctx context.Context, cutoff time.Time, limit int) ([]health.Record, error) {
	var out []health.Record
	q := store.HealthQuery{States: []health.State{health.StateAuthFailed}, PageSize: store.MaxPageSize}
	for {
		page, err := d.store.ListHealth(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Records {
			if !r.EverConnected && r.LastEventAt.Before(cutoff) {
				out = append(out, r)
				if limit > 0 && len(out) == limit {
					return out, nil
				}
			}
		}
		if page.NextPageToken == "" {
			return out, nil
		}
		q.PageToken = page.NextPageToken
	}
}

// purgeResult reports one account of a purge. An account whose state
// changed since it was listed is skipped, not failed.
func purgeResult(rec health.Record, outcome ahv1.DeletionOutcome, err error) *ahv1.PurgeResult {
	r := &ahv1.PurgeResult{AccountId: text(rec.AccountID), UserId: text(rec.UserID), Outcome: outcome, LastEventAt: timeToProto(rec.LastEventAt)}
	if err != nil {
		st := status.Convert(err)
		r.Message = text(st.Message())
		r.Outcome = ahv1.DeletionOutcome_DELETION_OUTCOME_FAILED
		if reasonOf(st) == ReasonNotDeletable {
			r.Outcome = ahv1.DeletionOutcome_DELETION_OUTCOME_SKIPPED
		}
	}
	return r
}

// reasonOf returns the ErrorInfo reason of a status, if any.
func reasonOf(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// DeleteFailedAccount implements the RPC; see its doc in the proto.
func (s *AccountHealthService) DeleteFailedAccount(ctx context.Context, req *ahv1.DeleteFailedAccountRequest) (*ahv1.DeleteFailedAccountResponse, error) {
	if err := checkID("account_id", req.GetAccountId(), true); err != nil {
		return nil, err
	}
	rec, outcome, err := s.deleter.delete(ctx, req.GetAccountId(), req.GetForce(), req.GetDryRun(), callerName(ctx))
	if err != nil {
		return nil, s.accountError(ctx, req.GetAccountId(), err)
	}
	return &ahv1.DeleteFailedAccountResponse{AccountHealth: s.recordToProto(ctx, rec), Outcome: outcome}, nil
}

// minPurgeAge keeps a purge from racing a user who is still trying to log in.
const minPurgeAge = time.Minute

// PurgeFailedAccounts implements the RPC; see its doc in the proto.
func (s *AccountHealthService) PurgeFailedAccounts(req *ahv1.PurgeFailedAccountsRequest, stream ahv1.AccountHealthService_PurgeFailedAccountsServer) error {
	ctx := stream.Context()
	age := req.GetOlderThan().AsDuration()
	if req.GetOlderThan() == nil || req.GetOlderThan().CheckValid() != nil || age < minPurgeAge {
		return invalidArgument("older_than", "is required and must be at least 1m (e.g. \"720h\" over REST, 30 days)")
	}
	if req.GetLimit() < 0 {
		return invalidArgument("limit", "must not be negative (0 means no limit)")
	}
	candidates, err := s.deleter.purgeCandidates(ctx, s.deleter.now().Add(-age), int(req.GetLimit()))
	if err != nil {
		return toStatus(ctx, s.logger, err)
	}
	actor := callerName(ctx)
	for i, rec := range candidates {
		_, outcome, err := s.deleter.delete(ctx, rec.AccountID, false, req.GetDryRun(), actor)
		if r := reasonOf(status.Convert(err)); r == ReasonProviderAuth || r == ReasonProviderNotSet {
			return err // every other account would fail the same way
		}
		if ctx.Err() != nil {
			return toStatus(ctx, s.logger, ctx.Err())
		}
		msg := &ahv1.PurgeFailedAccountsResponse{Result: purgeResult(rec, outcome, err), Processed: int32(i + 1), Total: int32(len(candidates))}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
	return nil
}
