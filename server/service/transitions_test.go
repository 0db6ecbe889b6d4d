package service_test

import (
	"maps"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

// TestCountTransitions: the chart's counts, over gRPC and REST, are the
// transitions the deliveries caused, by kind; bad windows name the field.
func TestCountTransitions(t *testing.T) {
	e := start(t, nil)
	at := time.Now()
	e.deliver(updatedBody("a1", "u1", "connected", "", at))
	e.deliver(updatedBody("a1", "u1", "error", "auth_required", at.Add(time.Second)))
	e.deliver(updatedBody("a1", "u1", "connected", "", at.Add(2*time.Second)))
	e.deliver(leanBody("accounts.removed", "a2", "u2"))
	// One bucket of whole hours around now: deliveries occur when they are
	// received.
	from := at.Truncate(time.Hour).Add(-time.Hour)
	window := &ahv1.CountTransitionsRequest{
		StartTime: timestamppb.New(from), EndTime: timestamppb.New(from.Add(3 * time.Hour)), BucketWidth: durationpb.New(3 * time.Hour),
	}
	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) {
			var resp ahv1.CountTransitionsResponse
			if code := r.call(e, "CountTransitions", window, &resp); code != codes.OK {
				t.Fatalf("CountTransitions: %s", code)
			}
			got := map[ahv1.TransitionKind]int64{}
			for _, c := range resp.GetCounts() {
				if !c.GetStartTime().AsTime().Equal(window.GetStartTime().AsTime()) {
					t.Errorf("bucket starts %s, want the window's start", c.GetStartTime().AsTime())
				}
				got[c.GetKind()] += c.GetCount()
			}
			want := map[ahv1.TransitionKind]int64{ahv1.TransitionKind_TRANSITION_KIND_DISCONNECTED: 1, ahv1.TransitionKind_TRANSITION_KIND_RECOVERED: 1, ahv1.TransitionKind_TRANSITION_KIND_REMOVED: 1}
			if !maps.Equal(got, want) {
				t.Errorf("counts = %v, want %v", got, want)
			}
			for name, req := range map[string]*ahv1.CountTransitionsRequest{
				"no start":     {EndTime: window.GetEndTime(), BucketWidth: window.GetBucketWidth()},
				"no bucket":    {StartTime: window.GetStartTime(), EndTime: window.GetEndTime()},
				"reversed":     {StartTime: window.GetEndTime(), EndTime: window.GetStartTime(), BucketWidth: window.GetBucketWidth()},
				"tiny buckets": {StartTime: window.GetStartTime(), EndTime: window.GetEndTime(), BucketWidth: durationpb.New(time.Minute)},
				"off the hour": {StartTime: timestamppb.New(from.Add(time.Minute)), EndTime: window.GetEndTime(), BucketWidth: durationpb.New(time.Hour)},
			} {
				if code := r.call(e, "CountTransitions", req, &ahv1.CountTransitionsResponse{}); code != codes.InvalidArgument {
					t.Errorf("%s: %s, want InvalidArgument", name, code)
				}
			}
		})
	}
}
