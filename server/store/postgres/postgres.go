// Package postgres is the store.Store driver that several replicas share:
// one PostgreSQL database (or one schema of it), on pgx's native API and
// connection pool. It needs PostgreSQL 10 or later (identity columns) and
// is tested with 15.
//
// Every ingest takes a transaction-level advisory lock first, so appends are
// serialised and a change's Seq order is its commit order (see Ingest).
// Reads run as single statements on the pool and never wait for writers.
// The Store is a store.Watcher: a commit that appends changes sends a
// NOTIFY, and WatchChanges turns those into wake-ups on every replica.
//
// # Database URL
//
// Open takes a URL or key/value string as pgx parses it
// (https://pkg.go.dev/github.com/jackc/pgx/v5/pgxpool#ParseConfig), so the
// pool_* parameters tune the pool. Other parameters go to the server as
// settings: with search_path=name the store lives in the schema name, which
// Open creates when missing. That lets several stores share one database,
// each in its own schema, as the tests do (see pgtest).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

// Store is the PostgreSQL driver. Its methods are safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	opts store.Options
	// logID is the oid of the changes table: it names the advisory lock
	// that serialises appends and the channel that announces them, so
	// stores in other schemas of the same database neither wait for nor
	// wake each other.
	logID   uint32
	channel string

	guard sqlstore.Guard // the closed flag; wraps errors
	// Reader gives the read methods, GetHealth to ChangeSeqBefore.
	sqlstore.Reader
	// Rebuilder gives the Derivation and Rebuild methods (newRebuilder).
	sqlstore.Rebuilder
	// Syncer gives the methods of the provider sync (newSyncer).
	sqlstore.Syncer
	// Checker gives the Check method (newChecker).
	sqlstore.Checker
	// Pruner gives the Prune method (newPruner).
	sqlstore.Pruner
	// Outboxer gives the store.Outbox methods (newOutboxer).
	sqlstore.Outboxer
	mu       sync.Mutex         // orders Close against WatchChanges joining watchers
	closing  context.Context    // done once Close has begun: watchers return
	stop     context.CancelFunc // ends closing
	watchers sync.WaitGroup     // running WatchChanges calls, which Close waits for
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Watcher = (*Store)(nil)
	_ store.Outbox  = (*Store)(nil)
)

// Open connects to the database at databaseURL (see the package doc) and
// brings its schema up to date.
func Open(ctx context.Context, databaseURL string, opts store.Options) (_ *Store, err error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// pgx's parse errors quote the URL, and hide its password only on
		// a best-effort basis.
		return nil, fmt.Errorf("postgres: open: %w: the database URL does not parse", store.ErrInvalidArgument)
	}
	s := &Store{opts: opts, guard: sqlstore.Guard{Driver: "postgres", Transient: transient}}
	s.Rebuilder = newRebuilder(s)
	s.closing, s.stop = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			s.stop()
			if s.pool != nil {
				s.pool.Close()
			}
			err = fmt.Errorf("postgres: open %s: %w", describe(cfg), err)
		}
	}()
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, err
	}
	s.Reader = sqlstore.NewReader(&s.guard, querier{s.pool}, &readSQL)
	s.Syncer = newSyncer(s)
	s.Checker = newChecker(s)
	s.Pruner = newPruner(s)
	s.Outboxer = newOutboxer(s)
	// The pool connects lazily: say so when the server is what fails.
	if err = s.pool.Ping(ctx); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err = migrate(ctx, s.pool); err != nil {
		return nil, err
	}
	if err = s.pool.QueryRow(ctx, `SELECT 'changes'::regclass::oid`).Scan(&s.logID); err != nil {
		return nil, err
	}
	s.channel = fmt.Sprintf("accounthealth_changes_%d", s.logID)
	return s, nil
}

// describe names the database for errors, without the password.
func describe(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	d := fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
	if sp := c.RuntimeParams["search_path"]; sp != "" {
		d += " search_path=" + sp
	}
	return d
}

// Close ends every WatchChanges and releases the pool. Calls after it,
// Close included, fail with store.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	err := s.guard.Close()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.stop()
	s.watchers.Wait()
	s.pool.Close()
	return nil
}

// pingSQL reads the schema version and commits a heartbeat, in one round
// trip: a standby, or a primary turned read-only, refuses the write.
const pingSQL = `WITH beat AS (UPDATE heartbeat SET beat_at = $1 WHERE id = 1)
SELECT COALESCE(MAX(version), 0) FROM schema_migrations`

// Ping checks that the schema is there and that the server commits writes.
func (s *Store) Ping(ctx context.Context) error {
	const op = "ping"
	if err := s.guard.CheckOpen(op); err != nil {
		return err
	}
	var version int64
	err := s.pool.QueryRow(ctx, pingSQL, time.Now().UnixNano()).Scan(&version)
	if err == nil {
		err = schema.CheckCurrent(version)
	}
	if err != nil {
		return s.guard.Fail(op, err)
	}
	return nil
}

// isNoRows reports whether a one-row query found nothing.
func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
