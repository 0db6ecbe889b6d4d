package sqlite

import (
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// transient reports whether err is a SQLite failure that a retry can fix:
// the database is busy or locked by another connection or process, the
// disk is full or failing, memory ran out, the file cannot be opened right
// now, or a WAL lock could not be had. Anything else (a constraint, a
// syntax error, a write through the query-only read pool) is a bug.
func transient(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && transientCode(e.Code())
}

// transientCode classifies an extended result code.
func transientCode(code int) bool {
	switch code & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_IOERR,
		sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL:
		return true
	case sqlite3.SQLITE_READONLY:
		// Only these pass: a recovery or a lock another process holds. A
		// plain SQLITE_READONLY is a write where none may be.
		switch code {
		case sqlite3.SQLITE_READONLY_RECOVERY, sqlite3.SQLITE_READONLY_CANTLOCK, sqlite3.SQLITE_READONLY_CANTINIT:
			return true
		}
	}
	return false
}
