package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/accounthealth/accounthealth/server/store/internal/sqlstore"
)

var checkSQL = sqlstore.NewCheckSQL(sqlstore.Question, &rebuildSQL)

// newChecker gives s its Check method: SQLite's own integrity_check and
// foreign_key_check, then the shared checks, each batch in one read
// transaction of the read pool (a WAL snapshot).
func newChecker(s *Store) sqlstore.Checker {
	return sqlstore.NewChecker(&s.guard, s.reads(), &checkSQL, s.opts,
		func(ctx context.Context, fn func(sqlstore.Querier) error) error {
			tx, err := s.r.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			return fn(querier{db: tx})
		},
		s.engineProblems)
}

// engineProblems runs SQLite's integrity_check, which "ok" means clean, and
// foreign_key_check, which lists every row whose parent is missing.
func (s *Store) engineProblems(ctx context.Context, limit int) ([]string, error) {
	var out []string
	err := s.reads().Query(ctx, fmt.Sprintf("PRAGMA integrity_check(%d)", limit), nil, func(rows sqlstore.Rows) error {
		for rows.Next() {
			var msg string
			if err := rows.Scan(&msg); err != nil {
				return err
			}
			if msg != "ok" {
				out = append(out, msg)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	err = s.reads().Query(ctx, "PRAGMA foreign_key_check", nil, func(rows sqlstore.Rows) error {
		for rows.Next() && len(out) < limit {
			var (
				table, parent string
				rowid, fkid   sql.NullInt64
			)
			if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("foreign_key_check: row %d of %s refers to a row of %s that is missing", rowid.Int64, table, parent))
		}
		return rows.Err()
	})
	return out, err
}
