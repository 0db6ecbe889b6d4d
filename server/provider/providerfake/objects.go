package providerfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/provider/accountobject"
)

// render builds the account object the provider would serve for s.
func render(s AccountSeed) json.RawMessage { return marshal(object(s)) }

// renderScanning builds the object of s while a scan begun at at runs:
// every dataset in_progress since then, scanned_at still the last scan's.
func renderScanning(s AccountSeed, at time.Time) json.RawMessage {
	obj := object(s)
	obj.Availability = availability(at, s.FailedDatasets, func(string) string { return datasetInProgress })
	return marshal(obj)
}

// object is the account object of s: a sandbox item, the direct deposit
// switch idle since creation, and the datasets as of the last scan.
func object(s AccountSeed) accountobject.Account {
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
	obj.OngoingRefresh.Status = s.OngoingRefresh
	if s.OngoingRefresh == "" {
		obj.OngoingRefresh.Status = "idle"
		if s.Status == "connected" {
			obj.OngoingRefresh.Status = "enabled"
		}
	}
	if !s.ScannedAt.IsZero() {
		obj.Availability = availability(s.ScannedAt, s.FailedDatasets, func(name string) string {
			if slices.Contains(s.FailedDatasets, name) {
				return datasetSyncFailed
			}
			return datasetSynced
		})
	}
	return obj
}

func marshal(obj accountobject.Account) json.RawMessage {
	b, err := json.Marshal(obj)
	if err != nil {
		panic(err) // only strings, numbers and timestamps: cannot fail
	}
	return b
}

// Statuses of availability.<dataset>.
const (
	datasetInProgress = "in_progress"
	datasetSynced     = "synced"
	datasetSyncFailed = "sync_failed"
)

// datasets are the entries of availability, in the object's order. The
// sandbox employer offers every one but the user's forms and uploads,
// which stay null unless named failed. Counted datasets are of dated
// items: the fake has none, so no count and no range.
var datasets = []struct {
	name    string
	offered bool
	set     func(av *accountobject.Availability, d accountobject.Dataset)
}{
	{"gigs", true, func(av *accountobject.Availability, d accountobject.Dataset) { av.Gigs = counted(d) }},
	{"shifts", true, func(av *accountobject.Availability, d accountobject.Dataset) { av.Shifts = counted(d) }},
	{"paystubs", true, func(av *accountobject.Availability, d accountobject.Dataset) { av.Paystubs = counted(d) }},
	{"payroll_documents", true, func(av *accountobject.Availability, d accountobject.Dataset) { av.PayrollDocuments = &d }},
	{"identities", true, func(av *accountobject.Availability, d accountobject.Dataset) { av.Identities = &d }},
	{"ratings", true, func(av *accountobject.Availability, d accountobject.Dataset) { av.Ratings = &d }},
	{"vehicles", true, func(av *accountobject.Availability, d accountobject.Dataset) { av.Vehicles = &d }},
	{"deposit_destinations", true, func(av *accountobject.Availability, d accountobject.Dataset) { av.DepositDestinations = &d }},
	{"user_forms", false, func(av *accountobject.Availability, d accountobject.Dataset) { av.UserForms = &d }},
	{"user_uploads", false, func(av *accountobject.Availability, d accountobject.Dataset) { av.UserUploads = &d }},
}

func counted(d accountobject.Dataset) *accountobject.CountedDataset {
	return &accountobject.CountedDataset{Status: d.Status, UpdatedAt: d.UpdatedAt}
}

// availability is the datasets offered, and those named in failed, each
// of the status statusOf gives its name, as of at.
func availability(at time.Time, failed []string, statusOf func(name string) string) accountobject.Availability {
	var av accountobject.Availability
	for _, ds := range datasets {
		if ds.offered || slices.Contains(failed, ds.name) {
			ds.set(&av, accountobject.Dataset{Status: statusOf(ds.name), UpdatedAt: accountobject.Time(at)})
		}
	}
	return av
}

// checkDatasets refuses names in failed (the JSON field failed_datasets)
// that are no dataset of availability.
func checkDatasets(failed []string) error {
	var names []string
	for _, ds := range datasets {
		names = append(names, ds.name)
	}
	for _, name := range failed {
		if !slices.Contains(names, name) {
			return &FieldError{Field: "failed_datasets", Problem: fmt.Sprintf("unknown dataset %q: want one of %s", name, strings.Join(names, ", "))}
		}
	}
	return nil
}

// FieldError is a value the fake refuses, named by its JSON field. The
// control routes answer it 400 {"<field>": ["<problem>"]}, the shape of
// the provider's own validation errors.
type FieldError struct {
	Field, Problem string
}

func (e *FieldError) Error() string { return "providerfake: " + e.Field + ": " + e.Problem }

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
