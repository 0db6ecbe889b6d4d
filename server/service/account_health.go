package service

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"unicode"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/backfill"
	"github.com/accounthealth/accounthealth/server/deletion"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/items"
	"github.com/accounthealth/accounthealth/server/metrics"
	"github.com/accounthealth/accounthealth/server/reconnect"
	"github.com/accounthealth/accounthealth/server/refresh"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/stream"
)

// AccountHealthService serves derived health, the log and its stream, and
// deletions of failed accounts.
type AccountHealthService struct {
	ahv1.UnimplementedAccountHealthServiceServer
	store   store.Store
	deleter *deletion.Deleter
	// refresher and reconnector are nil without a provider API key.
	refresher   *refresh.Refresher
	reconnector *reconnect.Reconnector
	backfill    *backfill.Runner
	items       *items.Service
	broker      *stream.Broker
	encoded     *encodedEvents
	tracing     tracing
	metrics     *metrics.Metrics // stream subscribers, events sent and lag
	logger      *slog.Logger
}

var _ ahv1.AccountHealthServiceServer = (*AccountHealthService)(nil)

// maxIDLength bounds ids taken from callers; the provider's are 36-char uuids.
const maxIDLength = 128

// checkID validates an id field: required, bounded, printable. The provider
// uses uuids, but we do not insist on the format, only on sanity.
func checkID(field, id string, required bool) error {
	switch {
	case id == "" && required:
		return invalidArgument(field, "is required (the provider's account id, a uuid)")
	case len(id) > maxIDLength:
		return invalidArgument(field, "is longer than 128 characters")
	case strings.IndexFunc(id, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) >= 0:
		return invalidArgument(field, "contains spaces or control characters")
	}
	return nil
}

func checkPageSize(size int32) error {
	if size < 0 || size > store.MaxPageSize {
		return invalidArgument("page_size", "must be between 0 and 500 (0 means 50)")
	}
	return nil
}

func (s *AccountHealthService) GetAccountHealth(ctx context.Context, req *ahv1.GetAccountHealthRequest) (*ahv1.GetAccountHealthResponse, error) {
	if err := checkID("account_id", req.GetAccountId(), true); err != nil {
		return nil, err
	}
	rec, err := s.store.GetHealth(ctx, req.GetAccountId())
	if err != nil {
		return nil, accountError(req.GetAccountId(), err)
	}
	return &ahv1.GetAccountHealthResponse{AccountHealth: s.recordToProto(ctx, rec)}, nil
}

var healthOrders = map[ahv1.AccountOrder]store.HealthOrder{
	ahv1.AccountOrder_ACCOUNT_ORDER_UNSPECIFIED:      store.ByAccountID,
	ahv1.AccountOrder_ACCOUNT_ORDER_STATE_SINCE_ASC:  store.ByStateSinceAsc,
	ahv1.AccountOrder_ACCOUNT_ORDER_STATE_SINCE_DESC: store.ByStateSinceDesc,
}

func (s *AccountHealthService) ListAccountHealth(ctx context.Context, req *ahv1.ListAccountHealthRequest) (*ahv1.ListAccountHealthResponse, error) {
	if err := checkID("user_id", req.GetUserId(), false); err != nil {
		return nil, err
	}
	if err := checkItem(req.GetItem(), false); err != nil {
		return nil, err
	}
	if err := checkPageSize(req.GetPageSize()); err != nil {
		return nil, err
	}
	q := store.HealthQuery{UserID: req.GetUserId(), Item: req.GetItem(), ErrorCodes: req.GetErrorCodes(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()}
	for _, ps := range req.GetStates() {
		st, ok := stateFromProto(ps)
		if !ok {
			return nil, invalidArgument("states", "contains "+ps.String()+", which is not a health state")
		}
		q.States = append(q.States, st)
	}
	for _, pf := range req.GetFreshness() {
		f, ok := freshnessFromProto(pf)
		if !ok {
			return nil, invalidArgument("freshness", "contains "+pf.String()+", which is not a freshness status; use FRESH, STALE, REFRESH_DISABLED or SYNC_FAILED")
		}
		q.Freshness = append(q.Freshness, f)
	}
	order, ok := healthOrders[req.GetOrderBy()]
	if !ok {
		return nil, invalidArgument("order_by", "is "+req.GetOrderBy().String()+"; use ACCOUNT_ORDER_STATE_SINCE_ASC, ACCOUNT_ORDER_STATE_SINCE_DESC or leave it unset (account id)")
	}
	q.Order = order
	page, err := s.store.ListHealth(ctx, q)
	if err != nil {
		return nil, pageError(err)
	}
	out := &ahv1.ListAccountHealthResponse{NextPageToken: page.NextPageToken, Accounts: make([]*ahv1.AccountHealth, 0, len(page.Records))}
	for _, r := range page.Records {
		out.Accounts = append(out.Accounts, s.recordToProto(ctx, r))
	}
	return out, nil
}

func (s *AccountHealthService) GetHealthSummary(ctx context.Context, _ *ahv1.GetHealthSummaryRequest) (*ahv1.GetHealthSummaryResponse, error) {
	sum, err := s.store.Summary(ctx)
	if err != nil {
		return nil, err
	}
	out := &ahv1.GetHealthSummaryResponse{Total: int64(sum.Total)}
	// Every state is listed, zeros included, in enum order, so dashboards
	// get a stable shape.
	for st := health.StateConnecting; st <= health.StateRemoved; st++ {
		out.ByState = append(out.ByState, &ahv1.StateCount{State: stateToProto(st), Count: int64(sum.ByState[st])})
	}
	for _, code := range slices.Sorted(maps.Keys(sum.ByErrorCode)) {
		out.ByErrorCode = append(out.ByErrorCode, &ahv1.ErrorCodeCount{ErrorCode: text(code), Count: int64(sum.ByErrorCode[code])})
	}
	for f := health.FreshnessFresh; f <= health.FreshnessSyncFailed; f++ {
		out.ByFreshness = append(out.ByFreshness, &ahv1.FreshnessCount{Status: freshnessStatusToProto(f), Count: int64(sum.ByFreshness[f])})
	}
	return out, nil
}

func (s *AccountHealthService) ListAccountEvents(ctx context.Context, req *ahv1.ListAccountEventsRequest) (*ahv1.ListAccountEventsResponse, error) {
	if err := checkID("account_id", req.GetAccountId(), true); err != nil {
		return nil, err
	}
	if err := checkPageSize(req.GetPageSize()); err != nil {
		return nil, err
	}
	page, err := s.store.ListEntries(ctx, store.EntryQuery{AccountID: req.GetAccountId(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()})
	if err != nil {
		return nil, accountError(req.GetAccountId(), pageError(err))
	}
	out := &ahv1.ListAccountEventsResponse{NextPageToken: page.NextPageToken, Events: make([]*ahv1.AccountEvent, 0, len(page.Entries))}
	for _, e := range page.Entries {
		out.Events = append(out.Events, s.entryToProto(ctx, e))
	}
	return out, nil
}

// accountError words NOT_FOUND for the caller instead of passing on the
// store's message.
func accountError(accountID string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errorf(store.ErrNotFound, "account %q not found: no delivery naming it was ever accepted", accountID)
	}
	return err
}

// pageError words the only argument the store itself can refuse after the
// checks above: a page token it did not issue.
func pageError(err error) error {
	if errors.Is(err, store.ErrInvalidArgument) {
		return invalidArgument("page_token", "is not a token this server issued; start again without one")
	}
	return err
}
