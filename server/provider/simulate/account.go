package simulate

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/provider/accountobject"
)

// Event names of the accounts.* family (docs/provider.md#events).
const (
	EventAdded     = "accounts.added"
	EventConnected = "accounts.connected"
	EventFailed    = "accounts.failed"
	EventUpdated   = "accounts.updated"
	EventRemoved   = "accounts.removed"
)

// Connection statuses of the account object.
const (
	statusConnecting = "connecting"
	statusConnected  = "connected"
	statusError      = "error"
)

// Statuses of the account object's ongoing_refresh and of its
// availability.<dataset>.
const (
	refreshIdle       = "idle"
	refreshEnabled    = "enabled"
	refreshDisabled   = "disabled"
	datasetInProgress = "in_progress"
	datasetSynced     = "synced"
	datasetSyncFailed = "sync_failed"
)

// Names of the datasets the simulated employer offers, as availability
// names them: what Scan takes.
const (
	DatasetPaystubs   = "paystubs"
	DatasetIdentities = "identities"
)

// Gaps between an account's changes, before jitter. They follow what the
// recorded deliveries show: a login takes seconds, the first scan tens of
// seconds, and periodic scans come every few hours.
const (
	loginGap   = 4 * time.Second
	scanGap    = 25 * time.Second
	periodGap  = 4 * time.Hour
	objectGap  = 600 * time.Millisecond // from a change to the object's updated_at
	recoverGap = 30 * time.Minute
	relinkGap  = 2 * time.Minute // a user coming back to Link to log in again
)

// Delivery is one webhook delivery, ready to send.
type Delivery struct {
	Scenario string `json:"scenario,omitempty"` // the scenario that produced it, if any
	Event    string `json:"event"`
	Account  string `json:"account"`
	User     string `json:"user"`
	// Body is the exact bytes to send and sign.
	Body []byte `json:"-"`
	// Duplicate marks the second, byte-identical send of a delivery.
	Duplicate bool `json:"duplicate,omitempty"`
	// Reordered marks a delivery swapped with its neighbour of the same
	// account.
	Reordered bool `json:"reordered,omitempty"`
}

// Account is one payroll account as the provider holds it. Each method is a
// change of the account and returns the deliveries the provider sends for
// it, in order, with the object's timestamps moved forward.
type Account struct {
	g       *Generator
	now     time.Time // the account's own clock
	obj     accountobject.Account
	added   bool
	removed bool
}

func newAccount(g *Generator, id, user string, created time.Time) *Account {
	return &Account{g: g, now: created, obj: accountobject.Account{
		ID:        id,
		User:      user,
		Employers: []string{"Whole Goods Market"},
		Item:      ItemOf(id),
		Source:    "adp",
		CreatedAt: accountobject.Time(created),
	}}
}

// Items is how many payroll platforms (items) the simulated accounts are
// spread over: as in production, an account's failures are its own, not
// its platform's, unless a scenario makes an item fail.
const Items = 1000

// ItemOf is the item of the simulated account id: one of Items, fixed by
// the id, so that every run puts an account on the same one.
func ItemOf(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("item_%09d", 41000+h.Sum32()%Items)
}

// Add: the user submitted credentials in Link; the provider starts
// connecting. Emits accounts.added.
func (a *Account) Add() []Delivery {
	a.added = true
	created := time.Time(a.obj.CreatedAt)
	a.obj.DirectDepositSwitch = accountobject.Connection{Status: "idle", UpdatedAt: accountobject.Time(created.Add(a.g.jitter(time.Second)))}
	a.obj.OngoingRefresh.Status = refreshIdle
	a.setConnection(statusConnecting, "")
	return a.emit(EventAdded)
}

// Connect: a login or re-login succeeded. Emits accounts.connected, then
// accounts.updated once the scan it starts is done (scanned_at set,
// datasets synced), as the provider does.
func (a *Account) Connect() []Delivery {
	a.relink()
	a.setConnection(statusConnected, "")
	a.obj.OngoingRefresh.Status = refreshEnabled
	// A scan starts at once: the datasets are in progress.
	a.setDatasets(datasetInProgress, a.obj.Connection.UpdatedAt)
	connected := a.emit(EventConnected)
	return append(connected, a.scan(scanGap)...)
}

// Fail: a login or re-login attempt failed with code (invalid_credentials,
// invalid_mfa, mfa_timeout, ...). Emits accounts.failed, carrying the code
// in data as well, then accounts.updated with the error connection.
func (a *Account) Fail(code string) []Delivery {
	a.relink()
	a.setConnection(statusError, code)
	return a.emit(EventFailed, EventUpdated)
}

// Disconnect: the connection went into error without a login attempt:
// the session was logged out (auth_required), the password expired
// (expired_credentials), or the platform or provider is down
// (platform_unavailable, system_error, ...). The provider sends only
// accounts.updated for that.
func (a *Account) Disconnect(code string) []Delivery {
	a.wait(periodGap)
	a.setConnection(statusError, code)
	return a.emit(EventUpdated)
}

// Rescan: a periodic scan of a connected account, told by its end only.
// Emits accounts.updated.
func (a *Account) Rescan() []Delivery {
	return a.scan(periodGap)
}

// Scan: a periodic scan of a connected account told in full, as the
// provider sends it: the datasets go in_progress (accounts.updated), then
// a scan's time later they are synced, but for those named in failed,
// which are sync_failed (accounts.updated, scanned_at moved forward).
func (a *Account) Scan(failed ...string) []Delivery {
	a.wait(periodGap)
	a.setDatasets(datasetInProgress, accountobject.Time(a.now))
	a.touch()
	started := a.emit(EventUpdated)
	return append(started, a.scan(scanGap, failed...)...)
}

// DisableRefresh: the provider stops refreshing the account on its own
// (ongoing_refresh disabled), some hours after its last change; the
// connection stays as it is. Emits accounts.updated.
func (a *Account) DisableRefresh() []Delivery {
	a.wait(periodGap)
	a.obj.OngoingRefresh.Status = refreshDisabled
	a.touch()
	return a.emit(EventUpdated)
}

// Recover: the platform or provider is back and the next scan succeeds.
// No login happens, so only accounts.updated comes.
func (a *Account) Recover() []Delivery {
	a.wait(recoverGap)
	a.setConnection(statusConnected, "")
	return a.scan(scanGap)
}

// ItemUpdated: the provider reports the health of the account's payroll
// platform. Emits items.updated (it names no account).
func (a *Account) ItemUpdated(status, details string) Delivery {
	env := map[string]any{"event": health.EventItemsUpdated, "name": a.g.name, "data": map[string]any{
		"item": a.obj.Item, "name": "Platform " + a.obj.Item, "status": status, "status_details": details,
		"mapping_status": "verified", "features": map[string]any{},
	}}
	body, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		panic("simulate: encoding a delivery: " + err.Error()) // maps of strings only
	}
	return Delivery{Event: health.EventItemsUpdated, Body: body}
}

// Remove: the user revoked access or the account was deleted. Emits
// accounts.removed; the account is gone for good.
func (a *Account) Remove() []Delivery {
	a.wait(periodGap)
	a.removed = true
	a.touch()
	return a.emit(EventRemoved)
}

// wait moves the account's clock about d forward.
func (a *Account) wait(d time.Duration) {
	a.now = a.now.Add(d + a.g.jitter(d/4))
}

// relink is the wait before a login that is not the first: the user comes
// back to Link.
func (a *Account) relink() {
	if a.obj.Connection.Status != statusConnecting {
		a.wait(relinkGap)
	}
}

// setConnection changes the connection a login's time later.
func (a *Account) setConnection(status, code string) {
	a.wait(loginGap)
	a.obj.Connection = accountobject.Connection{
		Status:       status,
		ErrorCode:    accountobject.NullString(code),
		ErrorMessage: accountobject.NullString(errorMessage(code)),
		UpdatedAt:    accountobject.Time(a.now),
	}
	a.touch()
}

// scan finishes a scan after about gap: the datasets are synced as of
// then, but for those named in failed, which are sync_failed.
func (a *Account) scan(gap time.Duration, failed ...string) []Delivery {
	a.wait(gap)
	at := accountobject.Time(a.now)
	a.obj.ScannedAt = at
	a.setDatasets(datasetSynced, at)
	for _, name := range failed {
		// A failed sync retrieved nothing new: the dataset keeps its counts.
		a.setDataset(name, datasetSyncFailed, at)
	}
	if p := a.obj.Availability.Paystubs; p.Status == datasetSynced {
		// A year of biweekly pay, up to the last payday before the scan:
		// whole days, midnight UTC, as the provider bounds paystubs.
		to := a.now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -3)
		p.AvailableCount = 26
		p.AvailableFrom, p.AvailableTo = accountobject.TimeSeconds(to.AddDate(-1, 0, 1)), accountobject.TimeSeconds(to)
	}
	a.touch()
	return a.emit(EventUpdated)
}

// Datasets the simulated employer offers; the other datasets stay null, as
// the provider sends them.
var offeredDatasets = []string{DatasetPaystubs, DatasetIdentities}

// setDatasets gives every offered dataset status as of at.
func (a *Account) setDatasets(status string, at accountobject.Time) {
	for _, name := range offeredDatasets {
		a.setDataset(name, status, at)
	}
}

// setDataset gives the dataset name status as of at, keeping what it
// counts. name must be one of offeredDatasets.
func (a *Account) setDataset(name, status string, at accountobject.Time) {
	av := &a.obj.Availability
	switch name {
	case DatasetPaystubs:
		if av.Paystubs == nil {
			av.Paystubs = &accountobject.CountedDataset{}
		}
		av.Paystubs.Status, av.Paystubs.UpdatedAt = status, at
	case DatasetIdentities:
		av.Identities = &accountobject.Dataset{Status: status, UpdatedAt: at}
	default:
		panic("simulate: the simulated employer offers no dataset " + name) // a scenario's mistake
	}
}

// touch moves updated_at shortly after the change just made.
func (a *Account) touch() {
	a.now = a.now.Add(a.g.jitter(objectGap))
	a.obj.UpdatedAt = accountobject.Time(a.now)
}

// emit builds one delivery per event from the account as it is now.
func (a *Account) emit(events ...string) []Delivery {
	out := make([]Delivery, 0, len(events))
	for _, ev := range events {
		env := envelope{Event: ev, Name: a.g.name, Data: envelopeData{Account: a.obj.ID, User: a.obj.User}}
		if ev == EventFailed {
			// Fixtures and v1-era docs carry the failure in data too.
			env.Data.ErrorCode, env.Data.ErrorMessage = a.obj.Connection.ErrorCode, a.obj.Connection.ErrorMessage
		}
		if !a.g.lean {
			env.Data.Resource = &a.obj
		}
		// The provider sends indented JSON without a final newline.
		body, err := json.MarshalIndent(env, "", "  ")
		if err != nil {
			// Fixed types without maps, channels or failing marshalers.
			panic("simulate: encoding a delivery: " + err.Error())
		}
		out = append(out, Delivery{Event: ev, Account: a.obj.ID, User: a.obj.User, Body: body})
	}
	return out
}

// errorMessage is the provider's wording for the codes the scenarios use.
func errorMessage(code string) string {
	switch code {
	case "":
		return ""
	case "invalid_credentials":
		return "The credentials provided by the user are incorrect."
	case "invalid_mfa":
		return "This user did not provide the correct multi-factor authentication response."
	case "mfa_timeout":
		return "The multi-factor authentication request timed out."
	case "auth_required":
		return "The payroll system logged the session out; the user must reconnect."
	case "expired_credentials":
		return "The payroll system requires the user to reset their password."
	case "platform_unavailable":
		return "The payroll platform is currently unavailable."
	case "platform_temporarily_unavailable":
		return "The payroll platform is temporarily unavailable."
	case "system_error":
		return "The provider encountered an internal error."
	}
	return "The connection failed with " + code + "."
}

// The envelope below follows the recorded deliveries field by field, in
// the provider's order, as accountobject does for the resource, so bodies
// look like the real ones byte for byte.

type envelope struct {
	Event string       `json:"event"`
	Name  string       `json:"name"`
	Data  envelopeData `json:"data"`
}

type envelopeData struct {
	Account      string                   `json:"account"`
	User         string                   `json:"user"`
	ErrorCode    accountobject.NullString `json:"error_code,omitempty"`
	ErrorMessage accountobject.NullString `json:"error_message,omitempty"`
	Resource     *accountobject.Account   `json:"resource,omitempty"`
}
