package service

import (
	"context"
	"strings"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/store"
)

// CountTransitions counts the change log's transitions in a window, per
// bucket and kind.
func (s *AccountHealthService) CountTransitions(ctx context.Context, req *ahv1.CountTransitionsRequest) (*ahv1.CountTransitionsResponse, error) {
	switch {
	case !req.GetStartTime().IsValid():
		return nil, invalidArgument("start_time", "is required (an RFC 3339 time)")
	case !req.GetEndTime().IsValid():
		return nil, invalidArgument("end_time", "is required (an RFC 3339 time)")
	case !req.GetBucketWidth().IsValid():
		return nil, invalidArgument("bucket_width", "is required (a duration, e.g. 3600s)")
	}
	q := store.ChangeCountQuery{From: req.GetStartTime().AsTime(), To: req.GetEndTime().AsTime(), Bucket: req.GetBucketWidth().AsDuration()}
	if err := q.Check(); err != nil {
		return nil, invalidArgument("start_time..end_time by bucket_width", strings.TrimPrefix(err.Error(), store.ErrInvalidArgument.Error()+": "))
	}
	counts, err := s.store.CountChanges(ctx, q)
	if err != nil {
		return nil, err
	}
	out := &ahv1.CountTransitionsResponse{Counts: make([]*ahv1.TransitionCount, 0, len(counts))}
	for _, c := range counts {
		out.Counts = append(out.Counts, &ahv1.TransitionCount{StartTime: timeToProto(c.Start), Kind: kindToProto(c.Kind), Count: int64(c.N)})
	}
	return out, nil
}
