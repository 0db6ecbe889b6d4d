package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

var syncSQL = sqlstore.NewSyncSQL(sqlstore.PostgreSQL)

// newSyncer gives s its SyncState, SaveSyncState, ClaimDue and
// OldestUnconfirmed methods, on the pool.
func newSyncer(s *Store) sqlstore.Syncer {
	q := querier{s.pool}
	return sqlstore.NewSyncer(&s.guard, q, q, &syncSQL, func(ctx context.Context, c sqlstore.Claim) (due []store.DueAccount, err error) {
		// One transaction, committed once. Claims never wait for each
		// other's leases: a claim leases only records it locked.
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
			due, err = sqlstore.ClaimRanges(c, func(c *sqlstore.Claim, unconfirmed bool) ([]store.DueAccount, error) {
				query, args := claimSQL(c, unconfirmed)
				return sqlstore.QueryDue(ctx, querier{tx}, query, args)
			})
			return err
		})
		if err != nil {
			return nil, err
		}
		// Apart: in the claim's transaction, its locks on expired leases
		// could make two claims wait for each other.
		return due, syncSQL.Expire(ctx, q, &c, len(due))
	})
}

// claimSQL claims one range of what is due in one statement, safe while
// other replicas claim. It locks the records it selects, skipping those
// another claim holds, so concurrent claims take different accounts; and
// it leases an account only if no lease of it is live, as committed by
// then: a claim whose snapshot missed a lease committed meanwhile finds it
// on conflict and leaves the account out. Only the accounts it leased are
// returned.
func claimSQL(c *sqlstore.Claim, unconfirmed bool) (string, []any) {
	b := sqlstore.NewBinder(sqlstore.Dollar)
	due := sqlstore.DueSQL(sqlstore.PostgreSQL, c, unconfirmed, b)
	// Cast: in an INSERT's SELECT, a parameter's type is not inferred.
	lease := "INSERT INTO leases (account_id, holder, expires_at) SELECT account_id, " +
		b.Bind(c.Holder) + "::text, " + b.Bind(c.Until) + "::bigint FROM due" +
		sqlstore.LeaseConflict(b.Bind(c.Now)) + " RETURNING account_id"
	return "WITH due AS (" + due + "), leased AS (" + lease + ")" +
		" SELECT due.account_id, due.unconfirmed, due.confirmed_at FROM due JOIN leased USING (account_id)" +
		" ORDER BY " + sqlstore.DueOrder("due."), b.Args
}

var outboxSQL = sqlstore.NewOutboxSQL(sqlstore.PostgreSQL)

// newOutboxer gives s its store.Outbox methods, on the pool. Claims from
// several replicas lock the messages they lease and skip those another
// claim holds (see sqlstore.OutboxSQL).
func newOutboxer(s *Store) sqlstore.Outboxer {
	q := querier{s.pool}
	return sqlstore.NewOutboxer(&s.guard, q, q, func(ctx context.Context, fn func(sqlstore.TxQuerier) error) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(querier{tx}) })
	}, &outboxSQL)
}
