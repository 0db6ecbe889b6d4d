// Package providerfake is a fake of the payroll provider (Argyle): a real
// HTTP server speaking the subset of its v2 API the service uses, with
// accounts in memory, signed webhook deliveries the way the provider sends
// them, and faults injected on demand. Tests drive it through its Go API;
// a person drives `accounthealth fake-provider` through the /_fake control
// routes. It imports nothing of the service but the signature scheme, so
// that it checks the client rather than mirroring it.
//
// The API: GET /v2/accounts (cursor pages by limit, filter user),
// GET|DELETE /v2/accounts/{id}, POST|GET /v2/webhooks,
// DELETE /v2/webhooks/{id}, POST /v2/user-tokens (JWTs expiring in an
// hour), GET /v2/invites (cursor pages, filter user) and
// POST /v2/invites/{id} (re-send; a revoked invite gets 400, as the
// provider documents no answer for it). Cursors name a position, not an
// offset: pages neither skip nor repeat what is added or deleted between
// them, and what is added comes last.
//
// The control routes, all behind the same API key:
//
//	POST   /_fake/accounts                {AccountSeed}: AddAccount, no webhook
//	POST   /_fake/accounts/{id}/{action}  connect, fail, disconnect, remove, with
//	                                      an optional {"error_code": "...",
//	                                      "silently": true, "drop": ["accounts.updated"]}
//	POST   /_fake/accounts/{id}/scan      Scan, with an optional {ScanResult,
//	                                      "silently": true, "drop": [...]}
//	POST   /_fake/invites                 {InviteSeed}: AddInvite
//	POST   /_fake/faults                  {Fault}: AddFault
//	DELETE /_fake/faults                  ClearFaults
//
// A change made Silently, at the provider with none of its webhooks, or
// Dropping some of them, is how a test loses deliveries: the service can
// then only learn of it by fetching or listing the account.
package providerfake

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/accounthealth/accounthealth/server/provider/accountobject"
)

// Credentials the fake accepts when Options names none, so that it runs
// locally without setup.
const (
	DefaultKeyID     = "fake-key-id"
	DefaultKeySecret = "fake-key-secret"
)

// Options configures a Fake. Zero values take defaults.
type Options struct {
	// KeyID and KeySecret are the API key the fake accepts; defaults
	// DefaultKeyID and DefaultKeySecret.
	KeyID, KeySecret string
	// WebhookURL receives every account event, like a subscription to
	// "*"; empty: none. Subscriptions made with POST /v2/webhooks receive
	// their events too.
	WebhookURL string
	// WebhookSecret signs the deliveries to WebhookURL; empty: unsigned,
	// as the provider does for a subscription without a secret.
	WebhookSecret string
	// IncludeResource adds the account object to deliveries to WebhookURL.
	IncludeResource bool
	// RetryDelay is the wait before the one retry of a failed delivery;
	// default 1s. The provider reportedly waits 30s.
	RetryDelay time.Duration
	// Clock stamps changes; default time.Now.
	Clock func() time.Time
	// Logger logs deliveries, faults and changes; default: discard.
	Logger *slog.Logger
}

// ErrUnknownAccount: the id names no live account of the fake.
var ErrUnknownAccount = errors.New("providerfake: no such account")

// Fake is the fake provider. It is safe for concurrent use. Close it to
// end its deliveries.
type Fake struct {
	opts    Options
	log     *slog.Logger
	handler http.Handler
	// faultRoutes are the route names a Fault may give; set with handler.
	faultRoutes map[string]bool
	// ctx ends with Close: it cancels deliveries and releases requests
	// held by latency or hang faults.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	// pending counts running delivery goroutines; idle signals zero. A
	// WaitGroup would forbid waiting while new deliveries start.
	pending  int
	idle     *sync.Cond
	seq      int64 // orders accounts and subscriptions for paging
	accounts map[string]*account
	removed  map[string]bool // deleted ids: 404 from then on, never reused
	deletes  map[string]int
	webhooks map[string]*subscription
	faults   []*Fault
	tokens   map[string]int // user token requests by user
	invites  map[string]*invite
	resends  map[string]int // by invite id
}

type account struct {
	AccountSeed
	seq int64
}

// New returns a Fake with no accounts.
func New(opts Options) *Fake {
	if opts.KeyID == "" {
		opts.KeyID = DefaultKeyID
	}
	if opts.KeySecret == "" {
		opts.KeySecret = DefaultKeySecret
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Fake{
		opts:     opts,
		log:      opts.Logger,
		ctx:      ctx,
		cancel:   cancel,
		accounts: map[string]*account{},
		removed:  map[string]bool{},
		deletes:  map[string]int{},
		webhooks: map[string]*subscription{},
		tokens:   map[string]int{},
		invites:  map[string]*invite{},
		resends:  map[string]int{},
	}
	f.idle = sync.NewCond(&f.mu)
	f.handler = f.routes()
	return f
}

// Handler serves the API under /v2 and the control routes under /_fake.
func (f *Fake) Handler() http.Handler { return f.handler }

// Close cancels pending deliveries and their retries, releases requests
// held by faults, and waits for the deliveries to end. Later changes send
// nothing. Close may be called more than once.
func (f *Fake) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	f.WaitDeliveries()
}

// WaitDeliveries waits until no delivery is in progress, retries included.
// Every change made and every request answered before the call has started
// its deliveries by then.
func (f *Fake) WaitDeliveries() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.pending > 0 {
		f.idle.Wait()
	}
}

// AccountSeed describes an account: what AddAccount takes and Accounts
// returns. Its JSON form is what POST /_fake/accounts takes.
type AccountSeed struct {
	// ID and User are generated when empty.
	ID   string `json:"id"`
	User string `json:"user"`
	// Employers defaults to one employer.
	Employers []string `json:"employers"`
	// Status is connection.status, default connected; any value is kept.
	Status       string `json:"status"`
	ErrorCode    string `json:"error_code"`
	ErrorMessage string `json:"error_message"` // default: the code's usual message
	// CreatedAt defaults to now; UpdatedAt and ConnectionUpdatedAt to
	// CreatedAt.
	CreatedAt           time.Time `json:"created_at"`
	UpdatedAt           time.Time `json:"updated_at"`
	ConnectionUpdatedAt time.Time `json:"connection_updated_at"`
	// ScannedAt zero means never scanned (null); long ago, the account is
	// stale.
	ScannedAt time.Time `json:"scanned_at"`
	// OngoingRefresh is ongoing_refresh.status; empty: enabled while
	// connected, idle otherwise. Any value is kept, as the provider may
	// send new ones.
	OngoingRefresh string `json:"ongoing_refresh"`
	// FailedDatasets names the datasets of availability (paystubs, gigs,
	// ...) whose last sync failed (sync_failed); the others are synced.
	// It needs ScannedAt: a never scanned account has no dataset yet.
	FailedDatasets []string `json:"failed_datasets"`
}

// checkSeed refuses what no account object can say, naming the field.
func checkSeed(s AccountSeed) error {
	if err := checkDatasets(s.FailedDatasets); err != nil {
		return err
	}
	if len(s.FailedDatasets) > 0 && s.ScannedAt.IsZero() {
		return &FieldError{Field: "failed_datasets", Problem: "needs scanned_at: a never scanned account has no dataset to fail"}
	}
	return nil
}

// AddAccount adds an account without sending any webhook, filling in what
// s leaves empty, and returns it complete. An id in use or once deleted is
// refused: the provider never reuses ids, and so is a seed no account
// object can show (a *FieldError).
func (f *Fake) AddAccount(s AccountSeed) (AccountSeed, error) {
	if err := checkSeed(s); err != nil {
		return AccountSeed{}, err
	}
	if s.ID == "" {
		s.ID = newID()
	}
	if s.User == "" {
		s.User = newID()
	}
	if len(s.Employers) == 0 {
		s.Employers = []string{"Whole Goods Market"}
	}
	if s.Status == "" {
		s.Status = "connected"
	}
	if s.ErrorCode != "" && s.ErrorMessage == "" {
		s.ErrorMessage = errorMessage(s.ErrorCode)
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = f.opts.Clock()
	}
	if s.UpdatedAt.IsZero() {
		s.UpdatedAt = s.CreatedAt
	}
	if s.ConnectionUpdatedAt.IsZero() {
		s.ConnectionUpdatedAt = s.CreatedAt
	}
	for _, t := range []*time.Time{&s.CreatedAt, &s.UpdatedAt, &s.ConnectionUpdatedAt, &s.ScannedAt} {
		*t = accountobject.Truncate(*t)
	}
	s.Employers, s.FailedDatasets = slices.Clone(s.Employers), slices.Clone(s.FailedDatasets)

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.accounts[s.ID] != nil || f.removed[s.ID] {
		return AccountSeed{}, fmt.Errorf("providerfake: account %s exists or existed", s.ID)
	}
	f.seq++
	f.accounts[s.ID] = &account{AccountSeed: s, seq: f.seq}
	f.log.Info("account added", "account", s.ID, "user", s.User, "status", s.Status, "error_code", s.ErrorCode)
	return s, nil
}

// Accounts returns the live accounts, oldest first.
func (f *Fake) Accounts() []AccountSeed {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]AccountSeed, 0, len(f.accounts))
	for _, a := range f.sortedAccounts("") {
		s := a.AccountSeed
		s.Employers, s.FailedDatasets = slices.Clone(s.Employers), slices.Clone(s.FailedDatasets)
		out = append(out, s)
	}
	return out
}

// DeleteCount is how many authenticated DELETE /v2/accounts/{id} requests
// for id the fake processed, whatever it answered; requests answered by an
// injected fault are not counted.
func (f *Fake) DeleteCount(id string) int { return f.count(f.deletes, id) }

// count reads a counter of the fake.
func (f *Fake) count(counter map[string]int, key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return counter[key]
}

// sortedAccounts lists the live accounts of user (empty: all) in the
// order they were added. f.mu is held.
func (f *Fake) sortedAccounts(user string) []*account {
	return inOrder(f.accounts, func(a *account) int64 { return a.seq },
		func(a *account) bool { return user == "" || a.User == user })
}

// inOrder lists the values of m that keep takes, ordered by seq: the
// order they were made in, which is also the order of list pages.
func inOrder[T any](m map[string]*T, seq func(*T) int64, keep func(*T) bool) []*T {
	var out []*T
	for _, v := range m {
		if keep(v) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b *T) int { return cmp.Compare(seq(a), seq(b)) })
	return out
}
