package providerfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"

	"github.com/accounthealth/accounthealth/server/provider/accountobject"
)

// render builds the account object the provider would serve for s: a
// sandbox item, the direct deposit switch idle since creation, and every
// dataset but the user's forms and uploads synced at the last scan.
func render(s AccountSeed) json.RawMessage {
	obj := accountobject.Account{
		ID: s.ID, User: s.User, Employers: s.Employers,
		Item: "item_000029932", Source: "argyle_sandbox",
		CreatedAt: accountobject.Time(s.CreatedAt), UpdatedAt: accountobject.Time(s.UpdatedAt), ScannedAt: accountobject.Time(s.ScannedAt),
		Connection: accountobject.Connection{
			Status: s.Status, ErrorCode: accountobject.NullString(s.ErrorCode), ErrorMessage: accountobject.NullString(s.ErrorMessage),
			UpdatedAt: accountobject.Time(s.ConnectionUpdatedAt),
		},
		DirectDepositSwitch: accountobject.Connection{Status: "idle", UpdatedAt: accountobject.Time(s.CreatedAt)},
	}
	obj.OngoingRefresh.Status = "idle"
	if s.Status == "connected" {
		obj.OngoingRefresh.Status = "enabled"
	}
	if !s.ScannedAt.IsZero() {
		at := accountobject.Time(s.ScannedAt)
		synced := &accountobject.Dataset{Status: "synced", UpdatedAt: at}
		counted := &accountobject.CountedDataset{Status: "synced", UpdatedAt: at} // none, no range
		obj.Availability = accountobject.Availability{
			Gigs: counted, Shifts: counted, Paystubs: counted,
			PayrollDocuments: synced, Identities: synced, Ratings: synced,
			Vehicles: synced, DepositDestinations: synced,
		}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		panic(err) // only strings, numbers and timestamps: cannot fail
	}
	return b
}

// nullable is s as a JSON string, or null when empty.
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
		IncludeResource bool     `json:"include_resource"`
		Items           []string `json:"items,omitempty"`
	} `json:"config"`
	Secret     *string            `json:"secret"`
	URL        string             `json:"url"`
	CreatedAt  accountobject.Time `json:"created_at"`
	UpdatedAt  accountobject.Time `json:"updated_at"`
	LastSentAt accountobject.Time `json:"last_sent_at"`
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
