package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// testBlobsReadBackExact: bodies and account objects are stored compressed
// where that saves bytes (a large account object does; a body of a few
// bytes does not), and every one reads back byte for byte as it came.
func testBlobsReadBackExact(t *testing.T, s store.Store) {
	acct, user := accountID(1), userID(1)
	large := connected(acct, user, t0)
	for i := range 200 {
		large.Resource.Employers = append(large.Resource.Employers, fmt.Sprintf("Whole Goods Market Store %03d", i))
	}
	ds := Deliveries(large, updatedLean(acct, user, t0.Add(time.Minute)))
	// An API action whose body is too small to gain from compression.
	ds = append(ds, store.Delivery{Source: store.SourceAPI, Actor: "token:support", Name: "delete-failed-account",
		Body:    []byte(`{}`),
		Decoded: health.Delivery{Event: health.EventAccountsRemoved, AccountID: acct, UserID: user, ReceivedAt: t0.Add(2 * time.Minute)}})
	for _, d := range ds {
		ingestDeliveries(t, s, []store.Delivery{d})
	}
	entries := allEntries(t, s, acct, 0)
	if len(entries) != len(ds) {
		t.Fatalf("%d entries, want %d", len(entries), len(ds))
	}
	for i, e := range entries {
		if !bytes.Equal(e.Body, ds[i].Body) {
			t.Errorf("entry %d: body of %d bytes read back, want the %d bytes ingested", i, len(e.Body), len(ds[i].Body))
		}
	}
	if rec := mustGetHealth(t, s, acct); !bytes.Equal(rec.Snapshot, ds[0].Decoded.Snapshot.Raw) {
		t.Errorf("account object of %d bytes read back, want the %d bytes ingested", len(rec.Snapshot), len(ds[0].Decoded.Snapshot.Raw))
	}
}
