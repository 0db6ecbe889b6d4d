package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
	"github.com/accounthealth/accounthealth/server/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.DB {
		databaseURL := pgtest.URL(t)
		exec := func(t *testing.T, statements ...string) {
			conn, err := pgx.Connect(t.Context(), databaseURL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			for _, q := range statements {
				if _, err := conn.Exec(t.Context(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
		}
		return storetest.DB{
			Open:          func(opts store.Options) (store.Store, error) { return Open(t.Context(), databaseURL, opts) },
			AdvanceSchema: func(t *testing.T) { exec(t, futureMigrationSQL) },
			// As a replica session, the connection leaves foreign keys
			// (triggers) unenforced.
			Tamper: func(t *testing.T, statements ...string) {
				exec(t, append([]string{"SET session_replication_role = replica"}, statements...)...)
			},
		}
	})
}

// futureMigrationSQL records a migration no binary has.
const futureMigrationSQL = `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999999, '999999_future.sql', 0)`

func BenchmarkIngest(b *testing.B) {
	storetest.BenchmarkIngest(b, func(b *testing.B) store.Store { return openURL(b, pgtest.URL(b)) })
}

func BenchmarkReads(b *testing.B) {
	storetest.BenchmarkReads(b, func(b *testing.B) store.Store { return openURL(b, pgtest.URL(b)) })
}

func BenchmarkClaimDue(b *testing.B) {
	storetest.BenchmarkClaimDue(b, func(b *testing.B) store.Store { return openURL(b, pgtest.URL(b)) })
}

func BenchmarkRebuild(b *testing.B) {
	storetest.BenchmarkRebuild(b, func(b *testing.B) storetest.Opener {
		databaseURL := pgtest.URL(b)
		return func(opts store.Options) store.Store { return openURLWith(b, databaseURL, opts) }
	})
}

// openURL opens the store at databaseURL and closes it when the test ends,
// unless the test closed it first.
func openURL(t testing.TB, databaseURL string) *Store {
	t.Helper()
	return openURLWith(t, databaseURL, store.Options{})
}

func openURLWith(t testing.TB, databaseURL string, opts store.Options) *Store {
	t.Helper()
	s, err := Open(t.Context(), databaseURL, opts)
	return storetest.Opened(t, s, err)
}

func BenchmarkListItemHealth(b *testing.B) {
	storetest.BenchmarkListItemHealth(b, func(b *testing.B) store.Store { return openURL(b, pgtest.URL(b)) })
}
