package providerfake

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/accounthealth/accounthealth/server/provider/accountobject"
)

// ChangeOption adjusts a scripted change (Fail, Disconnect, Connect,
// Remove): which of its webhooks are delivered.
type ChangeOption func(*changeOptions)

type changeOptions struct {
	dropAll bool
	drop    []string
}

// Silently makes the change at the provider and delivers none of its
// webhooks, as when every delivery is lost: only fetching or listing the
// account shows it.
func Silently() ChangeOption {
	return func(o *changeOptions) { o.dropAll = true }
}

// Dropping loses the named events of the change (e.g. the accounts.updated
// of a Fail) and delivers the others.
func Dropping(events ...string) ChangeOption {
	return func(o *changeOptions) { o.drop = append(o.drop, events...) }
}

// split parts a change's events into those delivered and those lost.
func split(opts []ChangeOption, events []string) (sent, dropped []string) {
	var o changeOptions
	for _, opt := range opts {
		opt(&o)
	}
	for _, ev := range events {
		if o.dropAll || slices.Contains(o.drop, ev) {
			dropped = append(dropped, ev)
		} else {
			sent = append(sent, ev)
		}
	}
	return sent, dropped
}

// Fail records a failed login, as when the user mistypes credentials or
// MFA in Link: connection error with code (default invalid_credentials),
// then accounts.failed and accounts.updated.
func (f *Fake) Fail(id, code string, opts ...ChangeOption) error {
	return f.change(id, opts, func(a *AccountSeed, now time.Time) { setError(a, now, code, "invalid_credentials") },
		"accounts.failed", "accounts.updated")
}

// Disconnect records the payroll system ending the session: connection
// error with code (default auth_required), then only accounts.updated, as
// the provider sends no accounts.failed for it.
func (f *Fake) Disconnect(id, code string, opts ...ChangeOption) error {
	return f.change(id, opts, func(a *AccountSeed, now time.Time) { setError(a, now, code, "auth_required") },
		"accounts.updated")
}

// Connect records a successful (re)authentication and the scan after it,
// which syncs every dataset, then accounts.connected and accounts.updated.
func (f *Fake) Connect(id string, opts ...ChangeOption) error {
	return f.change(id, opts, func(a *AccountSeed, now time.Time) {
		a.Status, a.ErrorCode, a.ErrorMessage = "connected", "", ""
		a.ConnectionUpdatedAt, a.ScannedAt, a.FailedDatasets = now, now, nil
	}, "accounts.connected", "accounts.updated")
}

// ErrNotConnected: the account's connection is not connected, and the
// provider scans only connected accounts (an error pauses refreshes).
var ErrNotConnected = errors.New("providerfake: account not connected")

// ScanResult is what a periodic scan finds. Its JSON form is the body of
// POST /_fake/accounts/{id}/scan.
type ScanResult struct {
	// FailedDatasets names the datasets of availability that fail to sync
	// at this scan (sync_failed); the others sync.
	FailedDatasets []string `json:"failed_datasets"`
	// OngoingRefresh, when not empty, is ongoing_refresh.status from the
	// scan on; empty keeps it.
	OngoingRefresh string `json:"ongoing_refresh"`
}

// Scan plays a periodic scan of a connected account, as the provider runs
// every few hours: accounts.updated with every dataset in_progress, then
// accounts.updated with scanned_at at the fake's clock, r's failed
// datasets sync_failed, the others synced, and r's ongoing refresh.
// Unknown dataset names are refused (a *FieldError).
func (f *Fake) Scan(id string, r ScanResult, opts ...ChangeOption) error {
	if err := checkDatasets(r.FailedDatasets); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.accounts[id]
	switch {
	case a == nil:
		return fmt.Errorf("%w: %s", ErrUnknownAccount, id)
	case a.Status != "connected":
		return fmt.Errorf("%w: %s is %s", ErrNotConnected, id, a.Status)
	}
	now := f.changeTime(a.AccountSeed)
	// Both the datasets failed before and those failing now are scanned.
	scanning := a.AccountSeed
	scanning.UpdatedAt = now
	scanning.FailedDatasets = slices.Concat(a.FailedDatasets, r.FailedDatasets)
	started := renderScanning(scanning, now)
	// The scan ends right after it starts: updated_at advances, so the
	// service keeps the final object as the newer one.
	a.ScannedAt, a.UpdatedAt = now, now.Add(time.Microsecond)
	a.FailedDatasets = slices.Clone(r.FailedDatasets)
	a.OngoingRefresh = cmp.Or(r.OngoingRefresh, a.OngoingRefresh)
	sent, dropped := split(opts, []string{"accounts.updated", "accounts.updated"})
	f.log.Info("account scanned", "account", id, "failed_datasets", a.FailedDatasets, "ongoing_refresh", a.OngoingRefresh,
		"events", sent, "dropped", dropped)
	if len(sent) > 0 {
		// One event name, dropped or sent as one.
		f.send(a.AccountSeed, []update{{"accounts.updated", started}, {"accounts.updated", render(a.AccountSeed)}})
	}
	return nil
}

// Remove deletes the account as when the user revokes access in Link, and
// sends accounts.removed.
func (f *Fake) Remove(id string, opts ...ChangeOption) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.remove(id, opts)
}

func setError(a *AccountSeed, now time.Time, code, fallback string) {
	if code == "" {
		code = fallback
	}
	a.Status, a.ErrorCode, a.ErrorMessage = "error", code, errorMessage(code)
	a.ConnectionUpdatedAt = now
}

// change applies edit to a live account at its changeTime, then sends the
// events opts keep, in order.
func (f *Fake) change(id string, opts []ChangeOption, edit func(a *AccountSeed, now time.Time), events ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.accounts[id]
	if a == nil {
		return fmt.Errorf("%w: %s", ErrUnknownAccount, id)
	}
	now := f.changeTime(a.AccountSeed)
	edit(&a.AccountSeed, now)
	a.UpdatedAt = now
	sent, dropped := split(opts, events)
	f.log.Info("account changed", "account", id, "status", a.Status, "error_code", a.ErrorCode, "events", sent, "dropped", dropped)
	f.notify(a.AccountSeed, sent...)
	return nil
}

// changeTime is when a change of a happens: now, or just after its last
// change, so that updated_at always advances.
func (f *Fake) changeTime(a AccountSeed) time.Time {
	now := accountobject.Truncate(f.opts.Clock())
	if !now.After(a.UpdatedAt) {
		now = a.UpdatedAt.Add(time.Microsecond)
	}
	return now
}

// remove deletes a live account and sends accounts.removed unless opts
// drop it. f.mu is held.
func (f *Fake) remove(id string, opts []ChangeOption) error {
	a := f.accounts[id]
	if a == nil {
		return fmt.Errorf("%w: %s", ErrUnknownAccount, id)
	}
	delete(f.accounts, id)
	f.removed[id] = true
	sent, dropped := split(opts, []string{"accounts.removed"})
	f.log.Info("account removed", "account", id, "events", sent, "dropped", dropped)
	f.notify(a.AccountSeed, sent...)
	return nil
}
