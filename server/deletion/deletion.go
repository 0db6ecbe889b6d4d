// Package deletion deletes failed accounts at the provider: which accounts
// may be deleted, one DELETE per account however many callers ask at once,
// the audit entry that records a deletion (and answers its retries), and
// which accounts a purge selects.
package deletion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/store"
)

// Errors of a deletion. Each wraps a message saying what to do; the API
// maps them to status codes and reasons.
var (
	// ErrNotDeletable: the account is not one this deletion applies to.
	ErrNotDeletable = errors.New("account not deletable")
	// ErrProviderAuth: the provider refused the API key; every other
	// deletion would fail the same way.
	ErrProviderAuth = errors.New("the provider refused this service's API key")
	// ErrProviderUnavailable: the provider could not be reached or kept
	// refusing; nothing changed.
	ErrProviderUnavailable = errors.New("the provider could not be reached or kept refusing (rate limit or outage)")
	// ErrNotRecorded: the provider deleted the account but its audit entry
	// could not be stored.
	ErrNotRecorded = errors.New("the provider deleted the account, but recording it failed")
)

// Outcome is what a deletion of one account did.
type Outcome int

const (
	// WouldDelete: a dry run found the account deletable.
	WouldDelete Outcome = iota + 1
	// Deleted: the provider deleted the account.
	Deleted
	// AlreadyGone: the provider no longer had the account.
	AlreadyGone
	// Failed: a purge could not delete the account.
	Failed
	// Skipped: a purge found the account no longer deletable.
	Skipped
)

// outcomeNames are the outcomes as audit entries store them; they are the
// API enum's names, which audit entries have used since the first release.
var outcomeNames = map[Outcome]string{
	WouldDelete: "DELETION_OUTCOME_WOULD_DELETE",
	Deleted:     "DELETION_OUTCOME_DELETED",
	AlreadyGone: "DELETION_OUTCOME_ALREADY_GONE",
	Failed:      "DELETION_OUTCOME_FAILED",
	Skipped:     "DELETION_OUTCOME_SKIPPED",
}

func (o Outcome) String() string {
	if name, ok := outcomeNames[o]; ok {
		return name
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

func parseOutcome(name string) (Outcome, bool) {
	for o, n := range outcomeNames {
		if n == name {
			return o, true
		}
	}
	return 0, false
}

// AccountDeleter deletes an account at the provider; *provider.Client is
// one. Errors wrap the provider package's sentinels.
type AccountDeleter interface {
	DeleteAccount(ctx context.Context, accountID string) error
}

// Commit stores a delivery of our own; normally the intake batcher's Submit.
type Commit func(context.Context, store.Delivery) (store.Result, error)

// Action names the audit entry a deletion leaves in the timeline.
const Action = "delete_failed_account"

// auditRecord is the body of the audit entry: what was asked and answered.
type auditRecord struct {
	Action  string `json:"action"`
	Outcome string `json:"outcome"`
	Force   bool   `json:"force"`
	Actor   string `json:"actor"`
}

// Deleter deletes failed accounts at the provider and records the removal.
type Deleter struct {
	store    store.Store
	provider AccountDeleter // nil when no API key is configured
	commit   Commit
	logger   *slog.Logger
	now      func() time.Time
	// inflight makes concurrent deletions of one account share one DELETE
	// and one result.
	inflight singleflight.Group
}

// New returns a Deleter; p may be nil, and then only dry runs succeed.
func New(s store.Store, p AccountDeleter, commit Commit, logger *slog.Logger) *Deleter {
	return &Deleter{store: s, provider: p, commit: commit, logger: logger, now: time.Now}
}

// Request is one deletion.
type Request struct {
	AccountID string
	// Force deletes an account that once connected and failed to
	// re-authenticate.
	Force bool
	// DryRun checks the account and deletes nothing.
	DryRun bool
	// Actor names the caller in the audit entry.
	Actor string
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

// notConfigured is provider.ErrNotConfigured with what to do.
func notConfigured() error {
	return fmt.Errorf("%w: start the server with --argyle-api-key-id and --argyle-api-key-secret", provider.ErrNotConfigured)
}

func notDeletable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotDeletable, fmt.Sprintf(format, args...))
}

// Delete runs one deletion and returns the account's health after it. A
// retry of a deletion that happened gets the first one's outcome.
func (d *Deleter) Delete(ctx context.Context, req Request) (health.Record, Outcome, error) {
	rec, err := d.store.GetHealth(ctx, req.AccountID)
	if err != nil {
		return rec, 0, err
	}
	if rec.State == health.StateRemoved {
		if outcome, ok := d.previousOutcome(ctx, req.AccountID); ok {
			return rec, outcome, nil
		}
	}
	if err := deletable(rec, req.Force); err != nil {
		return rec, 0, err
	}
	if req.DryRun {
		return rec, WouldDelete, nil
	}
	if d.provider == nil {
		return rec, 0, notConfigured()
	}
	type result struct {
		rec     health.Record
		outcome Outcome
	}
	// The shared call must not die with the first caller's context: the
	// others, and the audit entry, depend on it.
	v, err, _ := d.inflight.Do(req.AccountID, func() (any, error) {
		rec, outcome, err := d.deleteAtProvider(context.WithoutCancel(ctx), rec, req)
		return result{rec, outcome}, err
	})
	r, _ := v.(result)
	return r.rec, r.outcome, err
}

// deleteAtProvider sends the DELETE and records the removal it causes.
func (d *Deleter) deleteAtProvider(ctx context.Context, rec health.Record, req Request) (health.Record, Outcome, error) {
	// Re-read: a caller that waited for an earlier flight may find the
	// account already removed by it.
	if cur, err := d.store.GetHealth(ctx, rec.AccountID); err == nil && cur.State == health.StateRemoved {
		if outcome, ok := d.previousOutcome(ctx, rec.AccountID); ok {
			return cur, outcome, nil
		}
	}
	outcome := Deleted
	err := d.provider.DeleteAccount(ctx, rec.AccountID)
	switch {
	case errors.Is(err, provider.ErrNotFound):
		outcome = AlreadyGone
	case errors.Is(err, provider.ErrUnauthorized):
		d.logger.ErrorContext(ctx, "provider refused the API key", "account", rec.AccountID, "error", err)
		return rec, 0, fmt.Errorf("%w: check --argyle-api-key-id/--argyle-api-key-secret and that the key is for the environment of --argyle-api-url; nothing was deleted", ErrProviderAuth)
	case err != nil:
		d.logger.WarnContext(ctx, "provider delete failed", "account", rec.AccountID, "error", err)
		return rec, 0, fmt.Errorf("%w; nothing changed, retry later: %v", ErrProviderUnavailable, err)
	}
	if err := d.record(ctx, rec, req, outcome); err != nil {
		// The provider deleted it; its accounts.removed webhook will
		// record the removal even though our audit entry failed.
		d.logger.ErrorContext(ctx, "account deleted at the provider but the audit entry was not stored", "account", rec.AccountID, "error", err)
		return rec, 0, fmt.Errorf("%w; the provider's accounts.removed webhook will record it", ErrNotRecorded)
	}
	d.logger.InfoContext(ctx, "failed account deleted", "account", rec.AccountID, "outcome", outcome.String(), "actor", req.Actor)
	after, err := d.store.GetHealth(ctx, rec.AccountID)
	if err != nil {
		return rec, 0, err
	}
	return after, outcome, nil
}

// record stores the audit entry, which also marks the account removed.
func (d *Deleter) record(ctx context.Context, rec health.Record, req Request, outcome Outcome) error {
	body, err := json.Marshal(auditRecord{Action: Action, Outcome: outcome.String(), Force: req.Force, Actor: req.Actor})
	if err != nil {
		return err
	}
	_, err = d.commit(ctx, store.Delivery{
		Source: store.SourceAPI,
		Actor:  req.Actor,
		Name:   Action,
		Body:   body,
		Decoded: health.Delivery{
			Event:      health.EventAccountsRemoved,
			AccountID:  rec.AccountID,
			UserID:     rec.UserID,
			ReceivedAt: d.now().UTC(),
		},
	})
	return err
}

// previousOutcome finds the audit entry of an earlier deletion of the
// account by this service and returns what it answered.
func (d *Deleter) previousOutcome(ctx context.Context, accountID string) (Outcome, bool) {
	q := store.EntryQuery{AccountID: accountID, PageSize: store.MaxPageSize}
	for {
		page, err := d.store.ListEntries(ctx, q)
		if err != nil {
			return 0, false
		}
		for _, e := range page.Entries {
			var a auditRecord
			if e.Source == store.SourceAPI && json.Unmarshal(e.Body, &a) == nil && a.Action == Action {
				return parseOutcome(a.Outcome)
			}
		}
		if page.NextPageToken == "" {
			return 0, false
		}
		q.PageToken = page.NextPageToken
	}
}
