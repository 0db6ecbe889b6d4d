// Package sqlite is the store.Store driver for a single node: one SQLite
// database file in WAL mode, on modernc.org/sqlite (pure Go, no cgo).
//
// One writer connection serialises commits, which gives Seqs in commit order
// without further locking; reads go through a separate pool and never wait
// for the writer, since WAL readers see the last committed snapshot.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

// FileName is the database file Open keeps in its directory (with SQLite's
// -wal and -shm files beside it).
const FileName = "accounthealth.db"

const (
	// busyTimeoutMS bounds how long a connection waits for a lock held by
	// another process (a backup, a second instance) before failing.
	busyTimeoutMS = "5000"
	// The writer takes the write lock when a transaction begins, not at its
	// first write, and syncs every commit: an acknowledged delivery must
	// survive power loss (callers batch deliveries to amortise the fsync).
	// The statement journals that the records' counting triggers need stay
	// in memory: in a file they were 8% of intake's CPU, in writes that no
	// crash recovery reads (the WAL is what survives a crash).
	writerParams = "_txlock=immediate&_busy_timeout=" + busyTimeoutMS +
		"&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_pragma=temp_store(memory)"
	// Readers cannot write by accident.
	readerParams = "_busy_timeout=" + busyTimeoutMS + "&_query_only=1"
)

// Store is the SQLite driver. Its methods are safe for concurrent use.
type Store struct {
	w     *sql.DB // exactly one connection: the writer
	r     *sql.DB // the read pool
	write [numWriteStmts]*sql.Stmt
	read  map[string]*sql.Stmt // readStmts, prepared on r
	opts  store.Options
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
	// rebuilding holds a token while a Rebuild runs.
	rebuilding chan struct{}
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Outbox = (*Store)(nil)
)

// Open opens (creating if needed) the database in dir and brings its schema
// up to date.
func Open(ctx context.Context, dir string, opts store.Options) (_ *Store, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	path := filepath.Join(dir, FileName)
	if strings.ContainsRune(path, '?') {
		// The driver would read the rest as connection parameters.
		return nil, fmt.Errorf("sqlite: open: %w: path %q contains '?'", store.ErrInvalidArgument, path)
	}

	s := &Store{opts: opts, guard: sqlstore.Guard{Driver: "sqlite", Transient: transient}, rebuilding: make(chan struct{}, 1)}
	s.Rebuilder = newRebuilder(s)
	defer func() {
		if err != nil {
			err = fmt.Errorf("sqlite: open %s: %w", path, errors.Join(err, s.release()))
		}
	}()
	if s.w, err = sql.Open("sqlite", path+"?"+writerParams); err != nil {
		return nil, err
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	if err = migrate(ctx, s.w); err != nil {
		return nil, err
	}
	// Opened after migrating, so every reader finds the file in WAL mode.
	if s.r, err = sql.Open("sqlite", path+"?"+readerParams); err != nil {
		return nil, err
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(readers)
	s.r.SetMaxIdleConns(readers)
	if err = prepareAll(ctx, s.w, writeSQL[:], func(i int, st *sql.Stmt) { s.write[i] = st }); err != nil {
		return nil, err
	}
	s.read = make(map[string]*sql.Stmt, len(readStmts))
	if err = prepareAll(ctx, s.r, readStmts, func(i int, st *sql.Stmt) { s.read[readStmts[i]] = st }); err != nil {
		return nil, err
	}
	s.Reader = sqlstore.NewReader(&s.guard, s.reads(), &readSQL)
	s.Syncer = newSyncer(s)
	s.Checker = newChecker(s)
	s.Pruner = newPruner(s)
	s.Outboxer = newOutboxer(s)
	return s, nil
}

// prepareAll prepares queries on db, handing each statement to put as soon
// as it is ready, so that release closes it should a later one fail.
func prepareAll(ctx context.Context, db *sql.DB, queries []string, put func(i int, st *sql.Stmt)) error {
	for i, q := range queries {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
		put(i, st)
	}
	return nil
}

// reads is the querier of the read pool.
func (s *Store) reads() querier { return querier{db: s.r, prepared: s.read} }

// Close releases the database. Calls after it, Close included, fail with
// store.ErrClosed.
func (s *Store) Close() error {
	if err := s.guard.Close(); err != nil {
		return err
	}
	if err := s.release(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// release closes whatever Open got as far as opening.
func (s *Store) release() error {
	var errs []error
	for _, st := range slices.Concat(s.write[:], slices.Collect(maps.Values(s.read))) {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, db := range []*sql.DB{s.r, s.w} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// heartbeatSQL is Ping's write: one row, rewritten.
const heartbeatSQL = "UPDATE heartbeat SET beat_at = ? WHERE id = 1"

// Ping checks that a reader can read and that the writer can commit a
// write (a heartbeat), which a full disk refuses.
func (s *Store) Ping(ctx context.Context) error {
	const op = "ping"
	if err := s.guard.CheckOpen(op); err != nil {
		return err
	}
	version, err := sqlstore.SchemaVersion(ctx, s.reads())
	if err != nil {
		return s.guard.Fail(op, err)
	}
	if err := schema.CheckCurrent(version); err != nil {
		return s.guard.Fail(op, err)
	}
	if _, err := s.w.ExecContext(ctx, heartbeatSQL, time.Now().UnixNano()); err != nil {
		return s.guard.Fail(op, err)
	}
	return nil
}
