package service

import (
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/stream"
)

// StreamDisconnections implements the RPC; see its doc in the proto. A slow
// client only blocks its own Send: its backlog stays in the durable log,
// and its subscription holds nothing but a cursor.
func (s *AccountHealthService) StreamDisconnections(req *ahv1.StreamDisconnectionsRequest, out ahv1.AccountHealthService_StreamDisconnectionsServer) error {
	ctx := out.Context()
	sreq, err := streamRequest(req)
	if err != nil {
		return err
	}
	sub, err := s.broker.Subscribe(ctx, sreq)
	if err != nil {
		if errors.Is(err, stream.ErrInvalidCursor) {
			return invalidArgument("resume_after", "is not a cursor of this service's log (it must come from an event or heartbeat of this stream); start without it, or with since")
		}
		return err
	}
	s.metrics.StreamOpened()
	defer s.metrics.StreamClosed()
	// The stream opens with a heartbeat at its start cursor: the caller
	// learns at once that it is subscribed (HTTP clients get the response
	// headers now, not at the first event), and where to resume from even
	// if nothing arrives before it disconnects.
	if err := out.Send(itemToProto(stream.Item{Heartbeat: true, Cursor: sub.Cursor(), At: time.Now()})); err != nil {
		return err
	}
	for {
		item, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		if item.Change == nil {
			err = out.Send(itemToProto(item))
		} else {
			// Encoded once for all subscribers; the server's sharedCodec
			// sends the bytes as they are.
			var m encodedMessage
			if m, err = s.encoded.get(item.Change); err == nil {
				err = out.SendMsg(m)
				s.tracing.streamSent(ctx, item.Change)
			}
		}
		if err != nil {
			return err
		}
		if item.Change != nil {
			s.metrics.StreamSent(item.Behind)
		}
	}
}

func streamItemFor(c *store.Change) stream.Item { return stream.Item{Change: c, Cursor: c.Seq} }

// streamRequest checks the request and turns it into the broker's terms.
func streamRequest(req *ahv1.StreamDisconnectionsRequest) (stream.Request, error) {
	var r stream.Request
	var err error
	if r.Filter, err = streamFilter(req.GetUserIds(), req.GetKinds(), req.GetErrorCodes(), req.GetIncludeRecoveries()); err != nil {
		return r, err
	}
	for _, item := range req.GetItems() {
		if err := checkItem(item, true); err != nil {
			return r, err
		}
	}
	r.Filter.Items, r.Filter.IncludeItemEvents = req.GetItems(), req.GetIncludeItemEvents()
	r.Filter.IncludeFreshnessEvents = req.GetIncludeFreshnessEvents()
	switch start := req.GetStart().(type) {
	case *ahv1.StreamDisconnectionsRequest_ResumeAfter:
		seq, err := stream.DecodeCursor(start.ResumeAfter)
		if err != nil {
			return r, invalidArgument("resume_after", "is not a cursor this service issued; pass the cursor of the last event or heartbeat you received")
		}
		r.Start = stream.StartAfter(seq)
	case *ahv1.StreamDisconnectionsRequest_Since:
		if err := start.Since.CheckValid(); err != nil {
			return r, invalidArgument("since", "is not a valid time: "+err.Error())
		}
		r.Start = stream.StartSince(start.Since.AsTime())
	}
	return r, nil
}

func itemToProto(item stream.Item) *ahv1.StreamDisconnectionsResponse {
	if item.Change == nil {
		return &ahv1.StreamDisconnectionsResponse{Message: &ahv1.StreamDisconnectionsResponse_Heartbeat{
			Heartbeat: &ahv1.Heartbeat{Time: timestamppb.New(item.At), Cursor: stream.EncodeCursor(item.Cursor)},
		}}
	}
	return &ahv1.StreamDisconnectionsResponse{Message: &ahv1.StreamDisconnectionsResponse_Event{Event: changeToProto(item.Change)}}
}

func changeToProto(c *store.Change) *ahv1.DisconnectionEvent {
	t := transitionToProto(c.Transition)
	return &ahv1.DisconnectionEvent{
		Cursor:            stream.EncodeCursor(c.Seq),
		AccountId:         text(c.AccountID),
		UserId:            text(c.UserID),
		Kind:              t.Kind,
		PreviousState:     t.PreviousState,
		State:             t.State,
		ErrorCode:         t.ErrorCode,
		ErrorMessage:      t.ErrorMessage,
		Remedy:            t.Remedy,
		OccurredAt:        t.OccurredAt,
		Delivery:          &ahv1.DeliveryReference{Sequence: c.EntrySeq, EventType: text(c.Event)},
		Item:              text(c.Item),
		Freshness:         t.Freshness,
		PreviousFreshness: t.PreviousFreshness,
		FailedDatasets:    t.FailedDatasets,
	}
}
