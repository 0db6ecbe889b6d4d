package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"

	"github.com/accounthealth/accounthealth/server/store"
)

// A step writes each part in a few multi-row statements, whatever the
// number of endpoints and messages: on PostgreSQL a statement is a round
// trip, on SQLite a statement to prepare, and both bounded deliveries
// when each message or endpoint had its own.

// claimArms is how many endpoints one claim statement serves.
const claimArms = 50

// msgKey names a message.
type msgKey struct {
	endpoint string
	seq      int64
}

// Step runs s in one write transaction.
func (o Outboxer) Step(ctx context.Context, s store.OutboxStep) (res store.StepResult, err error) {
	err = o.run("outbox step", func() error {
		if err := s.Check(); err != nil {
			return err
		}
		return o.inTx(ctx, func(tx TxQuerier) (err error) {
			res, err = o.step(ctx, tx, &s)
			return err
		})
	})
	return res, err
}

// step records, claims and fans in, in that order: the claim sees the
// heads the records freed and leases the due heads already stored, oldest
// first; the messages fanned in then take the room the claim left, each
// head among them leased as it is inserted rather than updated after.
func (o Outboxer) step(ctx context.Context, tx TxQuerier, s *store.OutboxStep) (res store.StepResult, err error) {
	ids := make([]string, 0, len(s.Records)+len(s.Batches))
	for i := range s.Records {
		ids = append(ids, s.Records[i].EndpointID)
	}
	for i := range s.Batches {
		ids = append(ids, s.Batches[i].EndpointID)
	}
	failing, err := o.lockEndpoints(ctx, tx, ids)
	if err != nil {
		return res, err
	}
	if res.Results, err = o.recordAll(ctx, tx, s.Claim.Holder, s.Records, failing); err != nil {
		return res, err
	}
	claimed, err := o.claimAll(ctx, tx, &s.Claim)
	if err != nil {
		return res, err
	}
	var leased []store.OutboxMessage
	if res.Moved, leased, err = o.fanInAll(ctx, tx, s.Batches, &s.Claim, claimed); err != nil {
		return res, err
	}
	res.Messages = inClaimOrder(&s.Claim, append(claimed, leased...))
	return res, nil
}

// inClaimOrder sorts ms by endpoint as q lists them, oldest first.
func inClaimOrder(q *store.MessageClaim, ms []store.OutboxMessage) []store.OutboxMessage {
	order := make(map[string]int, len(q.Endpoints))
	for i, e := range q.Endpoints {
		order[e.EndpointID] = i
	}
	slices.SortFunc(ms, func(a, b store.OutboxMessage) int {
		return cmp.Or(cmp.Compare(order[a.EndpointID], order[b.EndpointID]), cmp.Compare(a.Seq, b.Seq))
	})
	return ms
}

// lockEndpoints reads the failing_since of the endpoints of ids and, on
// PostgreSQL, locks their rows, in id order, for the transaction. Every
// writer of an endpoint's messages' blocked flags (records, fan-ins,
// requeues) takes the lock first, so two of them never decide an
// account's head from snapshots that miss each other's rows: a fan-in
// that saw a message pending while a record delivered it would leave the
// account without a head.
func (o Outboxer) lockEndpoints(ctx context.Context, tx TxQuerier, ids []string) (map[string]sql.NullInt64, error) {
	failing := map[string]sql.NullInt64{}
	if len(ids) == 0 {
		return failing, nil
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	b := NewBinder(o.sql.dialect.P)
	query := "SELECT id, failing_since FROM notify_endpoints WHERE " + oneOf(o.sql.dialect, "id", ids, b.Bind) + " ORDER BY id"
	if o.sql.dialect.rowLocks {
		query += " FOR NO KEY UPDATE"
	}
	err := tx.Query(ctx, query, b.Args, func(rows Rows) error {
		for rows.Next() {
			var id string
			var at sql.NullInt64
			if err := rows.Scan(&id, &at); err != nil {
				return err
			}
			failing[id] = at
		}
		return rows.Err()
	})
	return failing, err
}

// values is a VALUES list of rows. On PostgreSQL each value is cast to
// its column's type, since it types an untyped parameter of a VALUES list
// as text; SQLite takes the values as bound, and parsing a cast for each
// of a few thousand parameters took a tenth of a pass. Both databases
// name its columns column1, column2, ...
func (d Dialect) values(b *Binder, types []string, rows [][]any) string {
	out := make([]string, len(rows))
	for i, r := range rows {
		ps := make([]string, len(r))
		for j, v := range r {
			if ps[j] = b.Bind(v); d.castValues {
				ps[j] = "CAST(" + ps[j] + " AS " + types[j] + ")"
			}
		}
		out[i] = "(" + strings.Join(ps, ", ") + ")"
	}
	return "VALUES " + strings.Join(out, ", ")
}

// recordAll finishes the messages of rs still leased to holder, records
// their attempts, keeps the endpoints' failing_since (failing, read under
// the lock) and makes the next message of each account whose message
// left pending its head.
func (o Outboxer) recordAll(ctx context.Context, tx TxQuerier, holder string, rs []store.AttemptRecord, failing map[string]sql.NullInt64) ([]store.AttemptResult, error) {
	results := make([]store.AttemptResult, len(rs))
	if len(rs) == 0 {
		return results, nil
	}
	recorded, err := o.finishAll(ctx, tx, holder, rs)
	if err != nil {
		return nil, err
	}
	var attempts, done [][]any
	changed := map[string]bool{}
	for i := range rs {
		a, next := &rs[i].Attempt, &rs[i].Next
		account, ok := recorded[msgKey{a.EndpointID, a.Seq}]
		if !ok {
			continue
		}
		attempts = append(attempts, []any{a.EndpointID, a.Seq, a.N, clampedNanos(a.At), a.StatusCode, int64(a.Latency), a.Response, a.Error})
		f := failing[a.EndpointID]
		switch {
		case next.Status == store.MessageDelivered:
			f = sql.NullInt64{}
		case !f.Valid:
			f = sql.NullInt64{Int64: clampedNanos(a.At), Valid: true}
		}
		changed[a.EndpointID] = changed[a.EndpointID] || f != failing[a.EndpointID]
		failing[a.EndpointID] = f
		results[i] = store.AttemptResult{Recorded: true, FailingSince: FromNanos(f)}
		if next.Status != store.MessagePending {
			done = append(done, []any{a.EndpointID, account})
		}
	}
	if err := o.insertAttempts(ctx, tx, attempts); err != nil {
		return nil, err
	}
	if err := o.setFailing(ctx, tx, changed, failing); err != nil {
		return nil, err
	}
	return results, o.unblockNext(ctx, tx, done)
}

// finishAll sets the next state of each message of rs leased to holder,
// releasing its lease, and returns the account of each it set.
func (o Outboxer) finishAll(ctx context.Context, tx TxQuerier, holder string, rs []store.AttemptRecord) (map[msgKey]string, error) {
	d := o.sql.dialect
	b := NewBinder(d.P)
	rows := make([][]any, len(rs))
	for i := range rs {
		a, n := &rs[i].Attempt, &rs[i].Next
		rows[i] = []any{a.EndpointID, a.Seq, int(n.Status), n.Retries, clampedNanos(n.NextAt), n.LastError}
	}
	v := d.values(b, []string{"TEXT", d.int64, d.int64, d.int64, d.int64, "TEXT"}, rows)
	query := "UPDATE notify_messages SET status = v.column3, retries = v.column4, next_at = v.column5, last_error = v.column6," +
		" attempts = attempts + 1, lease_holder = '', lease_until = 0 FROM (" + v + ") AS v" +
		" WHERE endpoint_id = v.column1 AND seq = v.column2 AND lease_holder = " + b.Bind(holder) +
		" RETURNING endpoint_id, seq, account_id"
	recorded := make(map[msgKey]string, len(rs))
	err := tx.Query(ctx, query, b.Args, func(rows Rows) error {
		for rows.Next() {
			var k msgKey
			var account string
			if err := rows.Scan(&k.endpoint, &k.seq, &account); err != nil {
				return err
			}
			recorded[k] = account
		}
		return rows.Err()
	})
	return recorded, err
}

// insertAttempts inserts rows of attemptCols but the id.
func (o Outboxer) insertAttempts(ctx context.Context, tx TxQuerier, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	b := NewBinder(o.sql.dialect.P)
	list := make([]string, len(rows))
	for i, r := range rows {
		ps := make([]string, len(r))
		for j, v := range r {
			ps[j] = b.Bind(v)
		}
		list[i] = "(" + strings.Join(ps, ", ") + ")"
	}
	return tx.Exec(ctx, "INSERT INTO notify_attempts ("+strings.Join(attemptCols[1:], ", ")+") VALUES "+strings.Join(list, ", "), b.Args...)
}

// setFailing writes the failing_since of the endpoints changed.
func (o Outboxer) setFailing(ctx context.Context, tx TxQuerier, changed map[string]bool, failing map[string]sql.NullInt64) error {
	var rows [][]any
	for id, c := range changed {
		if c {
			rows = append(rows, []any{id, failing[id]})
		}
	}
	if len(rows) == 0 {
		return nil
	}
	b := NewBinder(o.sql.dialect.P)
	v := o.sql.dialect.values(b, []string{"TEXT", o.sql.dialect.int64}, rows)
	return tx.Exec(ctx, "UPDATE notify_endpoints SET failing_since = v.column2 FROM ("+v+") AS v WHERE id = v.column1", b.Args...)
}

// unblockNext makes the oldest pending message of each (endpoint,
// account) of pairs its head.
func (o Outboxer) unblockNext(ctx context.Context, tx TxQuerier, pairs [][]any) error {
	if len(pairs) == 0 {
		return nil
	}
	b := NewBinder(o.sql.dialect.P)
	v := o.sql.dialect.values(b, []string{"TEXT", "TEXT"}, pairs)
	// One lookup of the account index a pair: a GROUP BY over the pending
	// messages of the pairs' accounts read far more on SQLite.
	id := o.sql.dialect.rowID
	// The pending message the subquery finds stays so under the endpoint's
	// lock; blocked = 1 spares the heads already unblocked a write, and no
	// condition names an index for the planner to read instead of the rows.
	return tx.Exec(ctx, "UPDATE notify_messages SET blocked = 0 WHERE blocked = 1 AND "+
		o.sql.dialect.rowIn("SELECT (SELECT m."+id+" FROM notify_messages m WHERE m.endpoint_id = v.column1"+
			" AND m.account_id = v.column2 AND m.status = 1 ORDER BY m.seq LIMIT 1) FROM ("+v+") AS v"), b.Args...)
}

// olderPending holds for a message of notify_messages with an older one of
// its account pending: one that is not its account's head.
const olderPending = "EXISTS (SELECT 1 FROM notify_messages o WHERE o.endpoint_id = notify_messages.endpoint_id" +
	" AND o.account_id = notify_messages.account_id AND o.status = 1 AND o.seq < notify_messages.seq)"

// fanInAll moves the cursor of each batch still at its From and stores
// the messages of those that moved, marking which are not heads, and
// leases to q's holder the heads of q's endpoints that fit in the room
// the messages claimed left them. It returns the messages it leased.
func (o Outboxer) fanInAll(ctx context.Context, tx TxQuerier, batches []store.FanInBatch, q *store.MessageClaim, claimed []store.OutboxMessage) ([]bool, []store.OutboxMessage, error) {
	moved := make([]bool, len(batches))
	if len(batches) == 0 {
		return moved, nil, nil
	}
	d := o.sql.dialect
	b := NewBinder(d.P)
	rows := make([][]any, len(batches))
	for i := range batches {
		rows[i] = []any{batches[i].EndpointID, batches[i].From, batches[i].To}
	}
	v := d.values(b, []string{"TEXT", d.int64, d.int64}, rows)
	ids, err := queryAll(ctx, tx, "UPDATE notify_endpoints SET change_cursor = v.column3 FROM ("+v+") AS v"+
		" WHERE id = v.column1 AND change_cursor = v.column2 RETURNING id", b.Args, scanString)
	if err != nil {
		return nil, nil, err
	}
	var ms []newMessage
	for i := range batches {
		if moved[i] = slices.Contains(ids, batches[i].EndpointID); moved[i] {
			for j := range batches[i].Messages {
				ms = append(ms, newMessage{OutboxMessage: &batches[i].Messages[j]})
			}
		}
	}
	if len(ms) == 0 {
		return moved, nil, nil
	}
	pending, err := o.pendingAccounts(ctx, tx, ms)
	if err != nil {
		return nil, nil, err
	}
	leased := leaseHeads(ms, pending, q, claimed)
	if err := o.insertBodies(ctx, tx, ms); err != nil {
		return nil, nil, err
	}
	for chunk := range slices.Chunk(ms, insertChunk) {
		query, args := o.sql.insertMessagesSQL(chunk)
		if err := tx.Exec(ctx, query, args...); err != nil {
			return nil, nil, err
		}
	}
	return moved, leased, nil
}

// insertBodies stores the body of each change of ms once, whatever the
// endpoints it goes to (another fan-in may have stored it already).
func (o Outboxer) insertBodies(ctx context.Context, tx TxQuerier, ms []newMessage) error {
	var rows [][]any
	seen := map[int64]bool{}
	for i := range ms {
		if !seen[ms[i].Seq] {
			seen[ms[i].Seq] = true
			rows = append(rows, []any{ms[i].Seq, ms[i].Body})
		}
	}
	for chunk := range slices.Chunk(rows, insertChunk) {
		b := NewBinder(o.sql.dialect.P)
		list := make([]string, len(chunk))
		for i, r := range chunk {
			list[i] = "(" + b.Bind(r[0]) + ", " + b.Bind(r[1]) + ")"
		}
		if err := tx.Exec(ctx, "INSERT INTO notify_bodies (seq, body) VALUES "+strings.Join(list, ", ")+" ON CONFLICT (seq) DO NOTHING", b.Args...); err != nil {
			return err
		}
	}
	return nil
}

// accountKey names an account's messages to one endpoint.
type accountKey struct{ endpoint, account string }

// leaseHeads marks the messages of ms that are not heads: those after an
// earlier one of their account in ms (a batch is in order) and those
// whose account has a message pending (the stored ones are older: a
// fan-in stores only past its endpoint's cursor). It leases the heads of
// q's endpoints that are due, oldest first, as far as each endpoint's
// limit and q's budget leave room after what was claimed, and returns
// them as leased.
func leaseHeads(ms []newMessage, pending map[accountKey]bool, q *store.MessageClaim, claimed []store.OutboxMessage) []store.OutboxMessage {
	room := make(map[string]int, len(q.Endpoints))
	for _, e := range q.Endpoints {
		room[e.EndpointID] = e.Limit
	}
	for i := range claimed {
		room[claimed[i].EndpointID]--
	}
	left := q.Budget() - len(claimed)
	until := clampedNanos(q.Now.Add(q.LeaseFor))
	seen := make(map[accountKey]bool, len(ms))
	var leased []store.OutboxMessage
	for i := range ms {
		m := &ms[i]
		k := accountKey{m.EndpointID, m.AccountID}
		m.blocked = seen[k] || pending[k]
		seen[k] = true
		due := m.Status == store.MessagePending && !m.NextAt.After(q.Now)
		if !m.blocked && due && room[m.EndpointID] > 0 && left > 0 {
			room[m.EndpointID]--
			left--
			m.leaseHolder, m.leaseUntil = q.Holder, until
			leased = append(leased, *m.OutboxMessage)
		}
	}
	return leased
}

// pendingAccounts returns which accounts of ms have a message pending
// for the endpoint, from one index probe an account: a scalar subquery
// with a LIMIT, which neither database turns into a join.
func (o Outboxer) pendingAccounts(ctx context.Context, tx TxQuerier, ms []newMessage) (map[accountKey]bool, error) {
	var pairs [][]any
	seen := map[accountKey]bool{}
	for i := range ms {
		k := accountKey{ms[i].EndpointID, ms[i].AccountID}
		if !seen[k] {
			seen[k] = true
			pairs = append(pairs, []any{k.endpoint, k.account})
		}
	}
	pending := map[accountKey]bool{}
	for chunk := range slices.Chunk(pairs, pendingChunk) {
		b := NewBinder(o.sql.dialect.P)
		query := "SELECT v.column1, v.column2 FROM (" + o.sql.dialect.values(b, []string{"TEXT", "TEXT"}, chunk) + ") AS v" +
			" WHERE (SELECT 1 FROM notify_messages m WHERE m.endpoint_id = v.column1 AND m.account_id = v.column2" +
			" AND m.status = 1 LIMIT 1) = 1"
		err := tx.Query(ctx, query, b.Args, func(rows Rows) error {
			for rows.Next() {
				var k accountKey
				if err := rows.Scan(&k.endpoint, &k.account); err != nil {
					return err
				}
				pending[k] = true
			}
			return rows.Err()
		})
		if err != nil {
			return nil, err
		}
	}
	return pending, nil
}

// pendingChunk is how many accounts one pendingAccounts statement looks up.
const pendingChunk = 1000

// claimAll leases the due heads of q's endpoints, claimArms endpoints a
// statement, up to q's budget, and returns them.
func (o Outboxer) claimAll(ctx context.Context, tx TxQuerier, q *store.MessageClaim) ([]store.OutboxMessage, error) {
	var ms []store.OutboxMessage
	for es := range slices.Chunk(q.Endpoints, claimArms) {
		left := q.Budget() - len(ms)
		if left <= 0 {
			break
		}
		query, args := o.sql.ClaimSQL(q, es, left)
		some, err := queryAll(ctx, tx, query, args, scanMessageWithBody)
		if err != nil {
			return nil, err
		}
		ms = append(ms, some...)
	}
	return ms, nil
}

// ClaimSQL leases up to total due heads of endpoints es, each endpoint's
// oldest first up to its limit: one arm of a UNION ALL an endpoint, each
// reading the heads' index, read in turn until total are selected. The
// due ones are selected once (MATERIALIZED: PostgreSQL would otherwise
// run the subquery again for every row it updates, returning more than
// the limit and slowly), and locked as they are: under PostgreSQL's READ
// COMMITTED a row another claim leased meanwhile is checked again once
// its lock is free, and then left out, and a row selected cannot change
// before the update. The update finds each by its rowID alone
// (Dialect.rowIn): with the selection's conditions repeated, PostgreSQL
// could read the whole heads' index and filter it. Plan tests read the
// statement too.
func (s *OutboxSQL) ClaimSQL(q *store.MessageClaim, es []store.EndpointLimit, total int) (string, []any) {
	const head = "status = 1 AND blocked = 0" // store.MessagePending, and no older one pending
	b := NewBinder(s.dialect.P)
	now := clampedNanos(q.Now)
	arms := make([]string, len(es))
	for i, e := range es {
		arms[i] = "SELECT * FROM (SELECT " + s.dialect.rowID + " AS row_id FROM notify_messages WHERE endpoint_id = " + b.Bind(e.EndpointID) +
			" AND " + head + " AND next_at <= " + b.Bind(now) + " AND lease_until <= " + b.Bind(now) +
			" ORDER BY seq LIMIT " + b.Bind(e.Limit) + s.dialect.skipLocked("UPDATE", "notify_messages") + ") AS arm" + strconv.Itoa(i)
	}
	query := "WITH due AS MATERIALIZED (" + strings.Join(arms, " UNION ALL ") + " LIMIT " + b.Bind(total) + ") UPDATE notify_messages SET lease_holder = " +
		b.Bind(q.Holder) + ", lease_until = " + b.Bind(clampedNanos(q.Now.Add(q.LeaseFor))) +
		" WHERE " + s.dialect.rowIn("SELECT row_id FROM due") +
		" RETURNING " + strings.Join(messageCols, ", ") + ", (SELECT b.body FROM notify_bodies b WHERE b.seq = notify_messages.seq)"
	return query, b.Args
}

// requeueAll makes the messages rq selects pending again and sets the
// blocked flag of the endpoint's pending messages anew: a requeued message
// may be older than its account's head.
func (o Outboxer) requeueAll(ctx context.Context, tx TxQuerier, rq *store.RequeueQuery) (int, error) {
	if _, err := o.lockEndpoints(ctx, tx, []string{rq.EndpointID}); err != nil {
		return 0, err
	}
	b := NewBinder(o.sql.dialect.P)
	query := "UPDATE notify_messages SET status = 1, retries = 0, next_at = " + b.Bind(clampedNanos(rq.Now)) +
		", last_error = '' WHERE endpoint_id = " + b.Bind(rq.EndpointID)
	if rq.Seq != 0 {
		query += " AND seq = " + b.Bind(rq.Seq)
	} else {
		query += " AND occurred_at >= " + b.Bind(clampedNanos(rq.Since))
	}
	seqs, err := queryAll(ctx, tx, query+" RETURNING seq", b.Args, func(sc Scanner) (s int64, err error) {
		return s, sc.Scan(&s)
	})
	if err != nil || len(seqs) == 0 {
		return len(seqs), err
	}
	err = tx.Exec(ctx, "UPDATE notify_messages SET blocked = CASE WHEN "+olderPending+" THEN 1 ELSE 0 END"+
		" WHERE endpoint_id = "+o.sql.dialect.P(1)+" AND status = 1", rq.EndpointID)
	return len(seqs), err
}
