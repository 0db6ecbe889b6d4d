package service

import (
	"context"
	"errors"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/items"
	"github.com/accounthealth/accounthealth/server/store"
)

// itemStatusesToProto is indexed by the health value, as the tables in
// convert.go.
var itemStatusesToProto = []ahv1.ItemStatus{
	health.ItemStatusHealthy:         ahv1.ItemStatus_ITEM_STATUS_HEALTHY,
	health.ItemStatusIssues:          ahv1.ItemStatus_ITEM_STATUS_ISSUES,
	health.ItemStatusSuspectedOutage: ahv1.ItemStatus_ITEM_STATUS_SUSPECTED_OUTAGE,
	health.ItemStatusOutage:          ahv1.ItemStatus_ITEM_STATUS_OUTAGE,
}

func itemStatusToProto(s health.ItemStatus) ahv1.ItemStatus { return lookup(itemStatusesToProto, s) }

// itemStatusFromProto maps a filter value; ok is false for UNSPECIFIED and
// for numbers this server does not know.
func itemStatusFromProto(s ahv1.ItemStatus) (health.ItemStatus, bool) {
	for st, p := range itemStatusesToProto {
		if p == s && p != ahv1.ItemStatus_ITEM_STATUS_UNSPECIFIED {
			return health.ItemStatus(st), true
		}
	}
	return health.ItemStatusUnknown, false
}

func itemHealthToProto(h health.ItemHealth) *ahv1.ItemHealth {
	out := &ahv1.ItemHealth{
		Item:           text(h.Item),
		Status:         itemStatusToProto(h.Status),
		StatusSince:    timeToProto(h.Since),
		Accounts:       int64(h.Accounts()),
		RecentFailures: int64(h.RecentFailures),
		UsualFailures:  h.UsualFailures,
	}
	// Every state, zeros included, in enum order, as the summary.
	for st := health.StateConnecting; st <= health.StateRemoved; st++ {
		out.ByState = append(out.ByState, &ahv1.ItemStateCount{State: stateToProto(st), Count: int64(h.Counts[st])})
	}
	if r := h.Report; r != nil {
		out.Reported = &ahv1.ItemReport{Status: text(r.Status), Name: text(r.Name), Details: text(r.Details), ReceivedAt: timeToProto(r.ReceivedAt)}
	}
	return out
}

func (s *AccountHealthService) GetItemHealth(ctx context.Context, req *ahv1.GetItemHealthRequest) (*ahv1.GetItemHealthResponse, error) {
	if err := checkItem(req.GetItem(), true); err != nil {
		return nil, err
	}
	h, err := s.items.Get(ctx, req.GetItem())
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(store.ErrNotFound, "item %q not found: no account names it and the provider reported nothing of it", req.GetItem())
	}
	if err != nil {
		return nil, err
	}
	return &ahv1.GetItemHealthResponse{ItemHealth: itemHealthToProto(h)}, nil
}

func (s *AccountHealthService) ListItemHealth(ctx context.Context, req *ahv1.ListItemHealthRequest) (*ahv1.ListItemHealthResponse, error) {
	if err := checkPageSize(req.GetPageSize()); err != nil {
		return nil, err
	}
	q := items.Query{PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()}
	for _, ps := range req.GetStatuses() {
		st, ok := itemStatusFromProto(ps)
		if !ok {
			return nil, invalidArgument("statuses", "contains "+ps.String()+", which is not an item status")
		}
		q.Statuses = append(q.Statuses, st)
	}
	page, err := s.items.List(ctx, q)
	if err != nil {
		return nil, pageError(err)
	}
	out := &ahv1.ListItemHealthResponse{NextPageToken: page.NextPageToken, Items: make([]*ahv1.ItemHealth, 0, len(page.Items))}
	for _, h := range page.Items {
		out.Items = append(out.Items, itemHealthToProto(h))
	}
	return out, nil
}

// checkItem validates an item id as checkID does an account's.
func checkItem(item string, required bool) error {
	if item == "" && required {
		return invalidArgument("item", `is required (the provider's item id, e.g. "item_000077001")`)
	}
	return checkID("item", item, false)
}
