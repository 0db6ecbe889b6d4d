package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
)

func TestTransient(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("query: %w", &pgconn.PgError{Code: code}) }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection failure", pg("08006"), true},
		{"cannot connect", pg("08001"), true},
		{"disk full", pg("53100"), true},
		{"too many connections", pg("53300"), true},
		{"out of memory", pg("53200"), true},
		{"admin shutdown", pg("57P01"), true},
		{"crash shutdown", pg("57P02"), true},
		{"cannot connect now", pg("57P03"), true},
		{"idle session timeout", pg("57P05"), true},
		{"serialization failure", pg("40001"), true},
		{"deadlock", pg("40P01"), true},
		{"lock not available", pg("55P03"), true},
		{"read-only: a failover", pg("25006"), true},
		{"network", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, true},
		{"unexpected EOF", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), true},
		{"EOF", io.EOF, true},
		{"conn closed", fmt.Errorf("acquire: %w", pgconn.ErrConnClosed), true},
		{"database dropped", pg("57P04"), false},
		{"syntax error", pg("42601"), false},
		{"undefined table", pg("42P01"), false},
		{"unique violation", pg("23505"), false},
		{"check violation", pg("23514"), false},
		{"no rows", pgx.ErrNoRows, false},
		{"a scan error", errors.New("can't scan into dest[0]"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := transient(tc.err); got != tc.want {
				t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestRealErrors: errors as pgx returns them come out as the store
// promises.
func TestRealErrors(t *testing.T) {
	// Nothing listens on port 1: pgx's own connect error.
	_, err := pgx.Connect(t.Context(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5")
	if !transient(err) {
		t.Errorf("connection refused: transient(%v) = false, want true", err)
	}

	s := openURL(t, pgtest.URL(t))
	_, err = s.pool.Exec(t.Context(), "UPDATE no_such_table SET x = 1")
	if err = s.guard.Fail("test", err); err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a missing table: %v, want an error that is not store.ErrUnavailable", err)
	}
	// The caller giving up is the caller's error, not the store's.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.GetHealth(ctx, "acct"); !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("GetHealth with a cancelled ctx: %v, want context.Canceled and not store.ErrUnavailable", err)
	}
}
