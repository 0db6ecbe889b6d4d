// Package rebuild brings stored health up to the binary's rules: records are
// derived from the durable log, so when the rules change (health.RulesVersion
// goes up) every account's log is replayed through the current rules and
// the records rewritten, with one correction event for each account whose
// state or error code comes out different (see store.RunRebuild).
package rebuild

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/accounthealth/accounthealth/server/freshness"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/items"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// Decode turns a stored entry back into the delivery the health model saw
// when it was committed: a webhook's body through the webhook decoder, and
// an API action as the event it stands for (a provider refresh's body is the
// account object the provider answered, decoded like a delivery's resource;
// an item watcher's, the item's outage; the freshness sweeper's, its
// verdict).
func Decode(e store.Entry) (health.Delivery, error) {
	switch e.Source {
	case store.SourceWebhook:
		env, err := webhook.Decode(e.Body, e.ReceivedAt)
		return env.Delivery, err
	case store.SourceAPI:
		d := health.Delivery{Event: e.Event, AccountID: e.AccountID, UserID: e.UserID, ReceivedAt: e.ReceivedAt}
		switch e.Event {
		case health.EventItemOutageBegan, health.EventItemOutageEnded:
			o, err := items.DecodeOutage(e.Body)
			if err != nil {
				return health.Delivery{}, fmt.Errorf("entry %d: %w", e.Seq, err)
			}
			d.ItemOutage = &o
			return d, nil
		case health.EventAccountStale:
			v, err := freshness.DecodeStaleness(e.Body)
			if err != nil {
				return health.Delivery{}, fmt.Errorf("entry %d: %w", e.Seq, err)
			}
			d.Staleness = &v
			return d, nil
		case health.EventAccountsUpdated:
		default:
			return d, nil
		}
		body, err := json.Marshal(refreshEnvelope{Event: e.Event, Data: refreshData{Account: e.AccountID, User: e.UserID, Resource: e.Body}})
		if err != nil {
			return health.Delivery{}, fmt.Errorf("entry %d: the account object is not JSON: %w", e.Seq, err)
		}
		env, err := webhook.Decode(body, e.ReceivedAt)
		return env.Delivery, err
	}
	return health.Delivery{}, fmt.Errorf("entry %d: no delivery comes from source %q", e.Seq, e.Source)
}

// refreshEnvelope is the delivery a provider refresh stands for.
type refreshEnvelope struct {
	Event string      `json:"event"`
	Data  refreshData `json:"data"`
}

type refreshData struct {
	Account  string          `json:"account"`
	User     string          `json:"user"`
	Resource json.RawMessage `json:"resource"`
}

// Options tune Run.
type Options struct {
	// Force rebuilds even when the records follow the current rules.
	Force bool
	// Progress, when set, hears of every batch (and the end).
	Progress func(store.RebuildProgress)
	// LogEvery is how often progress is logged; 0 means 5 s.
	LogEvery time.Duration
}

// Run rebuilds the store's records when they were derived under older rules
// (or always, with Force), logging progress, and returns what it did.
func Run(ctx context.Context, st store.Store, logger *slog.Logger, o Options) (store.RebuildProgress, error) {
	der, err := st.Derivation(ctx)
	if err != nil {
		return store.RebuildProgress{}, err
	}
	if der.RulesVersion >= health.RulesVersion && der.RebuildVersion == 0 && !o.Force {
		return store.RebuildProgress{Skipped: true, Done: true}, nil
	}
	every := o.LogEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	start := time.Now()
	lastLog := start
	begun := false
	p, err := st.Rebuild(ctx, store.RebuildOptions{
		Decode: Decode,
		Force:  o.Force,
		Progress: func(p store.RebuildProgress) {
			if o.Progress != nil {
				o.Progress(p)
			}
			// An empty store (a new install) has nothing to tell.
			if !begun && p.Total > 0 {
				begun = true
				logger.Info("rebuilding health from the log", "from_rules_version", der.RulesVersion, "to_rules_version", health.RulesVersion,
					"accounts", p.Total, "resumed", p.Resumed)
			}
			if now := time.Now(); begun && !p.Done && now.Sub(lastLog) >= every {
				lastLog = now
				logger.Info("rebuild progress", progressAttrs(p, now.Sub(start))...)
			}
		},
	})
	switch {
	case err != nil:
		return p, err
	case p.Skipped:
		logger.Info("rebuild not needed: another process rebuilt the records meanwhile")
		return p, nil
	case !begun:
		return p, nil
	}
	logger.Info("rebuild done", progressAttrs(p, time.Since(start))...)
	if p.Undecodable > 0 {
		logger.Warn("rebuild left entries out: they no longer decode", "entries", p.Undecodable)
	}
	return p, nil
}

func progressAttrs(p store.RebuildProgress, elapsed time.Duration) []any {
	attrs := []any{"accounts", p.Accounts, "total", p.Total, "records_changed", p.Changed, "corrections", p.Corrections,
		"outcomes_changed", p.Outcomes, "elapsed", elapsed.Round(time.Millisecond)}
	if rate := Rate(p, elapsed); rate > 0 {
		attrs = append(attrs, "accounts_per_second", int(rate))
		if left := p.Total - p.Accounts; left > 0 {
			attrs = append(attrs, "eta", time.Duration(float64(left)/rate*float64(time.Second)).Round(time.Second))
		}
	}
	return attrs
}

// Rate is the accounts rebuilt per second so far.
func Rate(p store.RebuildProgress, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(p.Accounts) / elapsed.Seconds()
}
