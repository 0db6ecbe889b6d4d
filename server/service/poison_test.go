package service_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/postgres"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// rc is U+FFFD, what readers show for text that was not valid.
const rc = "\uFFFD"

// poison is JSON that encoding/json, and so intake, accepts, and that
// protojson or a reader's protobuf decoder does not: deliveries holding it
// once failed every read of their account, and every page holding it.
type poison struct {
	name string
	// data and resource are members added to the delivery's data and to
	// its account object; message is the error message, in the account's
	// connection and, for accounts.failed, in data.
	data, resource, message string
	shown                   string // the message readers see; message when empty
	seen                    string // what readers show of the poison, in compact JSON
}

var poisons = []poison{
	{name: "lone surrogate in the employer name", resource: `"employers":["Caf\udce9"],`, message: "Reconnect.", seen: `"employers":["Caf` + rc + `"]`},
	{name: "lone surrogates in the error message", message: `Caf\udce9 logged out \ud83d`, shown: "Caf" + rc + " logged out " + rc, seen: `"error_message":"Caf` + rc + ` logged out ` + rc + `"`},
	{name: "lone surrogates in the account object's keys", resource: `"\udc00":{"\ud800":"\udfff"},`, message: "Reconnect.", seen: `"` + rc + `":{"` + rc + `":"` + rc + `"}`},
	{name: "invalid UTF-8 in data", data: "\"note\":\"Caf\xe9\",", message: "Reconnect.", seen: `"note":"Caf` + rc + `"`},
	{name: "invalid UTF-8 in the account object and the message", resource: "\"employers\":[\"Caf\xe9\"],", message: "Caf\xe9 \xed\xa0\x80",
		shown: "Caf" + rc + " " + rc + rc + rc, seen: `"employers":["Caf` + rc + `"]`},
	{name: "repeated key in data", data: `"note":"first","note":"last",`, message: "Reconnect.", seen: `"note":"last"`},
	{name: "repeated key in the account object", resource: `"item":"item_0","item":"item_9",`, message: "Reconnect.", seen: `"item":"item_9"`},
	{name: "number beyond float64 in data", data: `"attempts":1e400,`, message: "Reconnect.", seen: `"attempts":"1e400"`},
	{name: "number beyond float64 in the account object", resource: `"balance":-1E+999,`, message: "Reconnect.", seen: `"balance":"-1E+999"`},
	{name: "NUL in the error message and the account object", resource: `"employers":["Caf\u0000"],`, message: `Caf\u0000 down`,
		shown: "Caf" + rc + " down", seen: `"employers":["Caf\u0000"]`},
	{name: "nesting deeper than readers decode", resource: `"deep":` + strings.Repeat("[", 4000) + strings.Repeat("]", 4000) + `,`, message: "Reconnect.", seen: `"[[[[`},
}

// body is an accounts.updated (a disconnection) or accounts.failed
// delivery carrying p, with the account object.
func (p poison) body(event, account, user string, at time.Time) []byte {
	code, data := "auth_required", p.data
	if event == health.EventAccountsFailed {
		code = "invalid_credentials"
		data += `"error_code":"invalid_credentials","error_message":"` + p.message + `",`
	}
	ts := at.UTC().Format(time.RFC3339Nano)
	return fmt.Appendf(nil, `{"event":%q,"name":"test","data":{%s"account":%q,"user":%q,"resource":{%s"id":%q,"user":%q,"updated_at":%q,`+
		`"connection":{"status":"error","error_code":%q,"error_message":"%s","updated_at":%q}}}}`,
		event, data, account, user, p.resource, account, user, ts, code, p.message, ts)
}

// compactJSON is m as REST callers get it, without spacing.
func compactJSON(t *testing.T, m proto.Message) string {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// listAll pages through ListAccountHealth and returns the account ids.
func (e *env) listAll(r reader, pageSize int32) []string {
	e.t.Helper()
	var ids []string
	for token := ""; ; {
		resp := &ahv1.ListAccountHealthResponse{}
		if code := r.call(e, "ListAccountHealth", &ahv1.ListAccountHealthRequest{PageSize: pageSize, PageToken: token}, resp); code != codes.OK {
			e.t.Fatalf("%s ListAccountHealth page after %d accounts: %s", r.name, len(ids), code)
		}
		for _, a := range resp.GetAccounts() {
			ids = append(ids, a.GetAccountId())
		}
		if token = resp.GetNextPageToken(); token == "" {
			return ids
		}
	}
}

// Deliveries holding poison in data or in the account object, for
// accounts.updated and accounts.failed, are accepted and served by every
// read, over gRPC and REST: with U+FFFD where the text was not valid and the
// health they call for, and pages holding them among healthy accounts too.
func TestPoisonedDeliveriesServed(t *testing.T) {
	for _, s := range storeKinds {
		t.Run(s.name, func(t *testing.T) { testPoisonedDeliveriesServed(t, s.open(t)) })
	}
}

// storeKinds are the drivers a test can run over: PostgreSQL refuses what
// SQLite takes (NUL in text), so intake must not hand it such text.
var storeKinds = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"sqlite", func(t *testing.T) store.Store { return openStore(t, t.TempDir()) }},
	{"postgres", func(t *testing.T) store.Store {
		st, err := postgres.Open(t.Context(), pgtest.URL(t), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
}

func testPoisonedDeliveriesServed(t *testing.T, st store.Store) {
	e := start(t, st)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	type account struct {
		id, event string
		p         poison
	}
	var poisoned []account
	var all []string
	for _, p := range poisons {
		for _, event := range []string{health.EventAccountsUpdated, health.EventAccountsFailed} {
			healthy := fmt.Sprintf("acct-%02d", len(all))
			id := fmt.Sprintf("acct-%02d", len(all)+1)
			all = append(all, healthy, id)
			e.deliver(updatedBody(healthy, "user-h", "connected", "", at))
			if event == health.EventAccountsUpdated {
				e.deliver(updatedBody(id, "user-"+id, "connected", "", at))
			}
			if got := e.deliver(p.body(event, id, "user-"+id, at.Add(time.Minute))); got.outcome != ahv1.DeliveryOutcome_DELIVERY_OUTCOME_APPLIED {
				t.Errorf("%s, %s: outcome %s", p.name, event, got.outcome)
			}
			poisoned = append(poisoned, account{id, event, p})
		}
	}

	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) {
			for _, a := range poisoned {
				h := e.getHealth(r, a.id)
				state, code := ahv1.HealthState_HEALTH_STATE_DISCONNECTED, "auth_required"
				if a.event == health.EventAccountsFailed {
					state, code = ahv1.HealthState_HEALTH_STATE_AUTH_FAILED, "invalid_credentials"
				}
				if msg := cmp.Or(a.p.shown, a.p.message); h.GetState() != state || h.GetErrorCode() != code || h.GetErrorMessage() != msg {
					t.Errorf("%s, %s: %s %s %q, want %s %s %q", a.p.name, a.event, h.GetState(), h.GetErrorCode(), h.GetErrorMessage(), state, code, msg)
				}
				if snap := compactJSON(t, h.GetLastSnapshot()); a.p.resource != "" && !strings.Contains(snap, a.p.seen) {
					t.Errorf("%s, %s: snapshot %.300s does not show %s", a.p.name, a.event, snap, a.p.seen)
				}
				events := &ahv1.ListAccountEventsResponse{}
				if code := r.call(e, "ListAccountEvents", &ahv1.ListAccountEventsRequest{AccountId: a.id}, events); code != codes.OK {
					t.Fatalf("%s, %s: ListAccountEvents: %s", a.p.name, a.event, code)
				}
				last := events.GetEvents()[len(events.GetEvents())-1]
				if payload := compactJSON(t, last.GetPayload()); !strings.Contains(payload, a.p.seen) {
					t.Errorf("%s, %s: payload %.300s does not show %s", a.p.name, a.event, payload, a.p.seen)
				}
			}
			// Every page: all at once, and three at a time, each holding
			// poisoned and healthy accounts.
			for _, size := range []int32{0, 3} {
				if got := e.listAll(r, size); !slices.Equal(got, all) {
					t.Errorf("pages of %d: %v, want %v", size, got, all)
				}
			}
			sum := &ahv1.GetHealthSummaryResponse{}
			if code := r.call(e, "GetHealthSummary", &ahv1.GetHealthSummaryRequest{}, sum); code != codes.OK || sum.GetTotal() != int64(len(all)) {
				t.Errorf("GetHealthSummary: %s, total %d, want %d", code, sum.GetTotal(), len(all))
			}
		})
	}

	// The stream brings every disconnection, with the message readers see.
	for _, st := range streamTransports {
		t.Run("stream "+st.name, func(t *testing.T) {
			w := st.watch(e, &ahv1.StreamDisconnectionsRequest{Start: &ahv1.StreamDisconnectionsRequest_Since{Since: timestamppb.New(at)}})
			defer w.cancel()
			for i, ev := range w.events(t, len(poisoned)) {
				a := poisoned[i]
				if msg := cmp.Or(a.p.shown, a.p.message); ev.GetAccountId() != a.id || ev.GetErrorMessage() != msg {
					t.Errorf("event %d: %s %q, want %s %q", i, ev.GetAccountId(), ev.GetErrorMessage(), a.id, msg)
				}
			}
		})
	}
}

// A record or entry stored with bytes no reader can convert as they are,
// as an older build (or a hand-edited database) could have left them, is
// served, and never fails a page of other accounts: text that is not valid
// is shown with U+FFFD, and bytes that are not JSON at all are left out,
// with a warning naming the account.
func TestUnservableStoredBytesServed(t *testing.T) {
	st := openStore(t, t.TempDir())
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	decoded := func(body []byte) store.Delivery {
		env, err := webhook.Decode(body, at)
		if err != nil {
			t.Fatal(err)
		}
		return store.Delivery{Body: body, Name: env.Name, Decoded: env.Delivery, Verified: true}
	}
	// Written as they came, bypassing intake.
	stored := func(account, raw, message string) store.Delivery {
		body := []byte(`{"event":"accounts.updated","data":{"resource":` + raw + `}}`)
		return store.Delivery{Body: body, Decoded: health.Delivery{
			Event: health.EventAccountsUpdated, AccountID: account, UserID: "u", ErrorCode: "auth_required", ErrorMessage: message,
			ReceivedAt: at.Add(time.Minute),
			Snapshot: &health.Snapshot{ConnectionStatus: "error", ConnectionErrorCode: "auth_required", ConnectionErrorMessage: message,
				UpdatedAt: at.Add(time.Minute), Raw: []byte(raw)},
		}}
	}
	if _, err := st.Ingest(t.Context(), []store.Delivery{
		decoded(updatedBody("acct-1", "u", "connected", "", at)),
		decoded(updatedBody("acct-2", "u", "connected", "", at)),
		stored("acct-2", `{"employers":["Caf\udce9"],"n":1e400,"k":1,"k":2}`, "Caf\xe9"),
		decoded(updatedBody("acct-3", "u", "connected", "", at)),
		stored("acct-3", `not JSON at all`, "Reconnect."),
		decoded(updatedBody("acct-4", "u", "connected", "", at)),
	}); err != nil {
		t.Fatal(err)
	}
	e := start(t, st)
	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) {
			resp := &ahv1.ListAccountHealthResponse{}
			if code := r.call(e, "ListAccountHealth", &ahv1.ListAccountHealthRequest{}, resp); code != codes.OK || len(resp.GetAccounts()) != 4 {
				t.Fatalf("ListAccountHealth: %s, %d accounts", code, len(resp.GetAccounts()))
			}
			bad, broken := resp.GetAccounts()[1], resp.GetAccounts()[2]
			if snap := compactJSON(t, bad.GetLastSnapshot()); snap != `{"employers":["Caf`+rc+`"],"k":2,"n":"1e400"}` ||
				bad.GetErrorMessage() != "Caf"+rc || bad.GetState() != ahv1.HealthState_HEALTH_STATE_DISCONNECTED {
				t.Errorf("acct-2 = %v", bad)
			}
			if broken.GetAccountId() != "acct-3" || broken.GetLastSnapshot() != nil || broken.GetState() != ahv1.HealthState_HEALTH_STATE_DISCONNECTED {
				t.Errorf("acct-3 = %v, want it without its snapshot", broken)
			}
			if h := e.getHealth(r, "acct-3"); h.GetLastSnapshot() != nil {
				t.Errorf("GetAccountHealth(acct-3) = %v", h)
			}
			events := &ahv1.ListAccountEventsResponse{}
			if code := r.call(e, "ListAccountEvents", &ahv1.ListAccountEventsRequest{AccountId: "acct-3"}, events); code != codes.OK ||
				len(events.GetEvents()) != 2 || events.GetEvents()[1].GetPayload() != nil {
				t.Errorf("ListAccountEvents(acct-3): %s %v", code, events.GetEvents())
			}
		})
	}
	if logs := e.logs.String(); !strings.Contains(logs, "stored JSON is not an object; served without it") || !strings.Contains(logs, "account=acct-3") {
		t.Errorf("no warning naming acct-3 in the log:\n%s", logs)
	}
	for _, st := range streamTransports {
		w := st.watch(e, &ahv1.StreamDisconnectionsRequest{Start: &ahv1.StreamDisconnectionsRequest_Since{Since: timestamppb.New(at)}})
		if evs := w.events(t, 2); evs[0].GetErrorMessage() != "Caf"+rc {
			t.Errorf("%s stream: %v", st.name, evs[0])
		}
		w.cancel()
	}
}

// FuzzIntakeToReads posts each input as a signed delivery to the webhook
// route and, when it is accepted, reads it back every way a caller can,
// over gRPC and REST: no read may fail on anything intake accepted.
func FuzzIntakeToReads(f *testing.F) {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range poisons {
		f.Add(p.body(health.EventAccountsUpdated, "acct-1", "user-1", at))
		f.Add(p.body(health.EventAccountsFailed, "acct-2", "user-1", at))
	}
	files, _ := filepath.Glob(filepath.Join(fixturesDir, "deliveries", "*.json"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	base := start(f, nil)
	streams := []*watcher{
		base.watchGRPC(&ahv1.StreamDisconnectionsRequest{IncludeRecoveries: true}),
		base.watchREST(&ahv1.StreamDisconnectionsRequest{IncludeRecoveries: true}),
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e := *base
		e.t = t
		got := e.postHTTP(body, webhook.Sign(fixtureSecret, body))
		switch {
		case got.http >= 500:
			t.Fatalf("webhook answered %d: %s", got.http, got.message)
		case got.http != http.StatusOK:
			return // refused, so nothing was stored
		}
		if e.readBack(got) && got.outcome != ahv1.DeliveryOutcome_DELIVERY_OUTCOME_DUPLICATE {
			for _, w := range streams {
				w.waitDelivery(t, got.sequence)
			}
		}
	})
}

// readBack reads what an accepted delivery stored, failing the test on any
// read that does not succeed: the first page of all accounts, the summary,
// the account, a page that holds it, and its whole timeline. It reports
// whether the delivery's entry made a change, which streams must bring.
func (e *env) readBack(got reply) (changed bool) {
	t := e.t
	for _, r := range readers {
		mustRead := func(method string, req, resp proto.Message) {
			t.Helper()
			if code := r.call(e, method, req, resp); code != codes.OK {
				t.Fatalf("%s %s(%v): %s", r.name, method, req, code)
			}
		}
		mustRead("ListAccountHealth", &ahv1.ListAccountHealthRequest{}, &ahv1.ListAccountHealthResponse{})
		mustRead("GetHealthSummary", &ahv1.GetHealthSummaryRequest{}, &ahv1.GetHealthSummaryResponse{})
		if !nameable(got.account) {
			continue
		}
		h := &ahv1.GetAccountHealthResponse{}
		switch code := r.call(e, "GetAccountHealth", &ahv1.GetAccountHealthRequest{AccountId: got.account}, h); {
		case code == codes.NotFound: // not an account event: no record
		case code != codes.OK:
			t.Fatalf("%s GetAccountHealth(%q): %s", r.name, got.account, code)
		case nameable(h.GetAccountHealth().GetUserId()):
			mustRead("ListAccountHealth", &ahv1.ListAccountHealthRequest{UserId: h.GetAccountHealth().GetUserId()}, &ahv1.ListAccountHealthResponse{})
		}
		for token := ""; ; {
			events := &ahv1.ListAccountEventsResponse{}
			mustRead("ListAccountEvents", &ahv1.ListAccountEventsRequest{AccountId: got.account, PageSize: 500, PageToken: token}, events)
			for _, ev := range events.GetEvents() {
				changed = changed || ev.GetSequence() == got.sequence && ev.GetTransition() != nil
			}
			if token = events.GetNextPageToken(); token == "" {
				break
			}
		}
	}
	return changed
}

// nameable reports whether a request can name id: the API takes up to 128
// printable characters without spaces, and the REST routes, where an id is
// a path segment, no "/" even escaped (the provider's ids are uuids).
func nameable(id string) bool {
	return id != "" && len(id) <= 128 && !strings.ContainsFunc(id, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '/' })
}

// waitDelivery waits for the event of the change that the delivery at
// entrySeq caused, skipping earlier ones.
func (w *watcher) waitDelivery(t *testing.T, entrySeq int64) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m := <-w.msgs:
			if m.GetEvent().GetDelivery().GetSequence() == entrySeq {
				return
			}
		case <-w.done:
			t.Fatalf("stream ended: %v", w.err)
		case <-timeout:
			t.Fatalf("no stream event for delivery %d within 15s", entrySeq)
		}
	}
}
