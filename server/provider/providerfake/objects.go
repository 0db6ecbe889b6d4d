package providerfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"
)

// stamp is a timestamp as the provider writes it: UTC with microseconds,
// null when zero.
type stamp time.Time

func (s stamp) MarshalJSON() ([]byte, error) {
	t := time.Time(s)
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(t.UTC().Format(`"2006-01-02T15:04:05.000000Z"`)), nil
}

// stampTime rounds t to what a stamp keeps, so that state and JSON agree
// and a change one microsecond later shows as later.
func stampTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// accountObject is the v2 account object, fields in the provider's order
// (see testdata/fixtures/recorded/account_object_*.json).
type accountObject struct {
	ID                  string       `json:"id"`
	User                string       `json:"user"`
	Employers           []string     `json:"employers"`
	Item                string       `json:"item"`
	Source              string       `json:"source"`
	CreatedAt           stamp        `json:"created_at"`
	UpdatedAt           stamp        `json:"updated_at"`
	ScannedAt           stamp        `json:"scanned_at"`
	Connection          statusObject `json:"connection"`
	DirectDepositSwitch statusObject `json:"direct_deposit_switch"`
	Availability        availability `json:"availability"`
	OngoingRefresh      struct {
		Status string `json:"status"`
	} `json:"ongoing_refresh"`
}

type statusObject struct {
	Status       string  `json:"status"`
	ErrorCode    *string `json:"error_code"`
	ErrorMessage *string `json:"error_message"`
	UpdatedAt    stamp   `json:"updated_at"`
}

// availability has one entry per dataset, null until the first scan.
type availability struct {
	Gigs                *countedDataset `json:"gigs"`
	Shifts              *countedDataset `json:"shifts"`
	Paystubs            *countedDataset `json:"paystubs"`
	PayrollDocuments    *dataset        `json:"payroll_documents"`
	Identities          *dataset        `json:"identities"`
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
	dataset
	AvailableCount int   `json:"available_count"`
	AvailableFrom  stamp `json:"available_from"`
	AvailableTo    stamp `json:"available_to"`
}

// render builds the account object the provider would serve for s.
func render(s AccountSeed) json.RawMessage {
	obj := accountObject{
		ID: s.ID, User: s.User, Employers: s.Employers,
		Item: "item_000029932", Source: "argyle_sandbox",
		CreatedAt: stamp(s.CreatedAt), UpdatedAt: stamp(s.UpdatedAt), ScannedAt: stamp(s.ScannedAt),
		Connection: statusObject{
			Status: s.Status, ErrorCode: nullable(s.ErrorCode), ErrorMessage: nullable(s.ErrorMessage),
			UpdatedAt: stamp(s.ConnectionUpdatedAt),
		},
		DirectDepositSwitch: statusObject{Status: "idle", UpdatedAt: stamp(s.CreatedAt)},
	}
	obj.OngoingRefresh.Status = "idle"
	if s.Status == "connected" {
		obj.OngoingRefresh.Status = "enabled"
	}
	if !s.ScannedAt.IsZero() {
		synced := dataset{Status: "synced", UpdatedAt: stamp(s.ScannedAt)}
		obj.Availability = availability{
			Gigs: &countedDataset{dataset: synced}, Shifts: &countedDataset{dataset: synced},
			Paystubs: &countedDataset{dataset: synced}, PayrollDocuments: &synced, Identities: &synced,
			Ratings: &synced, Vehicles: &synced, DepositDestinations: &synced,
		}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		panic(err) // only strings, numbers and stamps: cannot fail
	}
	return b
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// subscription is a webhook subscription, in the provider's JSON shape.
type subscription struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Events []string `json:"events"`
	Config struct {
		IncludeResource bool `json:"include_resource"`
	} `json:"config"`
	Secret     *string `json:"secret"`
	URL        string  `json:"url"`
	CreatedAt  stamp   `json:"created_at"`
	UpdatedAt  stamp   `json:"updated_at"`
	LastSentAt stamp   `json:"last_sent_at"`
	seq        int64
}

// errorMessage is the message the fake pairs with code: a realistic one
// for common codes, a generic one for the rest.
func errorMessage(code string) string {
	switch code {
	case "auth_required":
		return "The payroll system logged the session out; the user must reconnect."
	case "expired_credentials":
		return "The payroll system requires the user to reset their password."
	case "invalid_credentials":
		return "The user entered incorrect credentials."
	case "invalid_mfa":
		return "This user did not provide the correct multi-factor authentication response."
	case "mfa_timeout":
		return "The user did not answer the multi-factor authentication request in time."
	case "platform_unavailable":
		return "The payroll platform is temporarily unavailable."
	}
	return "The account could not connect (" + code + ")."
}

// newID returns a random id shaped like the provider's UUIDs.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
