package storetest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// Event describes one webhook delivery. Delivery renders it as the JSON the
// provider sends and fills the decoded form by hand, as the webhook decoder
// would, so that the suite depends on no decoder.
type Event struct {
	Event     string
	Name      string // the subscription's name; a default when empty
	AccountID string // data.account; empty for user and item events
	UserID    string // data.user
	// ErrorCode and ErrorMessage go in data, as v1-era accounts.failed
	// carry them.
	ErrorCode, ErrorMessage string
	Resource                *Resource      // data.resource, nil without include_resource
	Data                    map[string]any // further data fields, e.g. of paystubs.added
	// Item and ItemStatus are data.item and data.status of items.updated.
	Item, ItemStatus string
	ReceivedAt       time.Time
}

// Resource is the account object of data.resource.
type Resource struct {
	Status       string    // connection.status
	ErrorCode    string    // connection.error_code
	ErrorMessage string    // connection.error_message
	UpdatedAt    time.Time // updated_at and connection.updated_at
	ScannedAt    time.Time // zero: never scanned
	Employers    []string
	Item         string   // defaultItem when empty
	Refresh      string   // ongoing_refresh.status; idle when empty
	Failed       []string // datasets of availability that failed to sync, sorted
	Synced       []string // datasets of availability that synced
}

// defaultItem is the item of a Resource that names none.
const defaultItem = "item_000041078"

func (r *Resource) item() string {
	if r.Item == "" {
		return defaultItem
	}
	return r.Item
}

// Delivery renders e. Equal Events give byte-identical bodies (encoding/json
// sorts map keys), which is what redelivery tests need.
func (e Event) Delivery() store.Delivery {
	name := e.Name
	if name == "" {
		name = "accounthealth-" + strings.ReplaceAll(e.Event, ".", "-")
	}
	data := map[string]any{}
	for k, v := range e.Data {
		data[k] = v
	}
	if e.AccountID != "" {
		data["account"] = e.AccountID
	}
	if e.UserID != "" {
		data["user"] = e.UserID
	}
	if e.ErrorCode != "" {
		data["error_code"], data["error_message"] = e.ErrorCode, e.ErrorMessage
	}
	if e.Item != "" {
		data["item"], data["status"] = e.Item, e.ItemStatus
	}
	d := health.Delivery{
		Event:        e.Event,
		AccountID:    e.AccountID,
		UserID:       e.UserID,
		ErrorCode:    e.ErrorCode,
		ErrorMessage: e.ErrorMessage,
		ReceivedAt:   e.ReceivedAt,
	}
	if e.Item != "" {
		d.ItemReport = &health.ItemReport{Item: e.Item, Status: e.ItemStatus, ReceivedAt: e.ReceivedAt}
	}
	if r := e.Resource; r != nil {
		raw := mustJSON(r.object(e.AccountID, e.UserID))
		data["resource"] = json.RawMessage(raw)
		d.Snapshot = &health.Snapshot{
			ConnectionStatus:       r.Status,
			ConnectionErrorCode:    r.ErrorCode,
			ConnectionErrorMessage: r.ErrorMessage,
			ConnectionUpdatedAt:    r.UpdatedAt,
			UpdatedAt:              r.UpdatedAt,
			ScannedAt:              r.ScannedAt,
			Item:                   r.item(),
			RefreshStatus:          cmp.Or(r.Refresh, "idle"),
			Raw:                    raw,
		}
		d.Snapshot.Datasets = r.datasets()
		if d.ErrorCode == "" {
			d.ErrorCode, d.ErrorMessage = r.ErrorCode, r.ErrorMessage
		}
	}
	body := mustJSON(map[string]any{"event": e.Event, "name": name, "data": data})
	return store.Delivery{Body: body, Name: name, Decoded: d}
}

func (r *Resource) object(accountID, userID string) map[string]any {
	employers := r.Employers
	if employers == nil {
		employers = []string{"Whole Goods Market"}
	}
	return map[string]any{
		"id":         accountID,
		"user":       userID,
		"employers":  employers,
		"item":       r.item(),
		"source":     "adp",
		"created_at": "2026-09-28T09:15:03.117284Z",
		"updated_at": timestamp(r.UpdatedAt),
		"scanned_at": timestamp(r.ScannedAt),
		"connection": map[string]any{
			"status":        r.Status,
			"error_code":    nullable(r.ErrorCode),
			"error_message": nullable(r.ErrorMessage),
			"updated_at":    timestamp(r.UpdatedAt),
		},
		"availability":    r.availability(),
		"ongoing_refresh": map[string]any{"status": cmp.Or(r.Refresh, "idle")},
	}
}

func (r *Resource) availability() map[string]any {
	a := map[string]any{"paystubs": nil, "identities": nil, "gigs": nil}
	for _, ds := range r.datasets() {
		a[ds.Name] = map[string]any{"status": ds.Status}
	}
	return a
}

// datasets is what the availability says of the datasets it names.
func (r *Resource) datasets() []health.DatasetStatus {
	var out []health.DatasetStatus
	for _, name := range r.Failed {
		out = append(out, health.DatasetStatus{Name: name, Status: health.DatasetSyncFailed})
	}
	for _, name := range r.Synced {
		out = append(out, health.DatasetStatus{Name: name, Status: health.DatasetSynced})
	}
	return out
}

func timestamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps of strings and times: cannot happen
	}
	return b
}

// Deliveries renders each event.
func Deliveries(events ...Event) []store.Delivery {
	ds := make([]store.Delivery, len(events))
	for i, e := range events {
		ds[i] = e.Delivery()
	}
	return ds
}

// Ids that look like the provider's uuids and sort by n.
func accountID(n int) string { return fmt.Sprintf("0190a1e3-%04x-7c12-8e55-6b2d9f0c1a11", n) }
func userID(n int) string    { return fmt.Sprintf("0190a1e2-%04x-7b41-9f2e-1d7c3a4b5e60", n) }

// t0 has nanoseconds and a zone other than UTC, so that a store which
// truncates or misreads times is caught.
var t0 = time.Date(2026, 10, 6, 10, 30, 51, 901122123, time.FixedZone("CEST", 2*60*60))

// Event builders for the cases the suite needs most.

func added(account, user string, at time.Time) Event {
	return Event{Event: health.EventAccountsAdded, AccountID: account, UserID: user, ReceivedAt: at}
}

// connected carries a resource that was scanned, as the provider sends it.
func connected(account, user string, at time.Time) Event {
	return Event{Event: health.EventAccountsConnected, AccountID: account, UserID: user, ReceivedAt: at,
		Resource: &Resource{Status: health.ConnectionConnected, UpdatedAt: at.Add(-time.Second), ScannedAt: at.Add(-time.Second)}}
}

// rescanned is accounts.updated of a connected account that a scan a
// second before at found refreshing, every dataset it names synced.
func rescanned(account, user string, at time.Time, synced ...string) Event {
	e := connected(account, user, at)
	e.Event = health.EventAccountsUpdated
	e.Resource.Synced = synced
	return e
}

// syncFailed is rescanned with the datasets failed to sync.
func syncFailed(account, user string, at time.Time, datasets ...string) Event {
	e := rescanned(account, user, at)
	e.Resource.Failed = datasets
	return e
}

// refreshDisabled is rescanned with the ongoing refresh disabled.
func refreshDisabled(account, user string, at time.Time) Event {
	return disabledRefresh(rescanned(account, user, at))
}

// disabledRefresh is e, whose account object says the ongoing refresh is
// disabled.
func disabledRefresh(e Event) Event {
	r := *e.Resource
	r.Refresh = health.RefreshDisabled
	e.Resource = &r
	return e
}

// failed carries the code in data, without a resource (include_resource off).
func failed(account, user, code string, at time.Time) Event {
	return Event{Event: health.EventAccountsFailed, AccountID: account, UserID: user, ReceivedAt: at,
		ErrorCode: code, ErrorMessage: "The login failed: " + code + "."}
}

// failedWithResource carries the resource in its failed-auth state.
func failedWithResource(account, user, code string, at time.Time) Event {
	e := failed(account, user, code, at)
	e.Resource = &Resource{Status: health.ConnectionError, ErrorCode: code, ErrorMessage: e.ErrorMessage, UpdatedAt: at.Add(-time.Second)}
	return e
}

// updatedError reports a connection error found on a scan.
func updatedError(account, user, code string, at time.Time) Event {
	return Event{Event: health.EventAccountsUpdated, AccountID: account, UserID: user, ReceivedAt: at,
		Resource: &Resource{Status: health.ConnectionError, ErrorCode: code, ErrorMessage: "Connection error: " + code + ".",
			UpdatedAt: at.Add(-time.Second), ScannedAt: at.Add(-time.Hour)}}
}

// updatedLean is accounts.updated without a resource.
func updatedLean(account, user string, at time.Time) Event {
	return Event{Event: health.EventAccountsUpdated, AccountID: account, UserID: user, ReceivedAt: at}
}

func removed(account, user string, at time.Time) Event {
	return Event{Event: health.EventAccountsRemoved, AccountID: account, UserID: user, ReceivedAt: at}
}

// itemsUpdated reports an item's status.
func itemsUpdated(item, status string, at time.Time) Event {
	return Event{Event: health.EventItemsUpdated, Item: item, ItemStatus: status, ReceivedAt: at}
}

func paystubsAdded(account, user string, at time.Time) Event {
	return Event{Event: "paystubs.added", AccountID: account, UserID: user, ReceivedAt: at,
		Data: map[string]any{"available_from": "2026-10-17T00:00:00Z", "available_to": "2026-10-31T00:00:00Z", "available_count": 1}}
}

func usersFullySynced(user string, at time.Time) Event {
	return Event{Event: "users.fully_synced", UserID: user, ReceivedAt: at,
		Data: map[string]any{"resource": map[string]any{"id": user}}}
}

// model replays deliveries through health.Apply: what a store must end up
// holding, whatever the health rules are.
type model map[string]health.Record

func (m model) apply(ds ...store.Delivery) []health.Result {
	out := make([]health.Result, len(ds))
	for i, d := range ds {
		id := d.Decoded.AccountID
		out[i] = health.Apply(m[id], d.Decoded)
		if out[i].Record.State != health.StateUnknown {
			m[id] = out[i].Record
		}
	}
	return out
}

// diff describes how got differs from want, "" when it does not. Times are
// compared as instants (a store may return another location), byte slices
// by content (nil equals empty), everything else exactly.
func diff(want, got any) string {
	var out []string
	diffValue("", reflect.ValueOf(want), reflect.ValueOf(got), &out)
	return strings.Join(out, "\n")
}

var timeType = reflect.TypeFor[time.Time]()

func diffValue(path string, w, g reflect.Value, out *[]string) {
	report := func() { *out = append(*out, fmt.Sprintf("%s: want %v, got %v", path, w, g)) }
	switch {
	case w.Type() == timeType:
		if !w.Interface().(time.Time).Equal(g.Interface().(time.Time)) {
			report()
		}
	case w.Kind() == reflect.Struct:
		for i := range w.NumField() {
			diffValue(path+"."+w.Type().Field(i).Name, w.Field(i), g.Field(i), out)
		}
	case w.Kind() == reflect.Pointer:
		if w.IsNil() || g.IsNil() {
			if w.IsNil() != g.IsNil() {
				report()
			}
			return
		}
		diffValue(path, w.Elem(), g.Elem(), out)
	case w.Type() == reflect.TypeFor[[]byte]():
		if !bytes.Equal(w.Bytes(), g.Bytes()) {
			*out = append(*out, fmt.Sprintf("%s: want %q, got %q", path, w.Bytes(), g.Bytes()))
		}
	case w.Kind() == reflect.Slice:
		if w.Len() != g.Len() {
			*out = append(*out, fmt.Sprintf("%s: want %d elements, got %d", path, w.Len(), g.Len()))
			return
		}
		for i := range w.Len() {
			diffValue(fmt.Sprintf("%s[%d]", path, i), w.Index(i), g.Index(i), out)
		}
	case !reflect.DeepEqual(w.Interface(), g.Interface()):
		report()
	}
}

// zeroFields names the fields of v (a struct, nested structs walked) that
// hold their zero value.
func zeroFields(v any) []string {
	var out []string
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		if v.Kind() == reflect.Struct && v.Type() != timeType {
			for i := range v.NumField() {
				walk(path+"."+v.Type().Field(i).Name, v.Field(i))
			}
			return
		}
		if v.IsZero() {
			out = append(out, path)
		}
	}
	walk("", reflect.ValueOf(v))
	return out
}
