package retention_test

import (
	"bytes"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/accounthealth/accounthealth/server/rebuild"
	"github.com/accounthealth/accounthealth/server/retention"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/postgres"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
	"github.com/accounthealth/accounthealth/server/store/sqlite"
	"github.com/accounthealth/accounthealth/server/store/storetest"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// The simulated month of TestStoreSizeAfterAMonthOfScans; scaled down by
// default, e.g. -month.accounts=10000 for the figures in docs/operations.md.
var (
	monthAccounts = flag.Int("month.accounts", 20, "accounts of the simulated month")
	monthDays     = flag.Int("month.days", 30, "days of the simulated month")
	monthScans    = flag.Int("month.scans", 4, "the provider's scans per account per day (accounts.updated with the account object)")
	monthKeep     = flag.Duration("month.retention", 7*24*time.Hour, "--retention of the pruned store")
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// scan is the provider's accounts.updated of a scan, with the account
// object, about 850 bytes as the provider's are.
func scan(account, user, status string, at time.Time) store.Delivery {
	ts := at.Format(time.RFC3339Nano)
	body := fmt.Appendf(nil, `{"event":"accounts.updated","name":"accounthealth-accounts-updated","data":{"account":%q,"user":%q,`+
		`"resource":{"id":%q,"user":%q,"employers":["Acme Corporation"],"item":"item_000012345","source":"adp",`+
		`"created_at":"2026-01-01T00:00:00Z","updated_at":%q,"scanned_at":%q,`+
		`"connection":{"status":%q,"error_code":null,"error_message":null,"updated_at":%q},`+
		`"direct_deposit_switch":{"status":"idle","error_code":null,"error_message":null,"updated_at":null},`+
		`"availability":{"gigs":null,"shifts":null,"paystubs":{"status":"synced","updated_at":%q,"available_count":24,"available_from":"2025-01-01T00:00:00Z","available_to":%q},`+
		`"payroll_documents":{"status":"synced","updated_at":%q,"available_count":3},"identities":{"status":"synced","updated_at":%q},`+
		`"ratings":null,"vehicles":null,"deposit_destinations":{"status":"synced","updated_at":%q},"user_forms":null},`+
		`"ongoing_refresh":{"status":"enabled"}}}}`,
		account, user, account, user, ts, ts, status, ts, ts, ts, ts, ts, ts)
	env, err := webhook.Decode(body, at)
	if err != nil {
		panic(err)
	}
	return store.Delivery{Body: body, Name: env.Name, Decoded: env.Delivery, Verified: true}
}

func openSQLite(t *testing.T, dir string) store.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), dir, store.Options{})
	return opened(t, s, err)
}

func openPostgres(t *testing.T, url string) store.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url, store.Options{})
	return opened(t, s, err)
}

// opened is a store as serve leaves a new one: its records under the
// current rules.
func opened(t *testing.T, s store.Store, err error) store.Store {
	t.Helper()
	s = storetest.Opened(t, s, err)
	if _, err := s.Rebuild(t.Context(), store.RebuildOptions{Decode: rebuild.Decode}); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	return s
}

// day ingests one day of scans of accounts, in batches as the service
// commits them; the first scan of the first day connects them.
func day(t *testing.T, stores []store.Store, accounts, scans, d int) {
	t.Helper()
	var batch []store.Delivery
	flush := func() {
		for _, s := range stores {
			if _, err := s.Ingest(t.Context(), batch); err != nil {
				t.Fatalf("Ingest: %v", err)
			}
		}
		batch = batch[:0]
	}
	for k := range scans {
		at := t0.Add(time.Duration(d)*24*time.Hour + time.Duration(k)*24*time.Hour/time.Duration(scans))
		for i := range accounts {
			status := "connected"
			if (i+d+k)%97 == 0 {
				status = "error" // now and then a scan finds the connection broken: a transition
			}
			batch = append(batch, scan(fmt.Sprintf("acc-%06d", i), fmt.Sprintf("user-%06d", i), status, at.Add(time.Duration(i)*time.Millisecond)))
			if len(batch) == 500 {
				flush()
			}
		}
	}
	if len(batch) > 0 {
		flush()
	}
}

func TestPassPrunesLogsAndReports(t *testing.T) {
	s := openSQLite(t, t.TempDir())
	for d := range 10 {
		day(t, []store.Store{s}, 5, 2, d)
	}
	var logs bytes.Buffer
	var observed []store.PruneReport
	now := t0.Add(10 * 24 * time.Hour)
	r := retention.New(s, retention.Options{
		Retention: 3 * 24 * time.Hour, Decode: rebuild.Decode, Now: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Observer: func(r store.PruneReport, end time.Time, _ time.Duration, err error) {
			if err != nil || !end.Equal(now) {
				t.Errorf("observed a pass ending %s with %v, want %s without error", end, err, now)
			}
			observed = append(observed, r)
		},
	})
	rep, err := r.Pass(t.Context())
	if err != nil || rep.Accounts != 5 || rep.Deleted == 0 || rep.Bytes == 0 {
		t.Fatalf("Pass = %+v, %v; want 5 accounts pruned", rep, err)
	}
	want := fmt.Sprintf("entries_deleted=%d bodies_removed=%d", rep.Deleted, rep.Stripped)
	if !strings.Contains(logs.String(), "msg=pruned") || !strings.Contains(logs.String(), want) {
		t.Errorf("log %q lacks the pass's line with %s", logs.String(), want)
	}
	if again, err := r.Pass(t.Context()); err != nil || again != (store.PruneReport{}) {
		t.Errorf("second Pass = %+v, %v; want nothing left", again, err)
	}
	if len(observed) != 2 || observed[0] != rep {
		t.Errorf("observer heard %+v, want both passes, the first %+v", observed, rep)
	}
}

// TestStoreSizeAfterAMonthOfScans ingests a month of the provider's scans
// into two SQLite stores, one pruned daily with -month.retention, and
// logs each one's size per account. The pruned store must hold the same
// records and changes, and check clean.
func TestStoreSizeAfterAMonthOfScans(t *testing.T) {
	kept, pruned := t.TempDir(), t.TempDir()
	a, b := openSQLite(t, kept), openSQLite(t, pruned)
	monthOfScans(t, a, b)
	a.Close()
	b.Close()
	for _, st := range []struct{ name, dir string }{{"kept", kept}, {"pruned", pruned}} {
		file, live := size(t, st.dir)
		t.Logf("SQLite, %s: file %d bytes (%.1f KB per account), live pages %d bytes (%.1f KB per account)",
			st.name, file, perAccount(file), live, perAccount(live))
	}
}

// TestStoreSizeAfterAMonthOfScansPostgres is the same on PostgreSQL: the
// tables' size with their indexes and TOAST, as left and after VACUUM FULL.
func TestStoreSizeAfterAMonthOfScansPostgres(t *testing.T) {
	kept, pruned := pgtest.URL(t), pgtest.URL(t)
	a, b := openPostgres(t, kept), openPostgres(t, pruned)
	monthOfScans(t, a, b)
	for _, st := range []struct{ name, url string }{{"kept", kept}, {"pruned", pruned}} {
		left, vacuumed := schemaSize(t, st.url, false), schemaSize(t, st.url, true)
		t.Logf("PostgreSQL, %s: tables and indexes %d bytes (%.1f KB per account), after VACUUM FULL %d bytes (%.1f KB per account)",
			st.name, left, perAccount(left), vacuumed, perAccount(vacuumed))
	}
}

func perAccount(n int64) float64 { return float64(n) / 1024 / float64(*monthAccounts) }

// monthOfScans ingests -month.days of scans into a and b, pruning b at
// the end of each day, and compares them.
func monthOfScans(t *testing.T, a, b store.Store) {
	t.Helper()
	var total store.PruneReport
	for d := range *monthDays {
		day(t, []store.Store{a, b}, *monthAccounts, *monthScans, d)
		end := t0.Add(time.Duration(d+1) * 24 * time.Hour)
		r := retention.New(b, retention.Options{Retention: *monthKeep, Decode: rebuild.Decode, Now: func() time.Time { return end }})
		rep, err := r.Pass(t.Context())
		if err != nil {
			t.Fatalf("Pass on day %d: %v", d, err)
		}
		total.Bytes += rep.Bytes
		total.Deleted += rep.Deleted
	}
	for id := range *monthAccounts {
		account := fmt.Sprintf("acc-%06d", id)
		ra, err := a.GetHealth(t.Context(), account)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := b.GetHealth(t.Context(), account)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ra, rb) {
			t.Fatalf("account %s: pruned store's record %+v, the other's %+v", account, rb, ra)
		}
	}
	if ca, cb := readAll(t, a), readAll(t, b); !reflect.DeepEqual(ca, cb) {
		t.Errorf("the pruned store's changes differ: %d of them, the other's %d", len(cb), len(ca))
	}
	if rep, err := b.Check(t.Context(), store.CheckOptions{Decode: rebuild.Decode}); err != nil || !rep.Clean() {
		t.Errorf("Check of the pruned store = %+v, %v; want clean", rep, err)
	}
	t.Logf("%d accounts, %d deliveries over %d days, -month.retention %s: pruning removed %d entries and %d bytes of bodies",
		*monthAccounts, *monthAccounts**monthDays**monthScans, *monthDays, *monthKeep, total.Deleted, total.Bytes)
}

func readAll(t *testing.T, s store.Store) []store.Change {
	t.Helper()
	var all []store.Change
	for after := int64(0); ; {
		page, err := s.ReadChanges(t.Context(), after, store.MaxPageSize)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
}

// size is the database file's size, and the bytes of its pages in use
// (what a VACUUM would leave; SQLite reuses free pages before it grows).
func size(t *testing.T, dir string) (file, live int64) {
	t.Helper()
	path := filepath.Join(dir, sqlite.FileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path+"?_query_only=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pages, free, pageSize int64
	for q, v := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA freelist_count": &free, "PRAGMA page_size": &pageSize} {
		if err := db.QueryRowContext(t.Context(), q).Scan(v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return fi.Size(), (pages - free) * pageSize
}

// schemaSize is the size of the tables of the schema url names, with
// their indexes and TOAST; with vacuum, after VACUUM FULL of each of them.
func schemaSize(t *testing.T, url string, vacuum bool) (total int64) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	rows, err := conn.Query(t.Context(), `SELECT c.relname FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		name := pgx.Identifier{table}.Sanitize()
		if vacuum {
			if _, err := conn.Exec(t.Context(), "VACUUM FULL "+name); err != nil {
				t.Fatal(err)
			}
		}
		var n int64
		if err := conn.QueryRow(t.Context(), "SELECT pg_total_relation_size($1::regclass)", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}
