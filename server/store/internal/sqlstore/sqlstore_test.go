package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

func TestInsertSQL(t *testing.T) {
	cols := []string{"k", "a", "b"}
	for _, tc := range []struct {
		name, got, want string
	}{
		{"question", InsertSQL(Question, "t", cols, ""),
			"INSERT INTO t (k, a, b) VALUES (?, ?, ?)"},
		{"dollar", InsertSQL(Dollar, "t", cols, ""),
			"INSERT INTO t (k, a, b) VALUES ($1, $2, $3)"},
		{"upsert", InsertSQL(Dollar, "t", cols, "k"),
			"INSERT INTO t (k, a, b) VALUES ($1, $2, $3) ON CONFLICT (k) DO UPDATE SET a = excluded.a, b = excluded.b"},
		{"one column", InsertSQL(Question, "t", cols[:1], ""),
			"INSERT INTO t (k) VALUES (?)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got  %s\nwant %s", tc.got, tc.want)
			}
		})
	}
}

// TestArgsFollowCols: each codec binds as many values as its statement
// has placeholders, and each scanner fills as many as its columns.
func TestArgsFollowCols(t *testing.T) {
	var (
		er entryRow
		cr changeRow
	)
	for _, tc := range []struct {
		name       string
		sql        string
		args, want int
	}{
		{"record", PutRecordSQL(Question), len(RecordArgs(&health.Record{})), len(RecordCols)},
		{"entry", AppendEntrySQL(Question), len(EntryArgs(&store.Entry{}, [32]byte{})), len(EntryCols)},
		{"change", AppendChangeSQL(Question), len(ChangeArgs(&store.Change{})), len(ChangeCols) - 1},
		{"entry row", "", len(er.dest()), len(EntryCols)},
		{"change row", "", len(cr.dest()), len(ChangeCols)},
	} {
		if tc.sql != "" {
			if n := strings.Count(tc.sql, "?"); n != tc.args {
				t.Errorf("%s: %d placeholders, %d args", tc.name, n, tc.args)
			}
		}
		if tc.args != tc.want {
			t.Errorf("%s: %d values, want %d", tc.name, tc.args, tc.want)
		}
	}
}

func TestNanos(t *testing.T) {
	at := time.Date(2026, 10, 6, 8, 30, 51, 901122123, time.FixedZone("CEST", 2*3600))
	for _, tc := range []struct {
		name string
		in   time.Time
		enc  any
		dec  time.Time
	}{
		{"zero is NULL", time.Time{}, nil, time.Time{}},
		{"in range", at, at.UnixNano(), at.UTC()},
		{"before 1677", time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), int64(math.MinInt64), minTime.UTC()},
		{"after 2262", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), int64(math.MaxInt64), maxTime.UTC()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := Nanos(tc.in)
			if enc != tc.enc {
				t.Fatalf("Nanos = %v, want %v", enc, tc.enc)
			}
			var n sql.NullInt64
			if enc != nil {
				n = sql.NullInt64{Int64: enc.(int64), Valid: true}
			}
			if dec := FromNanos(n); !dec.Equal(tc.dec) || dec.Location() != tc.dec.Location() {
				t.Errorf("FromNanos = %v, want %v", dec, tc.dec)
			}
		})
	}
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	t.Run("ordered", func(t *testing.T) {
		fsys := fstest.MapFS{
			"m/0002_more.sql": file("B"),
			"m/0001_init.sql": file("A"),
			"m/0010_last.sql": file("C"),
		}
		ms, err := loadMigrations(fsys, "m")
		if err != nil {
			t.Fatal(err)
		}
		want := []Migration{{1, "0001_init.sql", "A"}, {2, "0002_more.sql", "B"}, {10, "0010_last.sql", "C"}}
		if !reflect.DeepEqual(ms, want) {
			t.Errorf("got %+v, want %+v", ms, want)
		}
	})
	for name, fsys := range map[string]fstest.MapFS{
		"no version":    {"m/init.sql": file("")},
		"zero version":  {"m/0000_init.sql": file("")},
		"same version":  {"m/0001_a.sql": file(""), "m/01_b.sql": file("")},
		"version falls": {"m/0002_a.sql": file(""), "m/1_b.sql": file("")},
		"empty":         {"m": &fstest.MapFile{Mode: fs.ModeDir}},
		"missing":       {},
	} {
		t.Run(name, func(t *testing.T) {
			if ms, err := loadMigrations(fsys, "m"); err == nil {
				t.Errorf("got %+v, want an error", ms)
			}
		})
	}
}

func TestPending(t *testing.T) {
	ms := []Migration{{Version: 1}, {Version: 2}, {Version: 5}}
	for _, tc := range []struct {
		current int64
		want    []Migration
	}{
		{0, ms},
		{1, ms[1:]},
		{3, ms[2:]},
		{5, nil},
	} {
		got, err := pending(ms, tc.current)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("pending(%d) = %+v, %v; want %+v", tc.current, got, err, tc.want)
		}
	}
	if got, err := pending(ms, 6); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Errorf("pending(6) = %+v, %v; want a schema version error", got, err)
	}
}

func TestGuard(t *testing.T) {
	g := Guard{Driver: "drv"}
	boom := errors.New("boom")
	if err := g.CheckOpen("op"); err != nil {
		t.Errorf("CheckOpen while open: %v", err)
	}
	if err := g.Fail("op", boom); err.Error() != "drv: op: boom" || errors.Is(err, store.ErrClosed) {
		t.Errorf("Fail while open: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for what, err := range map[string]error{
		"CheckOpen": g.CheckOpen("op"),
		"Close":     g.Close(),
	} {
		if !errors.Is(err, store.ErrClosed) || !strings.HasPrefix(err.Error(), "drv: ") {
			t.Errorf("%s after Close: %v, want drv: ...: %v", what, err, store.ErrClosed)
		}
	}
	// A call that raced with Close.
	if err := g.Fail("op", boom); !errors.Is(err, store.ErrClosed) || !errors.Is(err, boom) {
		t.Errorf("Fail after Close: %v, want one wrapping %v and %v", err, store.ErrClosed, boom)
	}
	if err := g.Fail("op", g.CheckOpen("inner")); strings.Count(err.Error(), store.ErrClosed.Error()) != 1 {
		t.Errorf("Fail of ErrClosed: %v, want ErrClosed once", err)
	}
}

// TestQueryPage: a page ends at its limit or before the row that would take
// it past store.PageBytes, but always holds one row, and says whether rows
// were left.
func TestQueryPage(t *testing.T) {
	const big = store.PageBytes / 2
	for _, tc := range []struct {
		name     string
		sizes    []int // the rows the query returns
		limit    int
		want     int // rows on the page
		wantMore bool
	}{
		{"no rows", nil, 2, 0, false},
		{"fewer rows than the limit", []int{1, 1}, 3, 2, false},
		{"limit reached", []int{1, 1, 1}, 2, 2, true},
		{"bytes reached exactly", []int{big, big}, 5, 2, false},
		{"bytes would be passed", []int{big, big, 1}, 5, 2, true},
		{"one row over the budget alone", []int{3 * big, 1}, 5, 1, true},
		{"a large row after a small one", []int{1, 3 * big}, 5, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, more, err := queryPage(t.Context(), sliceQuerier(tc.sizes), "", nil, scanInt, tc.limit, func(n int) int { return n })
			if err != nil || len(page) != tc.want || more != tc.wantMore || !reflect.DeepEqual(page, tc.sizes[:tc.want]) {
				t.Errorf("queryPage = %v, more %v, %v; want the first %d rows, more %v", page, more, err, tc.want, tc.wantMore)
			}
		})
	}
}

// sliceQuerier answers every query with its ints, one per row.
type sliceQuerier []int

func (q sliceQuerier) Query(_ context.Context, _ string, _ []any, scan func(Rows) error) error {
	return scan(&sliceRows{vals: q, i: -1})
}

type sliceRows struct {
	vals []int
	i    int
}

func (r *sliceRows) Next() bool { r.i++; return r.i < len(r.vals) }
func (r *sliceRows) Err() error { return nil }
func (r *sliceRows) Scan(dest ...any) error {
	*dest[0].(*int) = r.vals[r.i]
	return nil
}

func scanInt(sc Scanner) (n int, err error) {
	err = sc.Scan(&n)
	return n, err
}

func TestListHealthSQL(t *testing.T) {
	q := store.HealthQuery{UserID: "u", States: []health.State{health.StateHealthy}, ErrorCodes: []string{"a"}}
	healthy, authFailed := int32(health.StateHealthy), int32(health.StateAuthFailed)
	for _, tc := range []struct {
		dialect    Dialect
		where      string
		wantArgs   []any
		unfiltered string
		// merged is the SQL of q with a second state and code, given
		// twice each, where the parts' WHERE clauses are part0 and part1.
		part0, part1, merged string
		mergedArgs           []any
	}{
		{dialect: SQLite,
			where:      " WHERE account_id > ? AND user_id = ? AND state = ? AND error_code = ? AND error_code <> '' ORDER BY account_id LIMIT ?",
			wantArgs:   []any{"after", "u", healthy, "a", 11},
			unfiltered: " WHERE account_id > ? ORDER BY account_id LIMIT ?",
			part0:      " WHERE account_id > ? AND user_id = ? AND state = ? AND error_code IN (?, ?) AND error_code <> '' ORDER BY account_id LIMIT ?",
			part1:      " WHERE account_id > ? AND user_id = ? AND state = ? AND state <> 2 AND error_code IN (?, ?) AND error_code <> '' ORDER BY account_id LIMIT ?",
			merged:     " ORDER BY account_id LIMIT ?",
			mergedArgs: []any{"after", "u", healthy, "a", "b", 11, "after", "u", authFailed, "a", "b", 11, 11}},
		{dialect: PostgreSQL,
			where:      " WHERE account_id > $1 AND user_id = $2 AND state = $3 AND error_code = $4 AND error_code <> '' ORDER BY account_id LIMIT $5",
			wantArgs:   []any{"after", "u", healthy, "a", 11},
			unfiltered: " WHERE account_id > $1 ORDER BY account_id LIMIT $2",
			part0:      " WHERE account_id > $1 AND user_id = $2 AND state = $3 AND error_code = ANY($4) AND error_code <> '' ORDER BY account_id LIMIT $5",
			part1:      " WHERE account_id > $6 AND user_id = $7 AND state = $8 AND state <> 2 AND error_code = ANY($9) AND error_code <> '' ORDER BY account_id LIMIT $10",
			merged:     " ORDER BY account_id LIMIT $11",
			mergedArgs: []any{"after", "u", healthy, []string{"a", "b"}, 11, "after", "u", authFailed, []string{"a", "b"}, 11, 11}},
	} {
		rs := NewReadSQL(tc.dialect)
		query, args := rs.listHealth(q, store.HealthKey{AccountID: "after"}, 11)
		if query != selectRecordsSQL+tc.where || !reflect.DeepEqual(args, tc.wantArgs) {
			t.Errorf("listHealth = %q, %#v; want %q, %#v", query, args, selectRecordsSQL+tc.where, tc.wantArgs)
		}
		if query, _ := rs.listHealth(store.HealthQuery{}, store.HealthKey{}, 11); query != selectRecordsSQL+tc.unfiltered {
			t.Errorf("listHealth of no filter = %q, want %q", query, selectRecordsSQL+tc.unfiltered)
		}
		two := q
		two.States = []health.State{health.StateAuthFailed, health.StateHealthy, health.StateAuthFailed}
		two.ErrorCodes = []string{"b", "a", "b"}
		want := "SELECT * FROM (SELECT * FROM (" + selectRecordsSQL + tc.part0 + ") AS part0 UNION ALL SELECT * FROM (" +
			selectRecordsSQL + tc.part1 + ") AS part1) AS parts" + tc.merged
		if query, args := rs.listHealth(two, store.HealthKey{AccountID: "after"}, 11); query != want || !reflect.DeepEqual(args, tc.mergedArgs) {
			t.Errorf("listHealth of two states = %q, %#v; want %q, %#v", query, args, want, tc.mergedArgs)
		}
	}
}

// TestListHealthBySinceSQL: a page by state since seeks a range of the
// since index (a row value comparison would scan it in SQLite) and
// orders by the index's columns.
func TestListHealthBySinceSQL(t *testing.T) {
	since := time.Unix(0, 42)
	q := store.HealthQuery{Order: store.ByStateSinceDesc, States: []health.State{health.StateHealthy}}
	rs := NewReadSQL(SQLite)
	query, args := rs.listHealth(q, store.HealthKey{StateSince: since, AccountID: "a"}, 11)
	want := selectRecordsSQL + " WHERE COALESCE(state_since, 0) <= ? AND (COALESCE(state_since, 0) < ? OR account_id < ?) AND state = ?" +
		" ORDER BY COALESCE(state_since, 0) DESC, account_id DESC LIMIT ?"
	if query != want || !reflect.DeepEqual(args, []any{int64(42), int64(42), "a", int32(health.StateHealthy), 11}) {
		t.Errorf("listHealth = %q, %#v; want %q", query, args, want)
	}
	q.Order = store.ByStateSinceAsc
	if query, _ := rs.listHealth(q, store.HealthKey{}, 11); !strings.Contains(query, " WHERE TRUE AND state = ? ORDER BY COALESCE(state_since, 0), account_id LIMIT ?") {
		t.Errorf("first page by since = %q", query)
	}
}

// TestMigrationsTableSQL: the table is the one every earlier binary made.
func TestMigrationsTableSQL(t *testing.T) {
	for d, want := range map[*Dialect]string{
		&SQLite:     "CREATE TABLE IF NOT EXISTS schema_migrations ( version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL ) STRICT",
		&PostgreSQL: "CREATE TABLE IF NOT EXISTS schema_migrations ( version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL )",
	} {
		if got := strings.Join(strings.Fields(migrationsTableSQL(*d)), " "); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestGuardFail(t *testing.T) {
	errTransient, errBug := errors.New("disk full"), errors.New("syntax error")
	transient := func(err error) bool { return errors.Is(err, errTransient) }
	for _, tc := range []struct {
		name                   string
		err                    error
		closed                 bool
		unavailable, wasClosed bool
	}{
		{"transient", errTransient, false, true, false},
		{"a bug", errBug, false, false, false},
		{"the caller cancelled", fmt.Errorf("%w: %w", errTransient, context.Canceled), false, false, false},
		{"the caller's deadline", fmt.Errorf("%w: %w", errTransient, context.DeadlineExceeded), false, false, false},
		{"raced with Close", errTransient, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := Guard{Driver: "test", Transient: transient}
			if tc.closed {
				_ = g.Close()
			}
			err := g.Fail("op", tc.err)
			if got := errors.Is(err, store.ErrUnavailable); got != tc.unavailable {
				t.Errorf("Fail(%v) = %v: store.ErrUnavailable %v, want %v", tc.err, err, got, tc.unavailable)
			}
			if got := errors.Is(err, store.ErrClosed); got != tc.wasClosed {
				t.Errorf("Fail(%v) = %v: store.ErrClosed %v, want %v", tc.err, err, got, tc.wasClosed)
			}
			if !errors.Is(err, tc.err) || !strings.HasPrefix(err.Error(), "test: op: ") {
				t.Errorf("Fail(%v) = %v, want it wrapped as \"test: op: ...\"", tc.err, err)
			}
		})
	}
}

// TestBlobCodec: a value is stored compressed only when that saves bytes,
// reads back byte for byte either way, and a damaged or unknown stored
// value is an error, never other bytes.
func TestBlobCodec(t *testing.T) {
	json := []byte(strings.Repeat(`{"employer":"Whole Goods Market","status":"connected"},`, 20))
	for _, tc := range []struct {
		name      string
		in        []byte
		wantCodec int64
	}{
		{"compressible JSON", json, codecZstd},
		{"too small to gain", []byte(`{}`), codecRaw},
		{"empty", []byte{}, codecRaw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			value, codec := packBlob(tc.in)
			if codec != tc.wantCodec {
				t.Fatalf("codec %d, want %d", codec, tc.wantCodec)
			}
			stored, _ := value.([]byte)
			if codec == codecZstd && len(stored) >= len(tc.in) {
				t.Errorf("stored %d bytes for %d", len(stored), len(tc.in))
			}
			got, err := unpackBlob(stored, codec)
			if err != nil || !bytes.Equal(got, tc.in) || (len(tc.in) == 0) != (got == nil) {
				t.Errorf("unpackBlob = %q, %v; want %q (nil when empty)", got, err, tc.in)
			}
		})
	}
	z, _ := packBlob(json)
	damaged := bytes.Clone(z.([]byte))
	damaged[len(damaged)/2] ^= 0xff
	if got, err := unpackBlob(damaged, codecZstd); err == nil {
		t.Errorf("a damaged frame read back as %d bytes, want an error", len(got))
	}
	if _, err := unpackBlob(json, 7); err == nil || !strings.Contains(err.Error(), "unknown codec 7") {
		t.Errorf("codec 7: %v, want an unknown codec error", err)
	}
	if got, err := unpackBlob(json, codecRaw); err != nil || !bytes.Equal(got, json) {
		t.Errorf("a value stored as given (rows of before the codec) read back as %q, %v", got, err)
	}
}

// TestDictionariesFrozen: stored frames need their dictionary's exact bytes
// to decompress, so an edit of one (instead of a new one beside it) fails
// here rather than in a store in production.
func TestDictionariesFrozen(t *testing.T) {
	const want = "73223e9ae468a91ecacf2a0eefad5545db3f243cf7289f9f9c4545392d36a903"
	if got := fmt.Sprintf("%x", sha256.Sum256(dictionary1)); got != want {
		t.Errorf("zstd_dictionary_1.bin has SHA-256 %s, want %s: never edit a dictionary, add one", got, want)
	}
}

func BenchmarkBlobCodec(b *testing.B) {
	body := []byte(`{"event":"accounts.updated","name":"accounthealth-bench","data":{"account":"0190a1e3-0001-7c12-8e55-6b2d9f0c1a11",` +
		`"user":"0190a1e2-0001-7b41-9f2e-1d7c3a4b5e60","resource":{"id":"0190a1e3-0001-7c12-8e55-6b2d9f0c1a11",` +
		`"user":"0190a1e2-0001-7b41-9f2e-1d7c3a4b5e60","employers":["Northwind Logistics"],"item":"item_000012345",` +
		`"source":"paychex","created_at":"2026-11-02T08:01:02.123456Z","updated_at":"2026-11-30T10:11:12.654321Z",` +
		`"scanned_at":"2026-11-30T10:11:12.654321Z","connection":{"status":"connected","error_code":null,` +
		`"error_message":null,"updated_at":"2026-11-30T10:11:12.654321Z"},"direct_deposit_switch":{"status":"idle",` +
		`"error_code":null,"error_message":null,"updated_at":"2026-11-02T08:01:02.123456Z"},"availability":{` +
		`"gigs":null,"shifts":null,"paystubs":{"status":"synced","updated_at":"2026-11-30T10:11:12.654321Z",` +
		`"available_count":12,"available_from":"2025-11-01T00:00:00Z","available_to":"2026-11-30T00:00:00Z"}},` +
		`"ongoing_refresh":{"status":"enabled"}}}}`)
	stored, codec := packBlob(body)
	b.Logf("%d bytes stored as %d (codec %d)", len(body), len(stored.([]byte)), codec)
	b.Run("pack", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			packBlob(body)
		}
	})
	b.Run("unpack", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := unpackBlob(stored.([]byte), codec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
