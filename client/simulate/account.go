package simulate

import (
	"encoding/json"
	"time"
)

// Event names of the accounts.* family (DOMAIN.md §2).
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
	obj     accountObject
	added   bool
	removed bool
}

func newAccount(g *Generator, id, user string, created time.Time) *Account {
	return &Account{g: g, now: created, obj: accountObject{
		ID:        id,
		User:      user,
		Employers: []string{"Whole Goods Market"},
		Item:      "item_000041078",
		Source:    "adp",
		CreatedAt: stamp(created),
	}}
}

// Add: the user submitted credentials in Link; the provider starts
// connecting. Emits accounts.added.
func (a *Account) Add() []Delivery {
	a.added = true
	created := time.Time(a.obj.CreatedAt)
	a.obj.DirectDepositSwitch = connection{Status: "idle", UpdatedAt: stamp(created.Add(a.g.jitter(time.Second)))}
	a.obj.OngoingRefresh.Status = "idle"
	a.setConnection(statusConnecting, "")
	return a.emit(EventAdded)
}

// Connect: a login or re-login succeeded. Emits accounts.connected, then
// accounts.updated once the scan it starts is done (scanned_at set,
// datasets synced), as the provider does.
func (a *Account) Connect() []Delivery {
	a.relink()
	a.setConnection(statusConnected, "")
	a.obj.OngoingRefresh.Status = "enabled"
	// A scan starts at once: the datasets are in progress.
	at := a.obj.Connection.UpdatedAt
	if a.obj.Availability.Paystubs == nil {
		a.obj.Availability.Paystubs = &countedDataset{}
	}
	a.obj.Availability.Paystubs.Status, a.obj.Availability.Paystubs.UpdatedAt = "in_progress", at
	a.obj.Availability.Identities = &dataset{Status: "in_progress", UpdatedAt: at}
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

// Rescan: a periodic scan of a connected account. Emits accounts.updated.
func (a *Account) Rescan() []Delivery {
	return a.scan(periodGap)
}

// Recover: the platform or provider is back and the next scan succeeds.
// No login happens, so only accounts.updated comes.
func (a *Account) Recover() []Delivery {
	a.wait(recoverGap)
	a.setConnection(statusConnected, "")
	return a.scan(scanGap)
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
	a.obj.Connection = connection{
		Status:       status,
		ErrorCode:    text(code),
		ErrorMessage: text(errorMessage(code)),
		UpdatedAt:    stamp(a.now),
	}
	a.touch()
}

// scan finishes a scan after about gap: the datasets are synced as of then.
func (a *Account) scan(gap time.Duration) []Delivery {
	a.wait(gap)
	at := stamp(a.now)
	a.obj.ScannedAt = at
	// A year of biweekly pay, up to the last payday before the scan.
	to := a.now.Truncate(24*time.Hour).AddDate(0, 0, -3)
	a.obj.Availability.Paystubs = &countedDataset{
		Status: "synced", UpdatedAt: at, AvailableCount: 26,
		AvailableFrom: day(to.AddDate(-1, 0, 1)), AvailableTo: day(to),
	}
	a.obj.Availability.Identities = &dataset{Status: "synced", UpdatedAt: at}
	a.touch()
	return a.emit(EventUpdated)
}

// touch moves updated_at shortly after the change just made.
func (a *Account) touch() {
	a.now = a.now.Add(a.g.jitter(objectGap))
	a.obj.UpdatedAt = stamp(a.now)
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

// The wire shapes below follow the recorded deliveries field by field, in
// the provider's order, so bodies look like the real ones byte for byte.

type envelope struct {
	Event string       `json:"event"`
	Name  string       `json:"name"`
	Data  envelopeData `json:"data"`
}

type envelopeData struct {
	Account      string         `json:"account"`
	User         string         `json:"user"`
	ErrorCode    text           `json:"error_code,omitempty"`
	ErrorMessage text           `json:"error_message,omitempty"`
	Resource     *accountObject `json:"resource,omitempty"`
}

// accountObject is the provider's v2 account object (DOMAIN.md §3).
type accountObject struct {
	ID                  string         `json:"id"`
	User                string         `json:"user"`
	Employers           []string       `json:"employers"`
	Item                string         `json:"item"`
	Source              string         `json:"source"`
	CreatedAt           stamp          `json:"created_at"`
	UpdatedAt           stamp          `json:"updated_at"`
	ScannedAt           stamp          `json:"scanned_at"`
	Connection          connection     `json:"connection"`
	DirectDepositSwitch connection     `json:"direct_deposit_switch"`
	Availability        availability   `json:"availability"`
	OngoingRefresh      ongoingRefresh `json:"ongoing_refresh"`
}

// connection is the shape of both connection and direct_deposit_switch.
type connection struct {
	Status       string `json:"status"`
	ErrorCode    text   `json:"error_code"`
	ErrorMessage text   `json:"error_message"`
	UpdatedAt    stamp  `json:"updated_at"`
}

// availability lists every dataset; the simulated employer offers paystubs
// and identities, the others stay null as the provider sends them.
type availability struct {
	Paystubs            *countedDataset `json:"paystubs"`
	PayrollDocuments    *dataset        `json:"payroll_documents"`
	Identities          *dataset        `json:"identities"`
	Gigs                *countedDataset `json:"gigs"`
	Shifts              *countedDataset `json:"shifts"`
	Ratings             *dataset        `json:"ratings"`
	Vehicles            *dataset        `json:"vehicles"`
	DepositDestinations *dataset        `json:"deposit_destinations"`
	UserForms           *dataset        `json:"user_forms"`
	UserUploads         *dataset        `json:"user_uploads"`
}

type dataset struct {
	Status    string `json:"status"`
	UpdatedAt stamp  `json:"updated_at"`
}

type countedDataset struct {
	Status         string `json:"status"`
	UpdatedAt      stamp  `json:"updated_at"`
	AvailableCount int    `json:"available_count"`
	AvailableFrom  day    `json:"available_from"`
	AvailableTo    day    `json:"available_to"`
}

type ongoingRefresh struct {
	Status string `json:"status"`
}

// text is a string the provider sends as null when empty.
type text string

func (t text) MarshalJSON() ([]byte, error) {
	if t == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(t))
}

// stamp is a timestamp as the provider writes it: UTC, microseconds, null
// when unset.
type stamp time.Time

func (s stamp) MarshalJSON() ([]byte, error) {
	return timeJSON(time.Time(s), "2006-01-02T15:04:05.000000Z")
}

// day is a date as availability ranges carry it: midnight UTC, no fraction.
type day time.Time

func (d day) MarshalJSON() ([]byte, error) {
	return timeJSON(time.Time(d), "2006-01-02T00:00:00Z")
}

func timeJSON(t time.Time, layout string) ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.UTC().Format(layout) + `"`), nil
}
