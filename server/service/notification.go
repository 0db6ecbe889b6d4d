package service

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/notify"
	"github.com/accounthealth/accounthealth/server/outbound"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/stream"
)

// NotificationService serves the outbound webhook endpoints: it
// translates requests for the notify package, which decides.
type NotificationService struct {
	ahv1.UnimplementedNotificationServiceServer
	notifier *notify.Notifier
	logger   *slog.Logger
}

var _ ahv1.NotificationServiceServer = (*NotificationService)(nil)

func (s *NotificationService) fail(ctx context.Context, err error) error {
	return toStatus(ctx, s.logger, err)
}

func (s *NotificationService) CreateEndpoint(ctx context.Context, req *ahv1.CreateEndpointRequest) (*ahv1.CreateEndpointResponse, error) {
	filter, err := filterFromProto(req.GetFilter())
	if err != nil {
		return nil, err
	}
	e, secret, err := s.notifier.Create(ctx, notify.Spec{
		URL: req.GetUrl(), Description: req.GetDescription(), Filter: filter,
		RateLimit: req.GetRateLimit(), Concurrency: int(req.GetConcurrency()),
	})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &ahv1.CreateEndpointResponse{Endpoint: s.endpointToProto(ctx, e), Secret: secret}, nil
}

func (s *NotificationService) GetEndpoint(ctx context.Context, req *ahv1.GetEndpointRequest) (*ahv1.GetEndpointResponse, error) {
	e, err := s.notifier.Get(ctx, req.GetId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	backlogs, err := s.backlogs(ctx)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := s.endpointToProto(ctx, e)
	out.Backlog = cmp.Or(backlogs[e.ID], &ahv1.EndpointBacklog{})
	return &ahv1.GetEndpointResponse{Endpoint: out}, nil
}

func (s *NotificationService) ListEndpoints(ctx context.Context, _ *ahv1.ListEndpointsRequest) (*ahv1.ListEndpointsResponse, error) {
	es, err := s.notifier.List(ctx)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	backlogs, err := s.backlogs(ctx)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &ahv1.ListEndpointsResponse{}
	for _, e := range es {
		ep := s.endpointToProto(ctx, e)
		ep.Backlog = cmp.Or(backlogs[e.ID], &ahv1.EndpointBacklog{})
		out.Endpoints = append(out.Endpoints, ep)
	}
	return out, nil
}

// backlogs is the backlog of every endpoint with one, by id.
func (s *NotificationService) backlogs(ctx context.Context) (map[string]*ahv1.EndpointBacklog, error) {
	stats, err := s.notifier.Stats(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*ahv1.EndpointBacklog, len(stats))
	for _, st := range stats {
		out[st.EndpointID] = &ahv1.EndpointBacklog{
			Pending: int32(st.Pending), Retrying: int32(st.Retrying), DeadLetters: int32(st.Exhausted),
			OldestPendingAt: timeToProto(st.OldestAt),
		}
	}
	return out, nil
}

func (s *NotificationService) UpdateEndpoint(ctx context.Context, req *ahv1.UpdateEndpointRequest) (*ahv1.UpdateEndpointResponse, error) {
	var filter stream.Filter
	if req.Filter != nil {
		var err error
		if filter, err = filterFromProto(req.GetFilter()); err != nil {
			return nil, err
		}
	}
	e, err := s.notifier.Update(ctx, req.GetId(), func(sp *notify.Spec) {
		if req.Url != nil {
			sp.URL = req.GetUrl()
		}
		if req.Description != nil {
			sp.Description = req.GetDescription()
		}
		if req.Filter != nil {
			sp.Filter = filter
		}
		if req.RateLimit != nil {
			sp.RateLimit = req.GetRateLimit()
		}
		if req.Concurrency != nil {
			sp.Concurrency = int(req.GetConcurrency())
		}
	})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &ahv1.UpdateEndpointResponse{Endpoint: s.endpointToProto(ctx, e)}, nil
}

func (s *NotificationService) DisableEndpoint(ctx context.Context, req *ahv1.DisableEndpointRequest) (*ahv1.DisableEndpointResponse, error) {
	e, err := s.notifier.SetDisabled(ctx, req.GetId(), true, "disabled through the API by "+callerName(ctx))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &ahv1.DisableEndpointResponse{Endpoint: s.endpointToProto(ctx, e)}, nil
}

func (s *NotificationService) EnableEndpoint(ctx context.Context, req *ahv1.EnableEndpointRequest) (*ahv1.EnableEndpointResponse, error) {
	e, err := s.notifier.SetDisabled(ctx, req.GetId(), false, "")
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &ahv1.EnableEndpointResponse{Endpoint: s.endpointToProto(ctx, e)}, nil
}

func (s *NotificationService) DeleteEndpoint(ctx context.Context, req *ahv1.DeleteEndpointRequest) (*ahv1.DeleteEndpointResponse, error) {
	if err := s.notifier.Delete(ctx, req.GetId()); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &ahv1.DeleteEndpointResponse{}, nil
}

func (s *NotificationService) RotateEndpointSecret(ctx context.Context, req *ahv1.RotateEndpointSecretRequest) (*ahv1.RotateEndpointSecretResponse, error) {
	overlap := time.Duration(0) // the default
	if req.Overlap != nil {
		if err := req.GetOverlap().CheckValid(); err != nil || req.GetOverlap().AsDuration() < 0 {
			return nil, invalidArgument("overlap", "must be a duration of 0 or more")
		}
		overlap = req.GetOverlap().AsDuration()
		if overlap == 0 {
			overlap = -1 // no overlap at all
		}
	}
	e, secret, err := s.notifier.RotateSecret(ctx, req.GetId(), overlap)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &ahv1.RotateEndpointSecretResponse{Endpoint: s.endpointToProto(ctx, e), Secret: secret}, nil
}

func (s *NotificationService) SendTestMessage(ctx context.Context, req *ahv1.SendTestMessageRequest) (*ahv1.SendTestMessageResponse, error) {
	a, id, err := s.notifier.SendTest(ctx, req.GetId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &ahv1.SendTestMessageResponse{Attempt: attemptToProto(a, id)}, nil
}

func (s *NotificationService) ListMessages(ctx context.Context, req *ahv1.ListMessagesRequest) (*ahv1.ListMessagesResponse, error) {
	r, err := timeRange(req.GetSince(), req.GetUntil())
	if err != nil {
		return nil, err
	}
	if err := checkPageSize(req.GetPageSize()); err != nil {
		return nil, err
	}
	q := store.MessageQuery{EndpointID: req.GetEndpointId(), Range: r, PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()}
	for _, st := range req.GetStatuses() {
		if st == ahv1.MessageStatus_MESSAGE_STATUS_UNSPECIFIED || ahv1.MessageStatus_name[int32(st)] == "" {
			return nil, invalidArgument("statuses", "contains "+st.String()+", which is not a message status")
		}
		q.Statuses = append(q.Statuses, store.MessageStatus(st))
	}
	page, err := s.notifier.ListMessages(ctx, q)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &ahv1.ListMessagesResponse{NextPageToken: page.NextPageToken}
	for _, m := range page.Messages {
		pm := &ahv1.OutboundMessage{
			Id: outbound.IDOf(m.Seq), EndpointId: m.EndpointID, Type: m.Type, AccountId: m.AccountID,
			Status: ahv1.MessageStatus(m.Status), Attempts: int32(m.Attempts), LastError: m.LastError,
			OccurredAt: timeToProto(m.OccurredAt), CreatedAt: timeToProto(m.CreatedAt),
		}
		if m.Status == store.MessagePending {
			pm.NextAttemptAt = timeToProto(m.NextAt)
		}
		out.Messages = append(out.Messages, pm)
	}
	return out, nil
}

func (s *NotificationService) ListAttempts(ctx context.Context, req *ahv1.ListAttemptsRequest) (*ahv1.ListAttemptsResponse, error) {
	r, err := timeRange(req.GetSince(), req.GetUntil())
	if err != nil {
		return nil, err
	}
	if err := checkPageSize(req.GetPageSize()); err != nil {
		return nil, err
	}
	q := store.AttemptQuery{EndpointID: req.GetEndpointId(), Range: r, PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()}
	if req.GetMessageId() != "" {
		if q.Seq, err = outbound.SeqOf(req.GetMessageId()); err != nil {
			return nil, invalidArgument("message_id", "is not a message id this service issued")
		}
	}
	page, err := s.notifier.ListAttempts(ctx, q)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &ahv1.ListAttemptsResponse{NextPageToken: page.NextPageToken}
	for _, a := range page.Attempts {
		out.Attempts = append(out.Attempts, attemptToProto(a, outbound.IDOf(a.Seq)))
	}
	return out, nil
}

func (s *NotificationService) ReplayMessages(ctx context.Context, req *ahv1.ReplayMessagesRequest) (*ahv1.ReplayMessagesResponse, error) {
	if req.GetSince() == nil || req.GetSince().CheckValid() != nil {
		return nil, invalidArgument("since", "is required: replay the messages of transitions that occurred at or after it")
	}
	n, err := s.notifier.Replay(ctx, req.GetEndpointId(), req.GetSince().AsTime())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &ahv1.ReplayMessagesResponse{Requeued: int32(n)}, nil
}

func (s *NotificationService) RetryMessage(ctx context.Context, req *ahv1.RetryMessageRequest) (*ahv1.RetryMessageResponse, error) {
	if err := s.notifier.Retry(ctx, req.GetEndpointId(), req.GetMessageId()); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &ahv1.RetryMessageResponse{}, nil
}

// filterFromProto checks a filter's user ids and kinds as
// StreamDisconnections does; notify checks the rest.
func filterFromProto(f *ahv1.EndpointFilter) (stream.Filter, error) {
	out, err := streamFilter(f.GetUserIds(), f.GetKinds(), f.GetErrorCodes(), f.GetIncludeRecoveries())
	out.IncludeItemEvents, out.IncludeFreshnessEvents = f.GetIncludeItemEvents(), f.GetIncludeFreshnessEvents()
	return out, err
}

// streamFilter is the filter of StreamDisconnections and of endpoints.
func streamFilter(userIDs []string, kinds []ahv1.TransitionKind, codes []string, recoveries bool) (stream.Filter, error) {
	for _, id := range userIDs {
		if err := checkID("user_ids", id, true); err != nil {
			return stream.Filter{}, err
		}
	}
	f := stream.Filter{UserIDs: userIDs, ErrorCodes: codes, IncludeRecoveries: recoveries}
	for _, k := range kinds {
		i := slices.Index(kindsToProto, k)
		if i <= 0 {
			return stream.Filter{}, invalidArgument("kinds", "contains "+k.String()+", which is not a transition kind")
		}
		f.Kinds = append(f.Kinds, health.Kind(i))
	}
	return f, nil
}

func timeRange(since, until *timestamppb.Timestamp) (store.TimeRange, error) {
	var r store.TimeRange
	for _, t := range []struct {
		name string
		ts   *timestamppb.Timestamp
		to   *time.Time
	}{{"since", since, &r.Since}, {"until", until, &r.Until}} {
		if t.ts == nil {
			continue
		}
		if err := t.ts.CheckValid(); err != nil {
			return r, invalidArgument(t.name, "is not a valid time: "+err.Error())
		}
		*t.to = t.ts.AsTime()
	}
	return r, nil
}

func (s *NotificationService) endpointToProto(ctx context.Context, e store.Endpoint) *ahv1.Endpoint {
	out := &ahv1.Endpoint{
		Id: e.ID, Url: e.URL, Description: e.Description, RateLimit: e.RateLimit, Concurrency: int32(e.Concurrency),
		Disabled: e.Disabled, DisabledReason: e.DisabledReason, FailingSince: timeToProto(e.FailingSince),
		CreatedAt: timeToProto(e.CreatedAt), UpdatedAt: timeToProto(e.UpdatedAt),
	}
	spec, err := notify.SpecOf(e)
	if err != nil {
		s.logger.ErrorContext(ctx, "endpoint filter unreadable", "endpoint", e.ID, "error", err)
	}
	f := spec.Filter
	out.Filter = &ahv1.EndpointFilter{UserIds: f.UserIDs, ErrorCodes: f.ErrorCodes, IncludeRecoveries: f.IncludeRecoveries,
		IncludeItemEvents: f.IncludeItemEvents, IncludeFreshnessEvents: f.IncludeFreshnessEvents}
	for _, k := range f.Kinds {
		out.Filter.Kinds = append(out.Filter.Kinds, kindToProto(k))
	}
	now := time.Now()
	for _, sec := range e.Secrets {
		if !sec.ExpiresAt.IsZero() && now.Before(sec.ExpiresAt) {
			out.PreviousSecretExpiresAt = timeToProto(sec.ExpiresAt)
		}
	}
	return out
}

func attemptToProto(a store.Attempt, messageID string) *ahv1.DeliveryAttempt {
	return &ahv1.DeliveryAttempt{
		MessageId: messageID, Attempt: int32(a.N), At: timeToProto(a.At), StatusCode: int32(a.StatusCode),
		Latency: durationpb.New(a.Latency), Response: a.Response, Error: a.Error,
	}
}
