package postgres

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

// appendLockClass is the first key of the advisory lock that serialises
// ingests; the second is the changes table's oid (Store.logID). Arbitrary
// but fixed forever: binaries of every version must agree on it.
const appendLockClass int32 = 0x61686c67 // "ahlg"

// The statements an ingest runs. pgx prepares each once per connection and
// keeps it, so a commit parses no SQL.
var (
	lockSQL            = `SELECT pg_advisory_xact_lock($1, $2)`
	lastByHashSQL      = sqlstore.LastByHashSQL(sqlstore.Dollar)
	countRedeliverySQL = `UPDATE entries SET redeliveries = redeliveries + 1 WHERE seq = $1`
	getRecordSQL       = sqlstore.GetRecordSQL(sqlstore.Dollar)
	putRecordSQL       = sqlstore.PutRecordSQL(sqlstore.Dollar)
	appendEntrySQL     = sqlstore.AppendEntrySQL(sqlstore.Dollar) + " RETURNING seq"
	// The reads of a whole batch, sent with its BEGIN and lock: the
	// records of its accounts, the newest entry of each of its body hashes
	// and a Seq for each of its entries, which are then inserted at those
	// Seqs without waiting for an answer.
	prefetchRecordsSQL = sqlstore.GetRecordsWhereSQL("account_id = ANY($1)")
	prefetchHashesSQL  = `SELECT DISTINCT ON (body_sha256) body_sha256, seq, received_at FROM entries
		WHERE body_sha256 = ANY($1) AND ` + sqlstore.NotRedelivery + ` ORDER BY body_sha256, seq DESC`
	allocateSeqsSQL   = `SELECT nextval(pg_get_serial_sequence($1, 'seq')) FROM generate_series(1, $2)`
	appendEntryAtSQL  = insertAtSQL("entries", append(slices.Clone(sqlstore.EntryCols[1:]), "body_sha256"))
	appendChangeSQL   = sqlstore.AppendChangeSQL(sqlstore.Dollar) + " RETURNING seq"
	appendChangeAtSQL = insertAtSQL("changes", sqlstore.ChangeCols[1:])
	notifySQL         = `SELECT pg_notify($1, $2)`
	putItemReportSQL  = sqlstore.PutItemReportSQL(sqlstore.Dollar)
	setItemOutageSQL  = sqlstore.SetItemOutageSQL(sqlstore.Dollar)
	// ingestPlansSQL keeps an ingest's lookups on their indexes. pgx
	// prepares each statement once a connection, and PostgreSQL soon plans
	// it once for all its executions: planned while the tables were small,
	// the prefetch was a sequential scan, and it stayed one until an
	// ANALYZE invalidated the plan. Without autovacuum (as on the
	// development machine where this was found) none came: at 100,000 entries each batch's
	// prefetch read them all (30-50 ms) and intake fell to 250/s. Every
	// read of an ingest is by key, which an index always serves.
	ingestPlansSQL = `SET LOCAL enable_seqscan = off`
)

// Ingest commits the deliveries in one transaction under the rules of
// store.Apply. Any error rolls everything back.
//
// The transaction first takes a transaction-level advisory lock, the same
// for every ingest into this log, from every replica. Identities hand out
// Seqs when rows are inserted, but transactions commit in any order: were
// two ingests to run at once, the one holding Seq 8 could commit before
// the one holding Seq 7, and a reader that saw 8 and then read "after 8"
// would never see 7. Under the lock, appends happen one transaction at a
// time, and PostgreSQL releases a transaction's locks only after its commit
// is visible to everyone; so when an ingest takes its first Seq, every
// lower Seq is already visible or rolled back, and Seq order is commit
// order, as store.Change promises. The lock also gives store.Apply the
// serialisation it needs around accounts and body hashes. Reads take no
// lock and never wait.
//
// When changes were appended, the transaction also sends a NOTIFY, which
// PostgreSQL delivers at commit: WatchChanges on every replica hears it.
func (s *Store) Ingest(ctx context.Context, deliveries []store.Delivery) ([]store.Result, error) {
	const op = "ingest"
	if err := s.guard.CheckOpen(op); err != nil {
		return nil, err
	}
	t := s.beginIngest()
	defer t.rollback(ctx)
	t.batch.Queue(ingestPlansSQL)

	var err error
	// Measured (BenchmarkIngest, and bench/run again on 2026-12-04): for
	// one delivery the prefetch's statements cost more than the round trips
	// they save.
	if len(deliveries) > 1 {
		err = t.prefetch(ctx, deliveries)
	}
	var results []store.Result
	if err == nil {
		results, err = store.Apply(ctx, t, deliveries, s.opts)
	}
	if err == nil {
		err = s.commitIngest(ctx, t)
	}
	if err != nil {
		return nil, s.guard.Fail(op, err)
	}
	return results, nil
}

// beginIngest starts a write transaction that takes the append lock first.
func (s *Store) beginIngest() *ingestTx {
	t := &ingestTx{pool: s.pool}
	t.batch.BeginTx(pgx.TxOptions{})
	t.batch.Queue(lockSQL, appendLockClass, int32(s.logID))
	return t
}

// commitIngest commits t, announcing the changes it appended.
func (s *Store) commitIngest(ctx context.Context, t *ingestTx) error {
	s.notify(t)
	return t.commit(ctx)
}

// ingestTx is the store.Tx of one ingest. To spare round trips, the reads
// store.Apply makes are answered from what prefetch read for the whole
// batch, kept up to date with the batch's own writes, and statements whose
// results it does not read (BEGIN, the lock, inserts at allocated Seqs,
// updates) are queued and sent in one batch with the next query: a batch
// of deliveries costs three round trips (the prefetch, the writes, the
// commit) and one per item outage it changes, where each delivery cost
// three and each change appended one more. An error of a queued statement
// surfaces from that next call, which fails the ingest all the same. Under the append
// lock nobody else writes records or entries, so what prefetch read stays
// true until the commit.
type ingestTx struct {
	pool  *pgxpool.Pool
	tx    pgx.Tx    // nil until the first batch, which begins it, is sent
	batch pgx.Batch // queued, not yet sent
	// lastChange is the Seq of the last change appended, 0 if none.
	lastChange int64
	// records and newest hold what prefetch read, and the batch's writes
	// since: each account's record (the zero Record when it has none) and
	// each body hash's newest entry.
	records map[string]health.Record
	newest  map[[32]byte]hashedEntry
	// entrySeqs and changeSeqs are allocated Seqs not yet used, in order.
	entrySeqs, changeSeqs []int64
}

// hashedEntry is the newest entry of a body hash; found is false when
// there is none.
type hashedEntry struct {
	seq        int64
	receivedAt time.Time
	found      bool
}

// prefetch reads, in the transaction's first round trip, what store.Apply
// will ask of the deliveries: their records and redelivery candidates, and
// Seqs for their entries (a duplicate leaves its Seq unused: a gap, which
// Seqs may have).
func (t *ingestTx) prefetch(ctx context.Context, deliveries []store.Delivery) error {
	t.records = make(map[string]health.Record, len(deliveries))
	t.newest = make(map[[32]byte]hashedEntry, len(deliveries))
	var accounts []string
	var hashes [][]byte
	for i := range deliveries {
		if id := deliveries[i].Decoded.AccountID; id != "" {
			if _, ok := t.records[id]; !ok {
				t.records[id] = health.Record{}
				accounts = append(accounts, id)
			}
		}
		h := sha256.Sum256(deliveries[i].Body)
		if _, ok := t.newest[h]; !ok {
			t.newest[h] = hashedEntry{}
			hashes = append(hashes, h[:])
		}
	}
	t.batch.Queue(prefetchRecordsSQL, accounts).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			rec, err := sqlstore.ScanRecord(rows)
			if err != nil {
				return err
			}
			t.records[rec.AccountID] = rec
		}
		return rows.Err()
	})
	t.batch.Queue(prefetchHashesSQL, hashes).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				h  []byte
				e  = hashedEntry{found: true}
				at sql.NullInt64
			)
			if err := rows.Scan(&h, &e.seq, &at); err != nil {
				return err
			}
			e.receivedAt = sqlstore.FromNanos(at)
			t.newest[[32]byte(h)] = e
		}
		return rows.Err()
	})
	// Each delivery appends at most one entry and one change.
	t.allocate("entries", len(deliveries), &t.entrySeqs)
	t.allocate("changes", len(deliveries), &t.changeSeqs)
	return t.flush(ctx)
}

// allocate queues the allocation of n Seqs of table into seqs. Under the
// append lock, Seqs allocated in order are committed in order; those left
// unused are gaps, as a rollback leaves.
func (t *ingestTx) allocate(table string, n int, seqs *[]int64) {
	t.batch.Queue(allocateSeqsSQL, table, n).Query(func(rows pgx.Rows) error {
		*seqs = make([]int64, 0, n)
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				return err
			}
			*seqs = append(*seqs, seq)
		}
		return rows.Err()
	})
}

// insertAtSQL inserts into table at a Seq allocated before: $1 is the Seq,
// the names follow.
func insertAtSQL(table string, names []string) string {
	return strings.Replace(sqlstore.InsertSQL(sqlstore.Dollar, table, append([]string{"seq"}, names...), ""),
		") VALUES (", ") OVERRIDING SYSTEM VALUE VALUES (", 1)
}

func (t *ingestTx) LastByHash(ctx context.Context, h [32]byte) (int64, time.Time, bool, error) {
	if e, ok := t.newest[h]; ok {
		return e.seq, e.receivedAt, e.found, nil
	}
	var (
		seq int64
		at  sql.NullInt64
	)
	found, err := t.queryRow(ctx, lastByHashSQL, []any{h[:]}, func(row sqlstore.Scanner) error {
		return row.Scan(&seq, &at)
	})
	if !found || err != nil {
		return 0, time.Time{}, false, err
	}
	return seq, sqlstore.FromNanos(at), true, nil
}

func (t *ingestTx) CountRedelivery(_ context.Context, seq int64) error {
	t.batch.Queue(countRedeliverySQL, seq)
	return nil
}

func (t *ingestTx) GetRecord(ctx context.Context, accountID string) (rec health.Record, err error) {
	if rec, ok := t.records[accountID]; ok {
		return rec, nil
	}
	_, err = t.queryRow(ctx, getRecordSQL, []any{accountID}, func(row sqlstore.Scanner) (err error) {
		rec, err = sqlstore.ScanRecord(row)
		return err
	})
	return rec, err
}

func (t *ingestTx) PutRecord(_ context.Context, rec health.Record) error {
	t.batch.Queue(putRecordSQL, sqlstore.RecordArgs(&rec)...)
	if t.records != nil {
		t.records[rec.AccountID] = rec
	}
	return nil
}

func (t *ingestTx) AppendEntry(ctx context.Context, e store.Entry, h [32]byte) (seq int64, err error) {
	if len(t.entrySeqs) > 0 {
		seq, t.entrySeqs = t.entrySeqs[0], t.entrySeqs[1:]
		t.batch.Queue(appendEntryAtSQL, append([]any{seq}, sqlstore.EntryArgs(&e, h)...)...)
	} else if _, err = t.queryRow(ctx, appendEntrySQL, sqlstore.EntryArgs(&e, h), scanSeq(&seq)); err != nil {
		return 0, err
	}
	if t.newest != nil {
		t.newest[h] = hashedEntry{seq: seq, receivedAt: e.ReceivedAt, found: true}
	}
	return seq, nil
}

func (t *ingestTx) AppendChange(ctx context.Context, c store.Change) (seq int64, err error) {
	if len(t.changeSeqs) > 0 {
		seq, t.changeSeqs = t.changeSeqs[0], t.changeSeqs[1:]
		t.batch.Queue(appendChangeAtSQL, append([]any{seq}, sqlstore.ChangeArgs(&c)...)...)
	} else if _, err = t.queryRow(ctx, appendChangeSQL, sqlstore.ChangeArgs(&c), scanSeq(&seq)); err != nil {
		return 0, err
	}
	t.lastChange = max(t.lastChange, seq)
	return seq, nil
}

func (t *ingestTx) PutItemReport(_ context.Context, r health.ItemReport) error {
	t.batch.Queue(putItemReportSQL, sqlstore.ItemReportArgs(&r)...)
	return nil
}

func (t *ingestTx) SetItemOutage(ctx context.Context, o health.ItemOutage, at time.Time) (bool, error) {
	var item string
	return t.queryRow(ctx, setItemOutageSQL, sqlstore.ItemOutageArgs(&o, at), func(row sqlstore.Scanner) error { return row.Scan(&item) })
}

func scanSeq(seq *int64) func(sqlstore.Scanner) error {
	return func(row sqlstore.Scanner) error { return row.Scan(seq) }
}

// queryRow sends the queued statements followed by query and scans the row
// query returns; found is false when it returns none.
func (t *ingestTx) queryRow(ctx context.Context, query string, args []any, scan func(sqlstore.Scanner) error) (found bool, err error) {
	t.batch.Queue(query, args...).QueryRow(func(row pgx.Row) error {
		err := scan(row)
		found = err == nil
		if isNoRows(err) {
			// An answer, not a failure: failing the batch would also make
			// pgx drop its prepared statements.
			return nil
		}
		return err
	})
	err = t.flush(ctx)
	return found, err
}

// flush sends the queued statements in one round trip. The first batch
// begins the transaction on a connection from the pool.
func (t *ingestTx) flush(ctx context.Context) error {
	if t.batch.Len() == 0 {
		return nil
	}
	b := t.batch
	t.batch = pgx.Batch{}
	var br pgx.BatchResults
	if t.tx == nil {
		br = t.pool.SendBatch(ctx, &b)
		t.tx = br.Tx()
	} else {
		br = t.tx.SendBatch(ctx, &b)
	}
	return br.Close()
}

func (t *ingestTx) commit(ctx context.Context) error {
	if err := t.flush(ctx); err != nil {
		return err
	}
	return t.tx.Commit(ctx)
}

// rollback ends the transaction unless it was committed, and returns its
// connection to the pool.
func (t *ingestTx) rollback(ctx context.Context) {
	if t.tx != nil {
		_ = t.tx.Rollback(ctx) // after Commit, a harmless ErrTxClosed
	}
}
