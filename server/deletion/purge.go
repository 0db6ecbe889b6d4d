package deletion

import (
	"context"
	"errors"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/store"
)

// MinPurgeAge keeps a purge from racing a user who is still trying to log in.
const MinPurgeAge = time.Minute

// PurgeRequest selects the accounts of a purge: failed logins that never
// connected and have had no delivery for OlderThan.
type PurgeRequest struct {
	OlderThan time.Duration // at least MinPurgeAge
	Limit     int           // 0: no limit
	DryRun    bool
	Actor     string
}

// PurgeResult is the outcome for one account of a purge.
type PurgeResult struct {
	Account health.Record // as listed
	Outcome Outcome
	// Err says why, when Outcome is Failed or Skipped.
	Err error
	// Processed counts the accounts done so far, this one included, of
	// Total selected.
	Processed, Total int
}

// Purge deletes the accounts req selects, handing each result to report
// as it comes (or, when it selects none, one result with Total 0 and no
// account, so that the caller hears that nothing matched); an error from
// report ends the purge with it. It stops early
// when the provider is not configured or refuses the API key, since every
// other account would fail the same way.
func (d *Deleter) Purge(ctx context.Context, req PurgeRequest, report func(PurgeResult) error) error {
	candidates, err := d.purgeCandidates(ctx, d.now().Add(-req.OlderThan), req.Limit)
	if err != nil {
		return err
	}
	if len(candidates) == 0 {
		return report(PurgeResult{})
	}
	for i, rec := range candidates {
		_, outcome, err := d.Delete(ctx, Request{AccountID: rec.AccountID, DryRun: req.DryRun, Actor: req.Actor})
		if errors.Is(err, ErrProviderAuth) || errors.Is(err, provider.ErrNotConfigured) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r := PurgeResult{Account: rec, Outcome: outcome, Err: err, Processed: i + 1, Total: len(candidates)}
		switch {
		case errors.Is(err, ErrNotDeletable):
			// Its state changed since it was listed.
			r.Outcome = Skipped
		case err != nil:
			r.Outcome = Failed
		}
		if err := report(r); err != nil {
			return err
		}
	}
	return nil
}

// purgeCandidates lists failed accounts that never connected and have had
// no delivery since cutoff, in the store's order: the provider deletes in
// any order.
func (d *Deleter) purgeCandidates(ctx context.Context, cutoff time.Time, limit int) ([]health.Record, error) {
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
