package accountobject_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/provider/accountobject"
)

// at parses an RFC 3339 timestamp of a recording.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// An account object filled with a recorded object's values encodes to the
// recorded bytes: same keys, same order, same value formats.
func TestAccountEncodesAsRecorded(t *testing.T) {
	recorded, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "fixtures", "recorded", "account_object_bob_single.json"))
	if err != nil {
		t.Fatal(err)
	}
	ts := func(s string) accountobject.Time { return accountobject.Time(at(t, s)) }
	sec := func(s string) accountobject.TimeSeconds { return accountobject.TimeSeconds(at(t, s)) }
	synced := func(s string) *accountobject.Dataset {
		return &accountobject.Dataset{Status: "synced", UpdatedAt: ts(s)}
	}
	obj := accountobject.Account{
		ID:        "019571bc-2f60-3955-d972-dbadfe0913a8",
		User:      "019571bb-e574-a88e-7d7b-15c886499696",
		Employers: []string{"Lyft Driver"},
		Item:      "item_000024123",
		Source:    "argyle_sandbox",
		CreatedAt: ts("2025-05-06T19:35:49.110616Z"),
		UpdatedAt: ts("2025-05-06T19:37:29.834320Z"),
		ScannedAt: ts("2025-05-06T19:37:19.690128Z"),
		Connection: accountobject.Connection{
			Status: "connected", UpdatedAt: ts("2025-05-06T19:35:56.599174Z"),
		},
		DirectDepositSwitch: accountobject.Connection{
			Status: "idle", UpdatedAt: ts("2025-05-06T19:35:49.744701Z"),
		},
		Availability: accountobject.Availability{
			Gigs: &accountobject.CountedDataset{
				Status: "synced", UpdatedAt: ts("2025-05-06T19:37:29.557002Z"), AvailableCount: 2086,
				AvailableFrom: sec("2022-11-07T19:35:56Z"), AvailableTo: sec("2025-05-06T07:55:40Z"),
			},
			Shifts: &accountobject.CountedDataset{Status: "synced", UpdatedAt: ts("2025-05-06T19:37:17.930034Z")},
			Paystubs: &accountobject.CountedDataset{
				Status: "synced", UpdatedAt: ts("2025-05-06T19:37:29.395723Z"), AvailableCount: 131,
				AvailableFrom: sec("2022-11-07T19:35:56Z"), AvailableTo: sec("2025-05-05T00:00:00Z"),
			},
			PayrollDocuments:    synced("2025-05-06T19:35:59.426496Z"),
			Identities:          synced("2025-05-06T19:37:29.623256Z"),
			Ratings:             synced("2025-05-06T19:37:19.424777Z"),
			Vehicles:            synced("2025-05-06T19:35:59.440592Z"),
			DepositDestinations: synced("2025-05-06T19:35:57.776535Z"),
		},
		OngoingRefresh: accountobject.OngoingRefresh{Status: "disabled"},
	}
	got, err := json.MarshalIndent(obj, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if want := bytes.TrimSuffix(recorded, []byte("\n")); !bytes.Equal(got, want) {
		t.Errorf("encoded:\n%s\nrecorded:\n%s", got, want)
	}
}

func TestScalars(t *testing.T) {
	paris := time.FixedZone("CEST", 2*60*60)
	when := time.Date(2026, 10, 5, 16, 2, 11, 381204999, paris)
	cases := []struct {
		name string
		v    any
		want string
	}{
		{"time", accountobject.Time(when), `"2026-10-05T14:02:11.381204Z"`},
		{"time whole second", accountobject.Time(when.Truncate(time.Second)), `"2026-10-05T14:02:11.000000Z"`},
		{"time zero", accountobject.Time{}, `null`},
		{"seconds", accountobject.TimeSeconds(when), `"2026-10-05T14:02:11Z"`},
		{"seconds zero", accountobject.TimeSeconds{}, `null`},
		{"string", accountobject.NullString("invalid_mfa"), `"invalid_mfa"`},
		{"string escaped", accountobject.NullString(`say "hi"`), `"say \"hi\""`},
		{"string empty", accountobject.NullString(""), `null`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := json.Marshal(c.v)
			if err != nil || string(got) != c.want {
				t.Errorf("Marshal = %s, %v; want %s", got, err, c.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	paris := time.FixedZone("CEST", 2*60*60)
	got := accountobject.Truncate(time.Date(2026, 10, 5, 16, 2, 11, 381204999, paris))
	if want := time.Date(2026, 10, 5, 14, 2, 11, 381204000, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("Truncate = %v, want %v", got, want)
	}
}
