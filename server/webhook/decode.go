package webhook

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/jsonstruct"
)

// ErrMalformed is wrapped by every Decode error; intake maps it to 400. The
// wrapped reason names the offending field so the sender can fix it.
var ErrMalformed = errors.New("malformed delivery")

// Envelope is one decoded delivery.
type Envelope struct {
	Event string // "event"
	// Name is "name": the name the subscriber gave its subscription. It is
	// a label, not a description of the delivery: never branch on it.
	Name     string
	Delivery health.Delivery // the facts the health model needs
}

// accountsPrefix marks the event family whose resource is an account object.
const accountsPrefix = "accounts."

// delivery is the wire shape. Only the fields we use are declared: the
// provider adds fields without notice and unknown ones must be ignored.
// Plain strings make a value of the wrong type an error, and null empty.
type delivery struct {
	Event string `json:"event"`
	Name  string `json:"name"`
	Data  struct {
		// Ids stay raw so that their text is checked as delivered (see
		// readID).
		Account      json.RawMessage `json:"account"`
		User         json.RawMessage `json:"user"`
		ErrorCode    string          `json:"error_code"`
		ErrorMessage string          `json:"error_message"`
		// Resource stays raw: it is kept as the snapshot, and only read
		// further when it is an object.
		Resource json.RawMessage `json:"resource"`
	} `json:"data"`
}

// resource is the part of data.resource we read. Unlike the envelope, a
// value of the wrong type or format here reads as absent rather than being
// refused: the object is the provider's, which changes it without notice,
// and refusing the delivery would lose the event itself over a detail the
// health model can do without (it can fetch the account instead).
type resource struct {
	ID         json.RawMessage `json:"id"`
	User       json.RawMessage `json:"user"`
	Item       json.RawMessage `json:"item"`
	UpdatedAt  lenientTime     `json:"updated_at"`
	ScannedAt  lenientTime     `json:"scanned_at"`
	Connection struct {
		Status       string      `json:"status"`
		ErrorCode    string      `json:"error_code"`
		ErrorMessage string      `json:"error_message"`
		UpdatedAt    lenientTime `json:"updated_at"`
	} `json:"connection"`
	OngoingRefresh struct {
		Status string `json:"status"`
	} `json:"ongoing_refresh"`
	// A dataset of a shape we cannot read (a status that is no string, an
	// entry that is no object) reads as having no status, and leaves the
	// others readable: encoding/json skips a value of the wrong type and
	// decodes the rest.
	Availability map[string]struct {
		Status string `json:"status"`
	} `json:"availability"`
}

// Bounds on what a snapshot keeps of availability: the provider lists ten
// datasets with short names, and a record copies the failed ones' names.
const (
	maxDatasets        = 32
	maxDatasetNameSize = 64
)

// datasets reads availability leniently: an entry that is not an object
// with a string status (null: nothing to say yet), or whose name is not
// a dataset's (see datasetName), is left out; the rest sorted by name.
func (r *resource) datasets() []health.DatasetStatus {
	var out []health.DatasetStatus
	for name, ds := range r.Availability {
		if ds.Status == "" || !datasetName(name) {
			continue
		}
		out = append(out, health.DatasetStatus{Name: name, Status: noNUL(ds.Status)})
	}
	slices.SortFunc(out, func(a, b health.DatasetStatus) int { return strings.Compare(a.Name, b.Name) })
	if len(out) > maxDatasets {
		out = out[:maxDatasets]
	}
	return out
}

// datasetName reports whether name can be a dataset's: the provider's are
// snake_case words, and a record keeps the failed ones' names as a
// comma-separated list.
func datasetName(name string) bool {
	if name == "" || len(name) > maxDatasetNameSize {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// noNUL replaces NUL, which PostgreSQL's text type refuses: a delivery
// that cannot be stored is answered 503, and lost once the provider's one
// retry fails the same way.
func noNUL(s string) string { return strings.ReplaceAll(s, "\x00", "\uFFFD") }

// lenientTime is an RFC 3339 timestamp (fractional seconds optional) that
// reads as zero when it is null or in any other format. The provider changes
// formats without notice; a delivery must not be refused for that, since
// its event and the rest of its snapshot still count. Times are normalised
// to UTC so the result does not depend on the machine's time zone.
type lenientTime struct{ t time.Time }

func (l *lenientTime) UnmarshalJSON(b []byte) error {
	var t time.Time
	if t.UnmarshalJSON(b) == nil {
		l.t = t.UTC()
	}
	return nil
}

// Decode decodes a verified delivery body. receivedAt is when the service
// accepted it; the body itself carries no time of sending.
//
// The envelope is strict: the body must be a JSON object with a non-empty
// string "event", and an accounts.* event must name its account (data.account
// or data.resource.id); "name" and data's "account", "user", "error_code" and
// "error_message" must be strings or null; "data" must be an object or null.
// Everything else is tolerated: unknown fields and event types, and inside
// data.resource any value we cannot read (see resource).
//
// Strings are valid UTF-8 without NUL: encoding/json decodes invalid UTF-8
// and lone surrogate escapes as U+FFFD, and Decode NUL. Ids are the
// exception: an account or user id that is not valid text, or holds NUL, is
// refused, naming the field (see jsonstruct.ID). The snapshot's Raw
// is data.resource as delivered or, in the rare case that readers could not
// serve that (see jsonstruct.Servable), its servable form; the body stored
// beside it keeps the exact bytes.
func Decode(body []byte, receivedAt time.Time) (Envelope, error) {
	// Checked first so that every later type error names a field.
	if !isObject(body) {
		return Envelope{}, fmt.Errorf("%w: body must be a JSON object", ErrMalformed)
	}
	var d delivery
	if err := json.Unmarshal(body, &d); err != nil {
		return Envelope{}, malformed(err)
	}
	if d.Event == "" {
		return Envelope{}, fmt.Errorf("%w: %q is missing or empty", ErrMalformed, "event")
	}

	var res resource
	hasResource := isObject(d.Data.Resource)
	if hasResource {
		// The bytes are a valid object, so the only errors possible are
		// UnmarshalTypeErrors, after which encoding/json has still decoded
		// every other field: a value of the wrong type is left absent, as
		// intended.
		_ = json.Unmarshal(d.Data.Resource, &res)
	}
	// JSON may carry NUL (\u0000); see noNUL.
	for _, s := range []*string{&d.Event, &d.Name, &d.Data.ErrorCode, &d.Data.ErrorMessage,
		&res.Connection.Status, &res.Connection.ErrorCode, &res.Connection.ErrorMessage, &res.OngoingRefresh.Status} {
		*s = noNUL(*s)
	}
	account, err := envelopeID(d.Data.Account, "data.account")
	if err != nil {
		return Envelope{}, err
	}
	user, err := envelopeID(d.Data.User, "data.user")
	if err != nil {
		return Envelope{}, err
	}
	if user == "" {
		if user, err = resourceID(res.User, "data.resource.user"); err != nil {
			return Envelope{}, err
		}
	}
	del := health.Delivery{
		Event:        d.Event,
		AccountID:    account,
		UserID:       user,
		ErrorCode:    d.Data.ErrorCode,
		ErrorMessage: d.Data.ErrorMessage,
		ReceivedAt:   receivedAt,
	}
	// Only the accounts.* family carries an account object; other events'
	// resources (users.fully_synced carries a user) are not snapshots.
	if hasResource && strings.HasPrefix(d.Event, accountsPrefix) {
		if err := readSnapshot(&del, &res, d.Data.Resource); err != nil {
			return Envelope{}, err
		}
	}
	if d.Event == health.EventItemsUpdated {
		if del.ItemReport, err = decodeItemReport(body, receivedAt); err != nil {
			return Envelope{}, err
		}
	}
	if strings.HasPrefix(d.Event, accountsPrefix) && del.AccountID == "" {
		// Every accounts.* event is about one account: without its id the
		// delivery cannot be applied, now or later.
		return Envelope{}, fmt.Errorf("%w: %q is missing or empty (an %s event names its account in data.account or data.resource.id)",
			ErrMalformed, "data.account", d.Event)
	}
	return Envelope{Event: d.Event, Name: d.Name, Delivery: del}, nil
}

// readSnapshot puts the account object res (raw as delivered) in del.
func readSnapshot(del *health.Delivery, res *resource, raw json.RawMessage) error {
	conn := res.Connection
	var err error
	if del.AccountID == "" {
		if del.AccountID, err = resourceID(res.ID, "data.resource.id"); err != nil {
			return err
		}
	}
	// v1-era accounts.failed put the error in data; v2 may only have it in
	// the account's connection.
	del.ErrorCode = cmp.Or(del.ErrorCode, conn.ErrorCode)
	del.ErrorMessage = cmp.Or(del.ErrorMessage, conn.ErrorMessage)
	item, err := resourceID(res.Item, "data.resource.item")
	if err != nil {
		return err
	}
	del.Snapshot = &health.Snapshot{
		Item:                   item,
		ConnectionStatus:       conn.Status,
		ConnectionErrorCode:    conn.ErrorCode,
		ConnectionErrorMessage: conn.ErrorMessage,
		ConnectionUpdatedAt:    conn.UpdatedAt.t,
		UpdatedAt:              res.UpdatedAt.t,
		ScannedAt:              res.ScannedAt.t,
		RefreshStatus:          res.OngoingRefresh.Status,
		Datasets:               res.datasets(),
		Raw:                    jsonstruct.Servable(raw),
	}
	return nil
}

// itemData is the part of an items.updated data we read. As in the
// account object, a value of the wrong type reads as absent, except the
// item's id: a report that names no item cannot be applied, now or later.
type itemData struct {
	Data struct {
		Item          json.RawMessage `json:"item"`
		Name          string          `json:"name"`
		Status        string          `json:"status"`
		StatusDetails string          `json:"status_details"`
	} `json:"data"`
}

// decodeItemReport reads what an items.updated says of its item.
func decodeItemReport(body []byte, receivedAt time.Time) (*health.ItemReport, error) {
	var d itemData
	// As in Decode, only UnmarshalTypeErrors are possible here.
	_ = json.Unmarshal(body, &d)
	item, err := envelopeID(d.Data.Item, "data.item")
	if err != nil {
		return nil, err
	}
	if item == "" {
		return nil, fmt.Errorf("%w: %q is missing or empty (an %s event names its item)", ErrMalformed, "data.item", health.EventItemsUpdated)
	}
	rep := &health.ItemReport{Item: item, Name: d.Data.Name, Status: d.Data.Status, Details: d.Data.StatusDetails, ReceivedAt: receivedAt}
	for _, s := range []*string{&rep.Name, &rep.Status, &rep.Details} {
		*s = health.CapMessage(strings.ReplaceAll(*s, "\x00", "\uFFFD"))
	}
	return rep, nil
}

// envelopeID reads data.account or data.user, which must be a string or
// null.
func envelopeID(raw json.RawMessage, field string) (string, error) {
	id, err := readID(raw, field)
	if typeErr, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return "", malformed(typeErr)
	}
	return id, err
}

// resourceID reads an id of the account object, where a value of the
// wrong type reads as absent, as the rest of the object does.
func resourceID(raw json.RawMessage, field string) (string, error) {
	id, err := readID(raw, field)
	if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return "", nil
	}
	return id, err
}

// readID reads an id as delivered, "" when absent or null. An id is never
// repaired as other text is: the repaired text would name a different
// account (and two different bad ids the same one), so a delivery whose id
// cannot be read as written is refused, though its state change is lost;
// a real id never holds such text.
func readID(raw json.RawMessage, field string) (string, error) {
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", nil
	case raw[0] != '"':
		return "", &json.UnmarshalTypeError{Value: jsonType(raw), Type: reflect.TypeFor[string](), Field: field}
	}
	id, err := jsonstruct.ID(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v; an id is used as written, never repaired", ErrMalformed, field, err)
	}
	return id, nil
}

// jsonType names the type of raw, a JSON value other than a string or
// null, as encoding/json's errors do.
func jsonType(raw json.RawMessage) string {
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	}
	return "number"
}

// isObject reports whether the JSON text b starts an object. It does not
// validate b.
func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// malformed turns an encoding/json error into an ErrMalformed naming the
// field at fault.
func malformed(err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("%w: body is not valid JSON: %v", ErrMalformed, syntaxErr)
	case errors.As(err, &typeErr):
		want := "a string"
		if typeErr.Type.Kind() == reflect.Struct {
			want = "an object"
		}
		return fmt.Errorf("%w: %q must be %s, got %s", ErrMalformed, typeErr.Field, want, typeErr.Value)
	default:
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
}
