package service

import (
	"context"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/jsonstruct"
	"github.com/accounthealth/accounthealth/server/store"
)

// Tables from the health package's enums to the API's, indexed by the
// health value; lookup turns anything out of range into UNSPECIFIED (the
// zero value) rather than a wrong value.
var (
	statesToProto = []ahv1.HealthState{
		health.StateConnecting:   ahv1.HealthState_HEALTH_STATE_CONNECTING,
		health.StateHealthy:      ahv1.HealthState_HEALTH_STATE_HEALTHY,
		health.StateAuthFailed:   ahv1.HealthState_HEALTH_STATE_AUTH_FAILED,
		health.StateDisconnected: ahv1.HealthState_HEALTH_STATE_DISCONNECTED,
		health.StateDegraded:     ahv1.HealthState_HEALTH_STATE_DEGRADED,
		health.StateRemoved:      ahv1.HealthState_HEALTH_STATE_REMOVED,
	}
	actionsToProto = []ahv1.RemedyAction{
		health.ActionNone:                   ahv1.RemedyAction_REMEDY_ACTION_NONE,
		health.ActionWait:                   ahv1.RemedyAction_REMEDY_ACTION_WAIT,
		health.ActionReconnect:              ahv1.RemedyAction_REMEDY_ACTION_RECONNECT,
		health.ActionUpdateCredentials:      ahv1.RemedyAction_REMEDY_ACTION_UPDATE_CREDENTIALS,
		health.ActionRetryLogin:             ahv1.RemedyAction_REMEDY_ACTION_RETRY_LOGIN,
		health.ActionRetryMFA:               ahv1.RemedyAction_REMEDY_ACTION_RETRY_MFA,
		health.ActionContactPayrollProvider: ahv1.RemedyAction_REMEDY_ACTION_CONTACT_PAYROLL_PROVIDER,
		health.ActionConnectNewAccount:      ahv1.RemedyAction_REMEDY_ACTION_CONNECT_NEW_ACCOUNT,
	}
	kindsToProto = []ahv1.TransitionKind{
		health.KindDisconnected:      ahv1.TransitionKind_TRANSITION_KIND_DISCONNECTED,
		health.KindAuthFailed:        ahv1.TransitionKind_TRANSITION_KIND_AUTH_FAILED,
		health.KindDegraded:          ahv1.TransitionKind_TRANSITION_KIND_DEGRADED,
		health.KindRemoved:           ahv1.TransitionKind_TRANSITION_KIND_REMOVED,
		health.KindRecovered:         ahv1.TransitionKind_TRANSITION_KIND_RECOVERED,
		health.KindCorrected:         ahv1.TransitionKind_TRANSITION_KIND_CORRECTED,
		health.KindRemedyRestored:    ahv1.TransitionKind_TRANSITION_KIND_REMEDY_RESTORED,
		health.KindItemOutageBegan:   ahv1.TransitionKind_TRANSITION_KIND_ITEM_OUTAGE_BEGAN,
		health.KindItemOutageEnded:   ahv1.TransitionKind_TRANSITION_KIND_ITEM_OUTAGE_ENDED,
		health.KindFreshnessLost:     ahv1.TransitionKind_TRANSITION_KIND_FRESHNESS_LOST,
		health.KindFreshnessRestored: ahv1.TransitionKind_TRANSITION_KIND_FRESHNESS_RESTORED,
	}
	freshnessToProto = []ahv1.FreshnessStatus{
		health.FreshnessFresh:           ahv1.FreshnessStatus_FRESHNESS_STATUS_FRESH,
		health.FreshnessStale:           ahv1.FreshnessStatus_FRESHNESS_STATUS_STALE,
		health.FreshnessRefreshDisabled: ahv1.FreshnessStatus_FRESHNESS_STATUS_REFRESH_DISABLED,
		health.FreshnessSyncFailed:      ahv1.FreshnessStatus_FRESHNESS_STATUS_SYNC_FAILED,
	}
	outcomesToProto = []ahv1.DeliveryOutcome{
		health.OutcomeApplied:         ahv1.DeliveryOutcome_DELIVERY_OUTCOME_APPLIED,
		health.OutcomeStale:           ahv1.DeliveryOutcome_DELIVERY_OUTCOME_STALE,
		health.OutcomeAfterRemoval:    ahv1.DeliveryOutcome_DELIVERY_OUTCOME_AFTER_REMOVAL,
		health.OutcomeUnconfirmed:     ahv1.DeliveryOutcome_DELIVERY_OUTCOME_UNCONFIRMED,
		health.OutcomeNotAccountEvent: ahv1.DeliveryOutcome_DELIVERY_OUTCOME_NOT_ACCOUNT_EVENT,
		health.OutcomeDuplicate:       ahv1.DeliveryOutcome_DELIVERY_OUTCOME_DUPLICATE,
	}
)

func lookup[K ~int, V any](table []V, k K) V {
	var zero V
	if k < 0 || int(k) >= len(table) {
		return zero
	}
	return table[k]
}

func stateToProto(s health.State) ahv1.HealthState         { return lookup(statesToProto, s) }
func actionToProto(a health.Action) ahv1.RemedyAction      { return lookup(actionsToProto, a) }
func kindToProto(k health.Kind) ahv1.TransitionKind        { return lookup(kindsToProto, k) }
func outcomeToProto(o health.Outcome) ahv1.DeliveryOutcome { return lookup(outcomesToProto, o) }
func freshnessStatusToProto(f health.Freshness) ahv1.FreshnessStatus {
	return lookup(freshnessToProto, f)
}

// stateFromProto maps a filter value; ok is false for UNSPECIFIED and for
// numbers this server does not know.
func stateFromProto(s ahv1.HealthState) (health.State, bool) {
	for st, p := range statesToProto {
		if p == s && p != ahv1.HealthState_HEALTH_STATE_UNSPECIFIED {
			return health.State(st), true
		}
	}
	return health.StateUnknown, false
}

// freshnessFromProto maps a filter value; ok is false for UNSPECIFIED and
// for numbers this server does not know.
func freshnessFromProto(f ahv1.FreshnessStatus) (health.Freshness, bool) {
	i := slices.Index(freshnessToProto, f)
	if i <= 0 {
		return health.FreshnessUnknown, false
	}
	return health.Freshness(i), true
}

// freshnessToProtoMessage is a record's freshness, nil outside HEALTHY.
func freshnessToProtoMessage(r health.Record) *ahv1.Freshness {
	if r.Freshness == health.FreshnessUnknown {
		return nil
	}
	return &ahv1.Freshness{
		Status:          freshnessStatusToProto(r.Freshness),
		Since:           timeToProto(r.FreshnessSince),
		FailedDatasets:  r.FailedDatasets,
		ScannedAt:       timeToProto(r.ScannedAt),
		FreshAsOf:       timeToProto(r.FreshAsOf),
		RefreshDisabled: r.RefreshDisabled,
		Message:         health.FreshnessMessage(r.Freshness),
	}
}

// text is s for a response. A proto string field must be valid UTF-8, or
// the whole response fails to encode: intake stores only valid strings, and
// this covers rows written otherwise, with no copy when s is valid.
func text(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func remedyToProto(r health.Remedy) *ahv1.Remedy {
	out := &ahv1.Remedy{Action: actionToProto(r.Action), Message: text(r.Message)}
	if r.LinkUserID != "" || r.LinkAccountID != "" {
		out.Link = &ahv1.LinkParameters{UserId: text(r.LinkUserID), AccountId: text(r.LinkAccountID)}
	}
	return out
}

func timeToProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// setJSONField gives m the Struct field named field, converted from stored
// JSON, a snapshot or a delivery's exact bytes. jsonstruct
// serves any JSON object; other bytes, which intake never stores, leave the
// field out with a warning rather than fail a response that may hold other
// accounts.
//
// The field goes in as its wire encoding, among m's unknown fields, which
// the codec sends as they are and every reader decodes as the field (the
// REST gateway too: it is a gRPC client). Building the Struct to have it
// encoded was most of what a read cost; the price is that m read in this
// process lacks the field, so m is only for sending.
func (s *AccountHealthService) setJSONField(ctx context.Context, m proto.Message, field protoreflect.Name, accountID string, raw []byte) {
	if len(raw) == 0 {
		return
	}
	st, err := jsonstruct.AppendWire(nil, raw)
	if err != nil {
		s.logger.WarnContext(ctx, "stored JSON is not an object; served without it", "field", field, "account", accountID, "error", err)
		return
	}
	r := m.ProtoReflect()
	b := protowire.AppendTag(make([]byte, 0, len(st)+16), r.Descriptor().Fields().ByName(field).Number(), protowire.BytesType)
	r.SetUnknown(protowire.AppendBytes(b, st))
}

func (s *AccountHealthService) recordToProto(ctx context.Context, r health.Record) *ahv1.AccountHealth {
	out := &ahv1.AccountHealth{
		AccountId:           text(r.AccountID),
		UserId:              text(r.UserID),
		State:               stateToProto(r.State),
		ErrorCode:           text(r.ErrorCode),
		ErrorMessage:        text(r.ErrorMessage),
		Remedy:              remedyToProto(r.Remedy),
		StateSince:          timeToProto(r.StateSince),
		LastEventType:       text(r.LastEventType),
		LastEventAt:         timeToProto(r.LastEventAt),
		ConsecutiveFailures: int32(r.ConsecutiveFailures),
		EverConnected:       r.EverConnected,
		Unconfirmed:         r.Unconfirmed,
		LastSnapshotAt:      timeToProto(r.SnapshotAt),
		ConfirmedAt:         timeToProto(r.ConfirmedAt),
		Item:                text(r.Item),
		Freshness:           freshnessToProtoMessage(r),
	}
	s.setJSONField(ctx, out, "last_snapshot", r.AccountID, r.Snapshot)
	return out
}

func transitionToProto(t health.Transition) *ahv1.HealthTransition {
	return &ahv1.HealthTransition{
		Kind:              kindToProto(t.Kind),
		PreviousState:     stateToProto(t.PreviousState),
		State:             stateToProto(t.State),
		ErrorCode:         text(t.ErrorCode),
		ErrorMessage:      text(t.ErrorMessage),
		Remedy:            remedyToProto(t.Remedy),
		OccurredAt:        timeToProto(t.OccurredAt),
		Freshness:         freshnessStatusToProto(t.Freshness),
		PreviousFreshness: freshnessStatusToProto(t.PreviousFreshness),
		FailedDatasets:    t.FailedDatasets,
	}
}

func (s *AccountHealthService) entryToProto(ctx context.Context, e store.Entry) *ahv1.AccountEvent {
	out := &ahv1.AccountEvent{
		Sequence:         e.Seq,
		Source:           text(string(e.Source)),
		EventType:        text(e.Event),
		SubscriptionName: text(e.Name),
		ReceivedAt:       timeToProto(e.ReceivedAt),
		Outcome:          outcomeToProto(e.Outcome),
		Redeliveries:     int32(e.Redeliveries),
		Actor:            text(e.Actor),
	}
	s.setJSONField(ctx, out, "payload", e.AccountID, e.Body)
	if e.Change != nil {
		out.Transition = transitionToProto(e.Change.Transition)
	}
	return out
}
