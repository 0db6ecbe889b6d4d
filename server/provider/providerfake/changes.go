package providerfake

import (
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
// then accounts.connected and accounts.updated.
func (f *Fake) Connect(id string, opts ...ChangeOption) error {
	return f.change(id, opts, func(a *AccountSeed, now time.Time) {
		a.Status, a.ErrorCode, a.ErrorMessage = "connected", "", ""
		a.ConnectionUpdatedAt, a.ScannedAt = now, now
	}, "accounts.connected", "accounts.updated")
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

// change applies edit to a live account at a time later than its last
// change, so that updated_at always advances, then sends the events opts
// keep, in order.
func (f *Fake) change(id string, opts []ChangeOption, edit func(a *AccountSeed, now time.Time), events ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.accounts[id]
	if a == nil {
		return fmt.Errorf("%w: %s", ErrUnknownAccount, id)
	}
	now := accountobject.Truncate(f.opts.Clock())
	if !now.After(a.UpdatedAt) {
		now = a.UpdatedAt.Add(time.Microsecond)
	}
	edit(&a.AccountSeed, now)
	a.UpdatedAt = now
	sent, dropped := split(opts, events)
	f.log.Info("account changed", "account", id, "status", a.Status, "error_code", a.ErrorCode, "events", sent, "dropped", dropped)
	f.notify(a.AccountSeed, sent...)
	return nil
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
