// Package items serves the health of payroll platforms (the provider's
// items): it reads what the store keeps of each (store.ItemSignals) and
// derives its status under explicit rules (health.DeriveItemHealth), at
// the time of the read, so that a suspected outage also ends by the
// passing of time without any delivery.
package items

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// Signals is what the store offers; store.Store is one.
type Signals interface {
	ItemSignals(ctx context.Context, q store.ItemQuery) ([]health.ItemSignals, error)
	QuietItems(ctx context.Context, q store.QuietQuery) ([]health.ItemSignals, error)
}

// Service derives items' health.
type Service struct {
	signals Signals
	rules   health.ItemRules
	now     func() time.Time
}

// New derives under rules at the times now gives (time.Now when nil).
// Rules whose Baseline is not above Window, or whose twice Baseline is
// more than the store keeps (store.ItemFailureRetention), are an error.
func New(s Signals, rules health.ItemRules, now func() time.Time) (*Service, error) {
	if rules.Window <= 0 || rules.Baseline <= rules.Window || 2*rules.Baseline > store.ItemFailureRetention {
		return nil, fmt.Errorf("item rules: window %v and baseline %v must satisfy 0 < window < baseline <= %v",
			rules.Window, rules.Baseline, store.ItemFailureRetention/2)
	}
	// With no failure in the window a suspicion must end: List leans on it.
	if rules.EndFailures < 1 || rules.MinFailures <= rules.EndFailures || rules.EndFactor > rules.Factor {
		return nil, fmt.Errorf("item rules: want 1 <= end failures (%d) < min failures (%d), and end factor (%v) <= factor (%v)",
			rules.EndFailures, rules.MinFailures, rules.EndFactor, rules.Factor)
	}
	if now == nil {
		now = time.Now
	}
	return &Service{signals: s, rules: rules, now: now}, nil
}

// Get derives one item's health; store.ErrNotFound when no account named
// it and no report came.
func (s *Service) Get(ctx context.Context, item string) (health.ItemHealth, error) {
	now := s.now()
	sigs, err := s.signals.ItemSignals(ctx, store.ItemQuery{Item: item, FailuresSince: s.since(now)})
	if err != nil {
		return health.ItemHealth{}, err
	}
	if len(sigs) == 0 {
		return health.ItemHealth{}, fmt.Errorf("item %q: no account names it and the provider reported nothing of it: %w", item, store.ErrNotFound)
	}
	return health.DeriveItemHealth(sigs[0], s.rules, now), nil
}

// since is how far back the derivation at now reads failures.
func (s *Service) since(now time.Time) time.Time { return now.Add(-2 * s.rules.Baseline) }

// Query selects items to list.
type Query struct {
	Statuses  []health.ItemStatus // any of these; empty: all
	PageSize  int                 // as store.PageLimit checks it
	PageToken string              // Page.NextPageToken of the page before
}

// Page is one page of items, worst first: by status (outage first), then
// by the number of accounts that need attention, then by item id. Besides
// PageSize, a page is bounded by store.PageBytes of Bytes.
type Page struct {
	Items         []health.ItemHealth
	NextPageToken string
}

// List pages through the items q selects, worst first. An item's place
// may change between pages as its health does; the token resumes after
// the place of the last item sent. It derives the active items (see
// store.ItemQuery.ActiveSince), few even among thousands, and merges them
// with a page of the quiet ones, all HEALTHY, which the store reads in
// their order: the cost does not grow with the number of items.
func (s *Service) List(ctx context.Context, q Query) (Page, error) {
	limit, err := store.PageLimit(q.PageSize)
	if err != nil {
		return Page{}, err
	}
	after, err := decodeToken(q.PageToken)
	if err != nil {
		return Page{}, err
	}
	now := s.now()
	active, err := s.active(ctx, now)
	if err != nil {
		return Page{}, err
	}
	quiet, err := s.quiet(ctx, q, after, limit, active, now)
	if err != nil {
		return Page{}, err
	}
	var all []health.ItemHealth
	for _, h := range append(active, quiet...) {
		if (len(q.Statuses) == 0 || slices.Contains(q.Statuses, h.Status)) && (after == nil || worse(*after, keyOf(h)) < 0) {
			all = append(all, h)
		}
	}
	slices.SortFunc(all, func(a, b health.ItemHealth) int { return worse(keyOf(a), keyOf(b)) })
	var page Page
	used := 0
	for _, h := range all {
		n := Bytes(h)
		if len(page.Items) == limit || (len(page.Items) > 0 && used+n > store.PageBytes) {
			page.NextPageToken = encodeToken(keyOf(page.Items[len(page.Items)-1]))
			break
		}
		page.Items, used = append(page.Items, h), used+n
	}
	return page, nil
}

// active derives the active items' health at now, by item id: every item
// that may be in an outage or have issues. The others' status is HEALTHY,
// their Since their healthy report's arrival, and their failure figures
// zero (Get tells them in full).
func (s *Service) active(ctx context.Context, now time.Time) ([]health.ItemHealth, error) {
	sigs, err := s.signals.ItemSignals(ctx, store.ItemQuery{FailuresSince: s.since(now), ActiveSince: now.Add(-s.rules.Window)})
	if err != nil {
		return nil, err
	}
	out := make([]health.ItemHealth, len(sigs))
	for i, sig := range sigs {
		out[i] = health.DeriveItemHealth(sig, s.rules, now)
	}
	return out, nil
}

// quiet reads the quiet items that may come on the page after after: as
// many as the page holds, plus one to tell whether more follow, plus the
// active ones, which the store does not leave out.
func (s *Service) quiet(ctx context.Context, q Query, after *key, limit int, active []health.ItemHealth, now time.Time) ([]health.ItemHealth, error) {
	switch {
	case len(q.Statuses) > 0 && !slices.Contains(q.Statuses, health.ItemStatusHealthy):
		return nil, nil
	case after != nil && after.status < health.ItemStatusHealthy:
		return nil, nil // past every healthy item
	}
	sq := store.QuietQuery{Limit: limit + 1 + len(active)}
	if after != nil && after.status == health.ItemStatusHealthy {
		sq.AfterFailing, sq.After = after.failing, after.item
	}
	sigs, err := s.signals.QuietItems(ctx, sq)
	if err != nil {
		return nil, err
	}
	isActive := make(map[string]bool, len(active))
	for _, h := range active {
		isActive[h.Item] = true
	}
	var out []health.ItemHealth
	for _, sig := range sigs {
		if !isActive[sig.Item] {
			out = append(out, health.DeriveItemHealth(sig, s.rules, now))
		}
	}
	return out, nil
}

// Bytes is what h weighs on a page: its variable-length fields.
func Bytes(h health.ItemHealth) int {
	n := len(h.Item) + 16*len(h.Counts)
	if r := h.Report; r != nil {
		n += len(r.Name) + len(r.Status) + len(r.Details)
	}
	return n
}

// key is an item's place in List's order.
type key struct {
	status  health.ItemStatus
	failing int
	item    string
}

func keyOf(h health.ItemHealth) key { return key{h.Status, h.Failing(), h.Item} }

// worse orders keys worst first: negative when a comes before b.
func worse(a, b key) int {
	return cmp.Or(cmp.Compare(b.status, a.status), cmp.Compare(b.failing, a.failing), cmp.Compare(a.item, b.item))
}

// tokenVersion starts every page token: status and failing as uvarints,
// then the item id.
const tokenVersion = 1

func encodeToken(k key) string {
	b := []byte{tokenVersion}
	b = binary.AppendUvarint(b, uint64(k.status))
	b = binary.AppendUvarint(b, uint64(k.failing))
	return base64.RawURLEncoding.EncodeToString(append(b, k.item...))
}

func decodeToken(tok string) (*key, error) {
	if tok == "" {
		return nil, nil
	}
	bad := fmt.Errorf("%w: page token %q is not one this service issued for items: list again without it", store.ErrInvalidArgument, tok)
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 1 || b[0] != tokenVersion {
		return nil, bad
	}
	r := bytes.NewReader(b[1:])
	status, err1 := binary.ReadUvarint(r)
	failing, err2 := binary.ReadUvarint(r)
	if err1 != nil || err2 != nil || status > uint64(health.ItemStatusOutage) || failing > 1<<40 {
		return nil, bad
	}
	item := b[len(b)-r.Len():]
	return &key{status: health.ItemStatus(status), failing: int(failing), item: string(item)}, nil
}
