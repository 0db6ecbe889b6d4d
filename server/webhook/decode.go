package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
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
		Account      string `json:"account"`
		User         string `json:"user"`
		ErrorCode    string `json:"error_code"`
		ErrorMessage string `json:"error_message"`
		// Resource stays raw: it is stored as delivered, and only read
		// further when it is an object.
		Resource json.RawMessage `json:"resource"`
	} `json:"data"`
}

// resource is the part of data.resource we read. Unlike the envelope, a
// value of the wrong type or format here is treated as absent rather than
// refused: the object belongs to the provider, which changes it without
// notice, and refusing the delivery would lose the event itself for a detail
// the health model can do without.
type resource struct {
	ID         lenient[string]     `json:"id"`
	User       lenient[string]     `json:"user"`
	UpdatedAt  lenient[time.Time]  `json:"updated_at"`
	ScannedAt  lenient[time.Time]  `json:"scanned_at"`
	Connection lenient[connection] `json:"connection"`
}

type connection struct {
	Status       lenient[string]    `json:"status"`
	ErrorCode    lenient[string]    `json:"error_code"`
	ErrorMessage lenient[string]    `json:"error_message"`
	UpdatedAt    lenient[time.Time] `json:"updated_at"`
}

// lenient holds a T decoded from JSON, or T's zero value when the JSON is
// null or cannot be decoded as a T. For time.Time that means an RFC 3339
// string; any other timestamp format reads as absent.
type lenient[T any] struct{ v T }

func (l *lenient[T]) UnmarshalJSON(b []byte) error {
	var v T
	if json.Unmarshal(b, &v) == nil {
		l.v = v
	}
	return nil
}

// Decode decodes a verified delivery body. receivedAt is when the service
// accepted it; the body itself carries no time of sending.
//
// The envelope is strict: the body must be a JSON object with a non-empty
// string "event"; "name" and data's "account", "user", "error_code" and
// "error_message" must be strings or null; "data" must be an object or null.
// Everything else is tolerated: unknown fields and event types, and inside
// data.resource any value we cannot read (see resource).
func Decode(body []byte, receivedAt time.Time) (Envelope, error) {
	var d delivery
	if err := json.Unmarshal(body, &d); err != nil {
		return Envelope{}, malformed(body, err)
	}
	if !isObject(body) {
		// Only a top-level null gets here: encoding/json accepts it.
		return Envelope{}, fmt.Errorf("%w: body must be a JSON object", ErrMalformed)
	}
	if d.Event == "" {
		return Envelope{}, fmt.Errorf("%w: %q is missing or empty", ErrMalformed, "event")
	}

	accountEvent := strings.HasPrefix(d.Event, accountsPrefix)
	var res resource
	if isObject(d.Data.Resource) {
		// Cannot fail: the bytes are a valid object and lenient fields
		// never return an error.
		_ = json.Unmarshal(d.Data.Resource, &res)
	}
	del := health.Delivery{
		Event:      d.Event,
		AccountID:  d.Data.Account,
		UserID:     cmp.Or(d.Data.User, res.User.v),
		ReceivedAt: receivedAt,
	}
	var conn connection
	if accountEvent && isObject(d.Data.Resource) {
		conn = res.Connection.v
		del.AccountID = cmp.Or(del.AccountID, res.ID.v)
		del.Snapshot = &health.Snapshot{
			ConnectionStatus:       conn.Status.v,
			ConnectionErrorCode:    conn.ErrorCode.v,
			ConnectionErrorMessage: conn.ErrorMessage.v,
			ConnectionUpdatedAt:    conn.UpdatedAt.v.UTC(),
			UpdatedAt:              res.UpdatedAt.v.UTC(),
			ScannedAt:              res.ScannedAt.v.UTC(),
			Raw:                    d.Data.Resource,
		}
	}
	del.ErrorCode = cmp.Or(d.Data.ErrorCode, conn.ErrorCode.v)
	del.ErrorMessage = cmp.Or(d.Data.ErrorMessage, conn.ErrorMessage.v)
	return Envelope{Event: d.Event, Name: d.Name, Delivery: del}, nil
}

// isObject reports whether the JSON value b is an object. b must be valid
// JSON, possibly empty.
func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// malformed turns an encoding/json error into an ErrMalformed naming the
// field at fault.
func malformed(body []byte, err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("%w: body is not valid JSON: %v", ErrMalformed, syntaxErr)
	case !isObject(body):
		return fmt.Errorf("%w: body must be a JSON object, got %s", ErrMalformed, typeErr.Value)
	case errors.As(err, &typeErr):
		want := "a string"
		if typeErr.Type.Kind() == reflect.Struct {
			want = "an object"
		}
		return fmt.Errorf("%w: %q must be %s or null, got %s", ErrMalformed, typeErr.Field, want, typeErr.Value)
	default:
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
}
