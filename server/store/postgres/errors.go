package postgres

import (
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// transient reports whether err is a PostgreSQL failure that a retry can
// fix: the server is unreachable or went away, is short of resources (disk
// full, too many connections), is shutting down or starting, lost a
// serialisation or deadlock race or a lock wait, or turned read-only (a
// failover). Anything else (a syntax error, a scan error, a constraint) is
// a bug.
func transient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return transientCode(pgErr.Code)
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed) ||
		pgconn.Timeout(err) || pgconn.SafeToRetry(err)
}

// transientCode classifies a SQLSTATE.
func transientCode(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"), // connection exception
		strings.HasPrefix(code, "53"): // insufficient resources: disk full, out of memory, too many connections
		return true
	}
	switch code {
	// Not 57P04, database dropped: no retry brings it back.
	case "57P01", "57P02", "57P03", "57P05", // admin or crash shutdown, cannot connect now, idle session timeout
		"40001", "40P01", // serialization failure, deadlock
		"55P03", // lock not available
		"25006": // read-only transaction: a standby, or a primary demoted
		return true
	}
	return false
}
