// Package accountobject describes the provider's (Argyle's) v2 account
// object as it is sent over the wire: in GET /v2/accounts responses and as
// data.resource of accounts.* webhook deliveries (docs/provider.md#account-object).
//
// The types only encode. Fields stand in the provider's order, taken from
// the recorded objects and deliveries in
// testdata/fixtures/recorded/account_object_*.json and accounts_*.json, so
// that encoding/json writes the keys as the provider does. What values go
// in is up to the caller: the simulator and the fake provider each fill
// them in their own way.
package accountobject

import (
	"encoding/json"
	"time"
)

// Account is the v2 account object.
type Account struct {
	ID        string   `json:"id"`
	User      string   `json:"user"`
	Employers []string `json:"employers"`
	Item      string   `json:"item"`
	Source    string   `json:"source"`
	CreatedAt Time     `json:"created_at"`
	UpdatedAt Time     `json:"updated_at"`
	// ScannedAt is null until the first scan.
	ScannedAt           Time           `json:"scanned_at"`
	Connection          Connection     `json:"connection"`
	DirectDepositSwitch Connection     `json:"direct_deposit_switch"`
	Availability        Availability   `json:"availability"`
	OngoingRefresh      OngoingRefresh `json:"ongoing_refresh"`
}

// Connection is the shape of both connection and direct_deposit_switch: a
// status, the error that put it there if any, and when it last changed.
type Connection struct {
	Status       string     `json:"status"`
	ErrorCode    NullString `json:"error_code"`
	ErrorMessage NullString `json:"error_message"`
	UpdatedAt    Time       `json:"updated_at"`
}

// Availability has one entry per dataset, each null until the provider has
// something to say about it, in the provider's order: gigs and shifts
// first, then paystubs.
type Availability struct {
	Gigs                *CountedDataset `json:"gigs"`
	Shifts              *CountedDataset `json:"shifts"`
	Paystubs            *CountedDataset `json:"paystubs"`
	PayrollDocuments    *Dataset        `json:"payroll_documents"`
	Identities          *Dataset        `json:"identities"`
	Ratings             *Dataset        `json:"ratings"`
	Vehicles            *Dataset        `json:"vehicles"`
	DepositDestinations *Dataset        `json:"deposit_destinations"`
	UserForms           *Dataset        `json:"user_forms"`
	UserUploads         *Dataset        `json:"user_uploads"`
}

// Dataset is the sync state of a dataset without items to count.
type Dataset struct {
	Status    string `json:"status"` // in_progress, synced or sync_failed
	UpdatedAt Time   `json:"updated_at"`
}

// CountedDataset is the sync state of a dataset of dated items: how many
// there are and the range they cover (null bounds when there are none).
type CountedDataset struct {
	Status         string      `json:"status"`
	UpdatedAt      Time        `json:"updated_at"`
	AvailableCount int         `json:"available_count"`
	AvailableFrom  TimeSeconds `json:"available_from"`
	AvailableTo    TimeSeconds `json:"available_to"`
}

// OngoingRefresh says whether the provider rescans the account on its own.
type OngoingRefresh struct {
	Status string `json:"status"` // enabled, disabled or idle
}

// NullString is a string the provider sends as null when empty.
type NullString string

// MarshalJSON writes null for the empty string, the string otherwise.
func (s NullString) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(s))
}

// Time is a timestamp as the provider writes it: RFC 3339 in UTC with
// exactly six fractional digits ("2025-03-07T17:51:53.292760Z"), null when
// zero. Finer digits are cut, not rounded; see Truncate.
type Time time.Time

// MarshalJSON writes t as the provider does.
func (t Time) MarshalJSON() ([]byte, error) {
	return timeJSON(time.Time(t), "2006-01-02T15:04:05.000000Z")
}

// TimeSeconds is a timestamp with whole seconds, as the provider bounds a
// dataset's range ("2022-04-07T17:51:59Z"): RFC 3339 in UTC, no fraction,
// null when zero.
type TimeSeconds time.Time

// MarshalJSON writes t as the provider does.
func (t TimeSeconds) MarshalJSON() ([]byte, error) {
	return timeJSON(time.Time(t), "2006-01-02T15:04:05Z")
}

func timeJSON(t time.Time, layout string) ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.UTC().Format(layout) + `"`), nil
}

// Truncate returns t in UTC cut to the microseconds a Time keeps, so that
// a time held in memory equals the one its JSON says, and a change one
// microsecond later shows as later.
func Truncate(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
