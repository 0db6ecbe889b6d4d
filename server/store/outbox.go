package store

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Outbox keeps the outbound webhook endpoints and the messages owed to
// them. It is a cursor over the change log like a stream: each endpoint
// remembers the last change it took in (Endpoint.Cursor), and FanIn writes
// its messages and moves the cursor in one commit, so a crash between the
// two neither skips nor duplicates a message. Messages are leased to one
// process at a time (ClaimMessages), like ClaimDue's accounts, so that
// several replicas sharing a store deliver each message once in the normal
// case, and a crashed holder's lease expires for another to take over.
// Drivers that implement Store implement Outbox too.
type Outbox interface {
	// CreateEndpoint stores a new endpoint whose cursor is the newest
	// committed change: it is owed what commits after it. It returns the
	// endpoint as stored.
	CreateEndpoint(ctx context.Context, e Endpoint) (Endpoint, error)
	// GetEndpoint returns the endpoint or ErrNotFound.
	GetEndpoint(ctx context.Context, id string) (Endpoint, error)
	// ListEndpoints returns every endpoint, by id.
	ListEndpoints(ctx context.Context) ([]Endpoint, error)
	// UpdateEndpoint replaces the endpoint's settings (all but its Cursor
	// and CreatedAt); ErrNotFound when there is none.
	UpdateEndpoint(ctx context.Context, e Endpoint) error
	// DeleteEndpoint deletes the endpoint with its messages and attempts;
	// ErrNotFound when there is none.
	DeleteEndpoint(ctx context.Context, id string) error
	// FanIn stores, for each batch, its messages (the endpoint's for the
	// changes in (From, To]) and moves the endpoint's cursor from From to
	// To, all in one commit. A batch whose endpoint's cursor is no longer
	// at From (another process fanned in first) or whose endpoint is gone
	// stores nothing; moved says, by batch, which did.
	FanIn(ctx context.Context, batches []FanInBatch) (moved []bool, err error)
	// ClaimMessages leases, for each of q.Endpoints, up to its Limit of
	// its pending messages that are due at q.Now and not leased, oldest
	// first, and only the oldest pending message of each account: one
	// account's messages go out in order, one at a time, and a failing
	// one holds back only its own account. One commit for all.
	ClaimMessages(ctx context.Context, q MessageClaim) ([]OutboxMessage, error)
	// RecordAttempts records attempts at messages that holder leased, in
	// one commit: each sets its message's next state, releasing the lease,
	// and keeps the endpoint's FailingSince (cleared on a delivery, set at
	// the first of a run of failures), which its result gives. An attempt
	// at a message no longer leased to holder (its lease expired and
	// another process took it) is not recorded, and its result says so.
	RecordAttempts(ctx context.Context, holder string, records []AttemptRecord) ([]AttemptResult, error)
	// Step is a dispatcher's pass in one commit: it records s.Records, as
	// RecordAttempts does for s.Claim.Holder, then fans in s.Batches, as
	// FanIn does, then leases messages, as ClaimMessages does, when
	// s.Claim names endpoints. The claim sees what the step recorded and
	// fanned in: an account's next message may be leased in the commit
	// that records its predecessor, and a message in the one that fans it
	// in, so a message costs one commit rather than three.
	Step(ctx context.Context, s OutboxStep) (StepResult, error)
	// ListMessages pages through an endpoint's messages, newest first.
	ListMessages(ctx context.Context, q MessageQuery) (MessagePage, error)
	// ListAttempts pages through an endpoint's attempts, newest first.
	ListAttempts(ctx context.Context, q AttemptQuery) (AttemptPage, error)
	// Requeue makes the endpoint's messages that q selects pending and due
	// at q.Now with a fresh retry schedule, whatever their status; it
	// creates none. It returns how many it requeued.
	Requeue(ctx context.Context, q RequeueQuery) (int, error)
	// OutboxStats counts each endpoint's pending messages.
	OutboxStats(ctx context.Context) ([]EndpointStats, error)
}

// Endpoint is a receiver of signed webhooks.
type Endpoint struct {
	ID          string
	URL         string
	Description string
	// Filter is the endpoint's selection of changes, encoded by its user
	// (package notify): the store keeps it as it is.
	Filter []byte
	// RateLimit is in messages per second, 0 for none; Concurrency bounds
	// the deliveries in flight (per process).
	RateLimit   float64
	Concurrency int
	// Secrets sign every message: the current one (ExpiresAt zero) and the
	// ones a rotation keeps alongside until they expire.
	Secrets        []Secret
	Disabled       bool
	DisabledReason string
	// Cursor is the Seq of the last change fanned in.
	Cursor int64
	// FailingSince is when the current run of failed attempts began, zero
	// when the last attempt succeeded.
	FailingSince         time.Time
	CreatedAt, UpdatedAt time.Time
}

// Secret is a signing secret ("whsec_..." in Standard Webhooks' form).
type Secret struct {
	Key       string    `json:"key"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// MessageStatus is where a message is in its delivery.
type MessageStatus int

const (
	MessagePending   MessageStatus = 1 // to be sent, now or at NextAt
	MessageDelivered MessageStatus = 2 // a 2xx came back
	MessageExhausted MessageStatus = 3 // every retry failed: a dead letter
)

func (s MessageStatus) valid() bool { return s >= MessagePending && s <= MessageExhausted }

// OutboxMessage is one message owed to one endpoint.
type OutboxMessage struct {
	EndpointID string
	Seq        int64 // the change's; with the endpoint, the message's key
	AccountID  string
	Type       string
	Body       []byte
	OccurredAt time.Time
	MessageState
	Attempts  int // made in all
	CreatedAt time.Time
}

// MessageState is what RecordAttempt sets.
type MessageState struct {
	Status MessageStatus
	// Retries counts the failed attempts since the message was created or
	// requeued: its place in the retry schedule.
	Retries   int
	NextAt    time.Time
	LastError string
}

// FanInBatch is one endpoint's part of a FanIn.
type FanInBatch struct {
	EndpointID string
	From, To   int64
	Messages   []OutboxMessage
}

// MaxClaimMessages bounds the messages one MessageClaim leases.
const MaxClaimMessages = 1000

// MessageClaim selects messages to lease.
type MessageClaim struct {
	Holder    string
	Now       time.Time
	LeaseFor  time.Duration
	Endpoints []EndpointLimit
	// Max bounds the messages leased in all, 1..MaxClaimMessages; 0 means
	// MaxClaimMessages. The limits may sum to more: the endpoints are served
	// in the order listed, and one with fewer messages due than its limit
	// leaves the rest to those after it, so that idle endpoints listed
	// first do not hold the others back.
	Max int
}

// Budget is the most messages q may lease.
func (q MessageClaim) Budget() int {
	if q.Max == 0 {
		return MaxClaimMessages
	}
	return q.Max
}

// EndpointLimit is how many of an endpoint's messages a claim may lease.
type EndpointLimit struct {
	EndpointID string
	Limit      int
}

// Check validates q: ErrInvalidArgument when a field is out of range.
func (q MessageClaim) Check() error {
	for _, e := range q.Endpoints {
		if e.EndpointID == "" || e.Limit < 1 || e.Limit > MaxClaimMessages {
			return fmt.Errorf("%w: message claim: endpoint %q with limit %d (1..%d)", ErrInvalidArgument, e.EndpointID, e.Limit, MaxClaimMessages)
		}
	}
	switch {
	case q.Holder == "":
		return fmt.Errorf("%w: message claim: no holder", ErrInvalidArgument)
	case q.Now.IsZero() || q.LeaseFor <= 0:
		return fmt.Errorf("%w: message claim: no time or lease", ErrInvalidArgument)
	case q.Max < 0 || q.Max > MaxClaimMessages:
		return fmt.Errorf("%w: message claim: at most %d messages, outside 0..%d", ErrInvalidArgument, q.Max, MaxClaimMessages)
	}
	return nil
}

// OutboxStep is what one Step commits.
type OutboxStep struct {
	Records []AttemptRecord // attempts at messages Claim.Holder leased
	Batches []FanInBatch
	Claim   MessageClaim // no claim when it names no endpoint
}

// Check validates s: ErrInvalidArgument when a field is out of range.
func (s OutboxStep) Check() error {
	switch {
	case len(s.Records) > MaxAttemptRecords:
		return fmt.Errorf("%w: %d attempts at once, more than %d", ErrInvalidArgument, len(s.Records), MaxAttemptRecords)
	case len(s.Claim.Endpoints) > 0:
		return s.Claim.Check()
	case len(s.Records) > 0 && s.Claim.Holder == "":
		return fmt.Errorf("%w: outbox step: attempts without a holder", ErrInvalidArgument)
	}
	return nil
}

// StepResult is what a Step did: RecordAttempts', FanIn's and
// ClaimMessages' results.
type StepResult struct {
	Results  []AttemptResult // by record
	Moved    []bool          // by batch
	Messages []OutboxMessage // leased, by endpoint as the claim lists them, oldest first
}

// AttemptResponseBytes caps Attempt.Response, so that a page of attempts
// stays small whatever receivers answer.
const AttemptResponseBytes = 1 << 10

// Attempt is one try at sending a message.
type Attempt struct {
	ID         int64 // the store's, in the order attempts were recorded
	EndpointID string
	Seq        int64
	N          int // 1 for the first attempt at the message
	At         time.Time
	StatusCode int // 0 when no response came
	Latency    time.Duration
	Response   string // the start of the response body, at most AttemptResponseBytes
	Error      string // what failed; empty on success
}

// AttemptRecord is an attempt and the state it leaves its message in.
type AttemptRecord struct {
	Attempt
	Next MessageState
}

// AttemptResult is what recording an attempt did.
type AttemptResult struct {
	Recorded     bool      // false: the message was no longer leased to the holder
	FailingSince time.Time // the endpoint's, after the attempt
}

// MaxAttemptRecords bounds one RecordAttempts call.
const MaxAttemptRecords = 1000

// TimeRange bounds a listing; a zero end is open.
type TimeRange struct{ Since, Until time.Time }

// MessageQuery selects an endpoint's messages: any of Statuses (all when
// empty), created within Range.
type MessageQuery struct {
	EndpointID string
	Statuses   []MessageStatus
	Range      TimeRange
	PageSize   int // 1..MaxPageSize; 0 means DefaultPageSize
	PageToken  string
}

// MessagePage is one page of messages, without their bodies.
type MessagePage struct {
	Messages      []OutboxMessage
	NextPageToken string
}

// AttemptQuery selects an endpoint's attempts made within Range, of one
// message when Seq is not 0.
type AttemptQuery struct {
	EndpointID string
	Seq        int64
	Range      TimeRange
	PageSize   int
	PageToken  string
}

// AttemptPage is one page of attempts.
type AttemptPage struct {
	Attempts      []Attempt
	NextPageToken string
}

// RequeueQuery selects the messages to send again: the one of Seq when it
// is not 0, else those whose change occurred at or after Since.
type RequeueQuery struct {
	EndpointID string
	Seq        int64
	Since      time.Time
	Now        time.Time
}

// EndpointStats counts an endpoint's messages not delivered.
type EndpointStats struct {
	EndpointID string
	Pending    int       // to send
	Retrying   int       // of Pending, those that failed at least once
	Exhausted  int       // dead letters
	OldestAt   time.Time // creation of the oldest pending one; zero when none
}

// Cursor validates q and says where its page starts: messages with Seq
// below before (0 for the first page).
func (q MessageQuery) Cursor() (limit int, before int64, err error) {
	for _, s := range q.Statuses {
		if !s.valid() {
			return 0, 0, fmt.Errorf("%w: message status %d", ErrInvalidArgument, int(s))
		}
	}
	return outboxCursor(q.PageSize, q.PageToken)
}

// Cursor validates q and says where its page starts: attempts recorded
// before the one numbered before in the store (0 for the first page).
func (q AttemptQuery) Cursor() (limit int, before int64, err error) {
	return outboxCursor(q.PageSize, q.PageToken)
}

// outboxCursor reads an outbox page token: the key the page continues
// below, in decimal. It names no secret, so it needs no checksum: a
// mistyped one is refused or starts a page elsewhere in the same listing.
func outboxCursor(size int, token string) (limit int, before int64, err error) {
	if limit, err = PageLimit(size); err != nil || token == "" {
		return limit, 0, err
	}
	before, err = strconv.ParseInt(token, 10, 64)
	if err != nil || before <= 0 {
		return 0, 0, fmt.Errorf("%w: page token %q is not one this listing issued", ErrInvalidArgument, token)
	}
	return limit, before, nil
}

// OutboxPageToken is the token of the page after one whose last key is
// last.
func OutboxPageToken(last int64) string { return strconv.FormatInt(last, 10) }
