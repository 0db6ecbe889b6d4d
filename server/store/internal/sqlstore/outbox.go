package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/store"
)

// Column lists of the outbox's tables, in the order the codecs below
// read and write them.
var (
	endpointCols = []string{
		"id", "url", "description", "filter", "rate_limit", "concurrency", "secrets",
		"disabled", "disabled_reason", "change_cursor", "failing_since", "created_at", "updated_at",
	}
	// messageCols but the body, which listings leave out.
	messageCols = []string{
		"endpoint_id", "seq", "account_id", "type", "occurred_at", "status", "retries",
		"attempts", "next_at", "last_error", "created_at",
	}
	// cursorCol is change_cursor's place in endpointCols.
	cursorCol   = slices.Index(endpointCols, "change_cursor")
	attemptCols = []string{"id", "endpoint_id", "seq", "n", "at", "status_code", "latency", "response", "error"}
)

// OutboxSQL is the outbox's SQL in one dialect.
type OutboxSQL struct {
	dialect Dialect

	createEndpoint, getEndpoint, listEndpoints, updateEndpoint, deleteEndpoint, stats string
}

// NewOutboxSQL builds the outbox's statements for dialect d.
func NewOutboxSQL(d Dialect) OutboxSQL {
	p := d.P
	sel := "SELECT " + strings.Join(endpointCols, ", ") + " FROM notify_endpoints"
	// The cursor starts at the end of the log, read in the same statement;
	// the other columns bind endpointArgs but the cursor.
	params := make([]string, len(endpointCols))
	n := 0
	for i, c := range endpointCols {
		if c == "change_cursor" {
			params[i] = "(SELECT COALESCE(MAX(seq), 0) FROM changes)"
			continue
		}
		n++
		params[i] = p(n)
	}
	set := make([]string, 0, len(endpointCols))
	for _, c := range updatedCols() {
		set = append(set, c+" = "+p(len(set)+1))
	}
	const pending = "status = 1" // store.MessagePending
	return OutboxSQL{
		dialect: d,
		createEndpoint: "INSERT INTO notify_endpoints (" + strings.Join(endpointCols, ", ") + ") VALUES (" +
			strings.Join(params, ", ") + ") RETURNING change_cursor",
		getEndpoint:    sel + " WHERE id = " + p(1),
		listEndpoints:  sel + " ORDER BY id",
		updateEndpoint: "UPDATE notify_endpoints SET " + strings.Join(set, ", ") + " WHERE id = " + p(len(set)+1) + " RETURNING id",
		deleteEndpoint: "DELETE FROM notify_endpoints WHERE id = " + p(1) + " RETURNING id",
		stats: "SELECT endpoint_id, " + sumIf(pending) + ", " + sumIf(pending+" AND retries > 0") + ", " +
			sumIf("status = 3") + ", MIN(CASE WHEN " + pending + " THEN created_at END)" +
			" FROM notify_messages WHERE status <> 2 GROUP BY endpoint_id ORDER BY endpoint_id",
	}
}

// insertChunk is how many messages one INSERT writes: one statement, not
// a round trip each, and well within both databases' parameter limits.
const insertChunk = 200

// newMessage is a message fanned in: whether an older one of its account
// is pending (it is no head), and its lease when the step leases it as
// it inserts it.
type newMessage struct {
	*store.OutboxMessage
	blocked     bool
	leaseHolder string
	leaseUntil  int64
}

// insertMessagesSQL inserts ms. A message already there stays as it is;
// fan-ins only insert after the cursor they move, so none is.
func (s *OutboxSQL) insertMessagesSQL(ms []newMessage) (string, []any) {
	b := NewBinder(s.dialect.P)
	rows := make([]string, len(ms))
	for i := range ms {
		vals := messageArgs(&ms[i])
		ps := make([]string, len(vals))
		for j, v := range vals {
			ps[j] = b.Bind(v)
		}
		rows[i] = "(" + strings.Join(ps, ", ") + ")"
	}
	return "INSERT INTO notify_messages (" + strings.Join(messageCols, ", ") + ", lease_holder, lease_until, blocked) VALUES " +
		strings.Join(rows, ", ") + " ON CONFLICT DO NOTHING", b.Args
}

// updatedCols are the endpoint columns UpdateEndpoint sets, in endpointCols' order.
func updatedCols() []string {
	var cols []string
	for _, c := range endpointCols[1:] {
		if c != "change_cursor" && c != "created_at" {
			cols = append(cols, c)
		}
	}
	return cols
}

func sumIf(cond string) string {
	return "CAST(COALESCE(SUM(CASE WHEN " + cond + " THEN 1 ELSE 0 END), 0) AS BIGINT)"
}

func placeholders(p Placeholder, n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = p(i + 1)
	}
	return strings.Join(ps, ", ")
}

// Outboxer gives a driver that embeds it its store.Outbox methods.
type Outboxer struct {
	guard *Guard
	read  Querier
	write TxQuerier
	inTx  func(ctx context.Context, fn func(TxQuerier) error) error
	sql   *OutboxSQL
}

var _ store.Outbox = Outboxer{}

// NewOutboxer is the Outboxer of a driver: its guard, the Queriers of its
// read and write handles, inTx, which runs fn in one write transaction,
// and its dialect's OutboxSQL.
func NewOutboxer(g *Guard, read Querier, write TxQuerier, inTx func(context.Context, func(TxQuerier) error) error, sql *OutboxSQL) Outboxer {
	return Outboxer{guard: g, read: read, write: write, inTx: inTx, sql: sql}
}

// run checks that the store is open and wraps fn's error as op's.
func (o Outboxer) run(op string, fn func() error) error {
	if err := o.guard.CheckOpen(op); err != nil {
		return err
	}
	if err := fn(); err != nil {
		return o.guard.Fail(op, err)
	}
	return nil
}

func notFound(what, id string) error { return fmt.Errorf("%w: %s %q", store.ErrNotFound, what, id) }

// CreateEndpoint stores e with its cursor at the end of the log.
func (o Outboxer) CreateEndpoint(ctx context.Context, e store.Endpoint) (store.Endpoint, error) {
	err := o.run("create endpoint", func() error {
		args, err := endpointArgs(&e)
		if err != nil {
			return err
		}
		args = slices.Delete(args, cursorCol, cursorCol+1)
		e.Cursor, err = queryInt64(ctx, o.write, o.sql.createEndpoint, args...)
		return err
	})
	return e, err
}

// GetEndpoint returns the endpoint of id.
func (o Outboxer) GetEndpoint(ctx context.Context, id string) (e store.Endpoint, err error) {
	err = o.run("get endpoint", func() error {
		var found bool
		e, found, err = queryOne(ctx, o.read, o.sql.getEndpoint, []any{id}, scanEndpoint)
		if err == nil && !found {
			err = notFound("endpoint", id)
		}
		return err
	})
	return e, err
}

// ListEndpoints returns every endpoint.
func (o Outboxer) ListEndpoints(ctx context.Context) (es []store.Endpoint, err error) {
	err = o.run("list endpoints", func() error {
		es, err = queryAll(ctx, o.read, o.sql.listEndpoints, nil, scanEndpoint)
		return err
	})
	return es, err
}

// UpdateEndpoint replaces e's settings.
func (o Outboxer) UpdateEndpoint(ctx context.Context, e store.Endpoint) error {
	return o.run("update endpoint", func() error {
		args, err := endpointArgs(&e)
		if err != nil {
			return err
		}
		// Bound as the statement numbers them: the columns it sets, then id.
		var bound []any
		for i, c := range endpointCols[1:] {
			if c != "change_cursor" && c != "created_at" {
				bound = append(bound, args[i+1])
			}
		}
		bound = append(bound, e.ID)
		return o.expectRow(ctx, o.write, o.sql.updateEndpoint, bound, "endpoint", e.ID)
	})
}

// expectRow runs a statement that returns a row when it changed one, and
// ErrNotFound when it returns none.
func (o Outboxer) expectRow(ctx context.Context, q Querier, query string, args []any, what, id string) error {
	_, found, err := queryOne(ctx, q, query, args, func(sc Scanner) (v any, err error) { return nil, sc.Scan(&v) })
	if err == nil && !found {
		err = notFound(what, id)
	}
	return err
}

// DeleteEndpoint deletes the endpoint; its messages and attempts go with
// it (ON DELETE CASCADE).
func (o Outboxer) DeleteEndpoint(ctx context.Context, id string) error {
	return o.run("delete endpoint", func() error {
		return o.expectRow(ctx, o.write, o.sql.deleteEndpoint, []any{id}, "endpoint", id)
	})
}

// FanIn stores each batch's messages and moves its cursor, if it is
// still at From: a step that only fans in.
func (o Outboxer) FanIn(ctx context.Context, batches []store.FanInBatch) ([]bool, error) {
	res, err := o.Step(ctx, store.OutboxStep{Batches: batches})
	return res.Moved, err
}

// ClaimMessages leases the due messages of q's endpoints: a step that
// only claims.
func (o Outboxer) ClaimMessages(ctx context.Context, q store.MessageClaim) ([]store.OutboxMessage, error) {
	if err := q.Check(); err != nil {
		return nil, o.guard.Fail("claim messages", err)
	}
	res, err := o.Step(ctx, store.OutboxStep{Claim: q})
	return res.Messages, err
}

// RecordAttempts records each attempt whose message is still leased to
// holder, and sets its state: a step that only records.
func (o Outboxer) RecordAttempts(ctx context.Context, holder string, records []store.AttemptRecord) ([]store.AttemptResult, error) {
	res, err := o.Step(ctx, store.OutboxStep{Records: records, Claim: store.MessageClaim{Holder: holder}})
	return res.Results, err
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

func scanNullTime(sc Scanner) (time.Time, error) {
	var n sql.NullInt64
	err := sc.Scan(&n)
	return FromNanos(n), err
}

// ListMessages pages through an endpoint's messages, newest first.
func (o Outboxer) ListMessages(ctx context.Context, mq store.MessageQuery) (page store.MessagePage, err error) {
	err = o.run("list messages", func() error {
		limit, before, err := mq.Cursor()
		if err != nil {
			return err
		}
		b := NewBinder(o.sql.dialect.P)
		query := "SELECT " + strings.Join(messageCols, ", ") + " FROM notify_messages WHERE endpoint_id = " + b.Bind(mq.EndpointID) +
			pageConditions(b, "seq", before, "created_at", mq.Range)
		if len(mq.Statuses) > 0 {
			in := make([]string, len(mq.Statuses))
			for i, s := range mq.Statuses {
				in[i] = b.Bind(int(s))
			}
			query += " AND status IN (" + strings.Join(in, ", ") + ")"
		}
		query += " ORDER BY seq DESC LIMIT " + b.Bind(limit+1)
		ms, err := queryAll(ctx, o.read, query, b.Args, scanMessage)
		if err != nil {
			return err
		}
		if len(ms) > limit {
			ms = ms[:limit]
			page.NextPageToken = store.OutboxPageToken(ms[limit-1].Seq)
		}
		page.Messages = ms
		return nil
	})
	return page, err
}

// pageConditions adds the bounds of a page of a listing keyed by key,
// newest first, and of r on the time column at.
func pageConditions(b *Binder, key string, before int64, at string, r store.TimeRange) string {
	var q string
	if before > 0 {
		q += " AND " + key + " < " + b.Bind(before)
	}
	if !r.Since.IsZero() {
		q += " AND " + at + " >= " + b.Bind(clampedNanos(r.Since))
	}
	if !r.Until.IsZero() {
		q += " AND " + at + " < " + b.Bind(clampedNanos(r.Until))
	}
	return q
}

// ListAttempts pages through an endpoint's attempts, newest first.
func (o Outboxer) ListAttempts(ctx context.Context, aq store.AttemptQuery) (page store.AttemptPage, err error) {
	err = o.run("list attempts", func() error {
		limit, before, err := aq.Cursor()
		if err != nil {
			return err
		}
		b := NewBinder(o.sql.dialect.P)
		query := "SELECT " + strings.Join(attemptCols, ", ") + " FROM notify_attempts WHERE endpoint_id = " + b.Bind(aq.EndpointID) +
			pageConditions(b, "id", before, "at", aq.Range)
		if aq.Seq != 0 {
			query += " AND seq = " + b.Bind(aq.Seq)
		}
		query += " ORDER BY id DESC LIMIT " + b.Bind(limit+1)
		as, err := queryAll(ctx, o.read, query, b.Args, scanAttempt)
		if err != nil {
			return err
		}
		if len(as) > limit {
			as = as[:limit]
			page.NextPageToken = store.OutboxPageToken(as[limit-1].ID)
		}
		page.Attempts = as
		return nil
	})
	return page, err
}

// Requeue makes the messages rq selects pending again.
func (o Outboxer) Requeue(ctx context.Context, rq store.RequeueQuery) (n int, err error) {
	err = o.run("requeue", func() error {
		return o.inTx(ctx, func(tx TxQuerier) (err error) {
			n, err = o.requeueAll(ctx, tx, &rq)
			return err
		})
	})
	return n, err
}

// OutboxStats counts each endpoint's messages not delivered.
func (o Outboxer) OutboxStats(ctx context.Context) (st []store.EndpointStats, err error) {
	err = o.run("outbox stats", func() error {
		st, err = queryAll(ctx, o.read, o.sql.stats, nil, func(sc Scanner) (s store.EndpointStats, err error) {
			var oldest sql.NullInt64
			var pending, retrying, exhausted int64
			err = sc.Scan(&s.EndpointID, &pending, &retrying, &exhausted, &oldest)
			s.Pending, s.Retrying, s.Exhausted, s.OldestAt = int(pending), int(retrying), int(exhausted), FromNanos(oldest)
			return s, err
		})
		return err
	})
	return st, err
}

func endpointArgs(e *store.Endpoint) ([]any, error) {
	secrets, err := json.Marshal(e.Secrets)
	if err != nil {
		return nil, err
	}
	filter := e.Filter
	if filter == nil {
		filter = []byte{}
	}
	return []any{
		e.ID, e.URL, e.Description, filter, e.RateLimit, e.Concurrency, string(secrets),
		e.Disabled, e.DisabledReason, e.Cursor, Nanos(e.FailingSince), clampedNanos(e.CreatedAt), clampedNanos(e.UpdatedAt),
	}, nil
}

func scanEndpoint(sc Scanner) (e store.Endpoint, err error) {
	var secrets string
	var failing sql.NullInt64
	var created, updated int64
	err = sc.Scan(&e.ID, &e.URL, &e.Description, &e.Filter, &e.RateLimit, &e.Concurrency, &secrets,
		&e.Disabled, &e.DisabledReason, &e.Cursor, &failing, &created, &updated)
	if err != nil {
		return e, err
	}
	e.FailingSince = FromNanos(failing)
	e.CreatedAt, e.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return e, json.Unmarshal([]byte(secrets), &e.Secrets)
}

// messageArgs binds a row of insertMessagesSQL: messageCols, the lease
// and the blocked flag.
func messageArgs(m *newMessage) []any {
	blocked := 0
	if m.blocked {
		blocked = 1
	}
	return []any{
		m.EndpointID, m.Seq, m.AccountID, m.Type, clampedNanos(m.OccurredAt), int(m.Status), m.Retries,
		m.Attempts, clampedNanos(m.NextAt), m.LastError, clampedNanos(m.CreatedAt), m.leaseHolder, m.leaseUntil, blocked,
	}
}

func scanMessageTo(sc Scanner, m *store.OutboxMessage, extra ...any) error {
	var occurred, next, created int64
	var status int
	dest := append([]any{&m.EndpointID, &m.Seq, &m.AccountID, &m.Type, &occurred, &status, &m.Retries,
		&m.Attempts, &next, &m.LastError, &created}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return err
	}
	m.Status = store.MessageStatus(status)
	m.OccurredAt, m.NextAt, m.CreatedAt = time.Unix(0, occurred).UTC(), time.Unix(0, next).UTC(), time.Unix(0, created).UTC()
	return nil
}

func scanMessage(sc Scanner) (m store.OutboxMessage, err error) {
	return m, scanMessageTo(sc, &m)
}

func scanMessageWithBody(sc Scanner) (m store.OutboxMessage, err error) {
	return m, scanMessageTo(sc, &m, &m.Body)
}

func scanAttempt(sc Scanner) (a store.Attempt, err error) {
	var at, latency int64
	err = sc.Scan(&a.ID, &a.EndpointID, &a.Seq, &a.N, &at, &a.StatusCode, &latency, &a.Response, &a.Error)
	a.At, a.Latency = time.Unix(0, at).UTC(), time.Duration(latency)
	return a, err
}
