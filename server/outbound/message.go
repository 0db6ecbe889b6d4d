// Package outbound turns committed transitions into the messages that
// outbound consumers receive: the JSON body, type and stable id that signed
// webhooks (Standard Webhooks) and the JetStream export both send. One
// encoding for both, so a consumer that moves from one to the other reads
// the same thing.
package outbound

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/stream"
)

// Message types: what happened to the account, as receivers branch on it.
const (
	TypeDisconnected = "account.disconnected"
	TypeAuthFailed   = "account.auth_failed"
	TypeDegraded     = "account.degraded"
	TypeRemoved      = "account.removed"
	TypeRecovered    = "account.recovered"
	// TypeRemedyRestored: the outage of the account's payroll platform
	// ended and the account still needs someone to act: its usual remedy
	// (e.g. reconnect) holds again.
	TypeRemedyRestored = "account.remedy_restored"
	// TypeItemOutageBegan and TypeItemOutageEnded are about a payroll
	// platform (item), not an account: its accounts' failures are the
	// platform's, not the users' to fix, while it lasts.
	TypeItemOutageBegan = "item.outage_began"
	TypeItemOutageEnded = "item.outage_ended"
	// TypeDataStale and TypeDataFresh: a HEALTHY account's data stopped
	// arriving (stale, refresh disabled, datasets failing to sync; data
	// freshness says which) or is fresh again. The user need not act.
	TypeDataStale = "account.data_stale"
	TypeDataFresh = "account.data_fresh"
)

// Types lists every message type, in the order of the transition kinds.
var Types = []string{TypeDisconnected, TypeAuthFailed, TypeDegraded, TypeRemoved, TypeRecovered,
	TypeRemedyRestored, TypeItemOutageBegan, TypeItemOutageEnded, TypeDataStale, TypeDataFresh}

// Message is one committed transition, ready to send.
type Message struct {
	// ID is stable for the transition: the same across every retry,
	// replay, restart and replica, so receivers (and JetStream's
	// deduplication) recognise a message they already have.
	ID        string
	Type      string
	Seq       int64  // the change's position in the log
	AccountID string // empty for an item-wide message
	UserID    string
	Item      string    // the account's payroll platform, or the platform an item-wide message is about
	Timestamp time.Time // when the transition occurred
	Body      []byte    // the JSON body (see Body)
}

// ItemWide reports whether m is about a payroll platform, not an account.
func (m Message) ItemWide() bool { return strings.HasPrefix(m.Type, "item.") }

// IDPrefix begins every message id, as Standard Webhooks' examples do
// ("msg_..."); the rest is the change's stream cursor.
const IDPrefix = "msg_"

// IDOf returns the id of the message for the change at seq.
func IDOf(seq int64) string { return IDPrefix + stream.EncodeCursor(seq) }

// SeqOf returns the log position a message id names, or an error wrapping
// store.ErrInvalidArgument when id is not one IDOf made.
func SeqOf(id string) (int64, error) {
	cursor, ok := strings.CutPrefix(id, IDPrefix)
	if !ok {
		return 0, fmt.Errorf("%w: message id %q does not begin with %q", store.ErrInvalidArgument, id, IDPrefix)
	}
	return stream.DecodeCursor(cursor)
}

// TypeOf returns the message type of a transition. A correction (a rebuild
// under newer rules found another state than the one announced) is typed
// by the state it corrects to, since that is what the receiver must act
// on; Body marks it corrected.
func TypeOf(t health.Transition) (string, error) {
	kind := t.Kind
	if kind == health.KindCorrected {
		kind = kindOfState(t.State)
	}
	switch kind {
	case health.KindDisconnected:
		return TypeDisconnected, nil
	case health.KindAuthFailed:
		return TypeAuthFailed, nil
	case health.KindDegraded:
		return TypeDegraded, nil
	case health.KindRemoved:
		return TypeRemoved, nil
	case health.KindRecovered:
		return TypeRecovered, nil
	case health.KindRemedyRestored:
		return TypeRemedyRestored, nil
	case health.KindItemOutageBegan:
		return TypeItemOutageBegan, nil
	case health.KindItemOutageEnded:
		return TypeItemOutageEnded, nil
	case health.KindFreshnessLost:
		return TypeDataStale, nil
	case health.KindFreshnessRestored:
		return TypeDataFresh, nil
	}
	return "", fmt.Errorf("outbound: no message type for a %v transition to %v", t.Kind, t.State)
}

// kindOfState is the kind of a transition into s, as Apply would name it.
func kindOfState(s health.State) health.Kind {
	switch s {
	case health.StateDisconnected:
		return health.KindDisconnected
	case health.StateAuthFailed:
		return health.KindAuthFailed
	case health.StateDegraded:
		return health.KindDegraded
	case health.StateRemoved:
		return health.KindRemoved
	case health.StateHealthy:
		return health.KindRecovered
	}
	return health.KindUnspecified
}

// body is the JSON a receiver gets. Its names are a public contract
// (docs/notifications.md): fields may be added, never renamed.
type body struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      data      `json:"data"`
}

type data struct {
	Cursor        string    `json:"cursor"`
	AccountID     string    `json:"account_id"`
	UserID        string    `json:"user_id"`
	Item          string    `json:"item,omitempty"`
	Kind          string    `json:"kind"`
	Corrected     bool      `json:"corrected"`
	PreviousState string    `json:"previous_state"`
	State         string    `json:"state"`
	ErrorCode     string    `json:"error_code,omitempty"`
	ErrorMessage  string    `json:"error_message,omitempty"`
	Remedy        remedy    `json:"remedy"`
	OccurredAt    time.Time `json:"occurred_at"`
	EntrySequence int64     `json:"entry_sequence"`
	EventType     string    `json:"event_type"`
	// The data freshness of a HEALTHY account after the transition, and
	// before it for freshness messages; omitted outside HEALTHY.
	Freshness         string   `json:"freshness,omitempty"`
	PreviousFreshness string   `json:"previous_freshness,omitempty"`
	FailedDatasets    []string `json:"failed_datasets,omitempty"`
}

// freshnessName is f as a body says it: omitted when it does not apply.
func freshnessName(f health.Freshness) string {
	if f == health.FreshnessUnknown {
		return ""
	}
	return f.String()
}

type remedy struct {
	Action        string `json:"action"`
	Message       string `json:"message"`
	LinkAccountID string `json:"link_account_id,omitempty"`
	LinkUserID    string `json:"link_user_id,omitempty"`
}

// New builds the message for a committed change.
func New(c store.Change) (Message, error) {
	typ, err := TypeOf(c.Transition)
	if err != nil {
		return Message{}, err
	}
	cursor := stream.EncodeCursor(c.Seq)
	at := c.OccurredAt.UTC()
	b, err := json.Marshal(body{Type: typ, Timestamp: at, Data: data{
		Cursor:        cursor,
		AccountID:     c.AccountID,
		UserID:        c.UserID,
		Item:          c.Item,
		Kind:          c.Kind.String(),
		Corrected:     c.Kind == health.KindCorrected,
		PreviousState: c.PreviousState.String(),
		State:         c.State.String(),
		ErrorCode:     c.ErrorCode,
		ErrorMessage:  strings.ToValidUTF8(c.ErrorMessage, "\uFFFD"),
		Remedy: remedy{
			Action:        c.Remedy.Action.String(),
			Message:       c.Remedy.Message,
			LinkAccountID: c.Remedy.LinkAccountID,
			LinkUserID:    c.Remedy.LinkUserID,
		},
		OccurredAt:        at,
		EntrySequence:     c.EntrySeq,
		EventType:         c.Event,
		Freshness:         freshnessName(c.Freshness),
		PreviousFreshness: freshnessName(c.PreviousFreshness),
		FailedDatasets:    c.FailedDatasets,
	}})
	if err != nil {
		return Message{}, fmt.Errorf("outbound: encoding the message for change %d: %w", c.Seq, err)
	}
	return Message{
		ID: IDPrefix + cursor, Type: typ, Seq: c.Seq,
		AccountID: c.AccountID, UserID: c.UserID, Item: c.Item, Timestamp: at, Body: b,
	}, nil
}
