// Package pgtest gives tests a PostgreSQL database of their own: a fresh,
// empty schema on a server it finds, dropped when the test ends.
//
// It looks for a server in this order: the URL in $ACCOUNTHEALTH_TEST_DATABASE_URL;
// then postgres://postgres@127.0.0.1:5432/test, then the same as user root.
// When none answers, the test is skipped, except under CI=true, where it
// fails: in CI, a PostgreSQL test that cannot run is a broken build, not a
// pass. `bash .ci/postgres` finds or starts a server and prints its URL.
package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL is the environment variable that points the tests at a server.
const EnvURL = "ACCOUNTHEALTH_TEST_DATABASE_URL"

// The servers tried when EnvURL is not set: a local one as the postgres
// role, or as root (a role some CI images and this project's machine have).
var localURLs = []string{
	"postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
	"postgres://root@127.0.0.1:5432/test?sslmode=disable",
}

// connectTimeout bounds each attempt, so a missing server costs the tests
// seconds, not minutes.
const connectTimeout = 2 * time.Second

// server finds the server once per test binary.
var server = sync.OnceValues(find)

func find() (string, error) {
	if u := os.Getenv(EnvURL); u != "" {
		// URL adds search_path to the query: a key/value string has none.
		if p, err := url.Parse(u); err != nil || (p.Scheme != "postgres" && p.Scheme != "postgresql") {
			return "", fmt.Errorf("$%s is not a postgres:// URL", EnvURL)
		}
		if err := ping(u); err != nil {
			// Asked for this server: not finding it is an error, never a skip.
			return "", fmt.Errorf("$%s: %w", EnvURL, err)
		}
		return u, nil
	}
	var errs []error
	for _, u := range localURLs {
		err := ping(u)
		if err == nil {
			return u, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
	}
	return "", &notFoundError{errors.Join(errs...)}
}

// notFoundError: no server was configured and none of the usual ones answers.
type notFoundError struct{ err error }

func (e *notFoundError) Error() string {
	return fmt.Sprintf("no PostgreSQL server for the tests (%v). Start one and set %s to its URL, e.g.\n"+
		"\texport %s=$(bash .ci/postgres)\n"+
		"which finds a local server or starts a throwaway one", e.err, EnvURL, EnvURL)
}

func ping(databaseURL string) error {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// URL returns the URL of a fresh, empty schema (through search_path) on the
// test server, and drops the schema with everything in it when t ends.
// Without a server it skips t, or fails it under CI=true (see the package
// doc).
func URL(t testing.TB) string {
	t.Helper()
	base, err := server()
	var notFound *notFoundError
	switch {
	case errors.As(err, &notFound) && !inCI():
		t.Skipf("pgtest: %v", err)
	case err != nil:
		t.Fatalf("pgtest: %v", err)
	}

	u, drop, err := NewSchema(context.Background(), base)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		// Stores the test opened are closed by now: their cleanups were
		// registered later, so they ran first.
		if err := drop(context.Background()); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return u
}

// Find returns the URL of the server found as the package doc says, or
// why none was: for programs other than tests (the benchmark tool).
func Find() (string, error) { return server() }

// NewSchema creates a fresh, empty schema on the server at base and returns
// its URL (through search_path) and a function that drops it with
// everything in it.
func NewSchema(ctx context.Context, base string) (databaseURL string, drop func(context.Context) error, err error) {
	// Unquoted in search_path, a name is folded to lower case.
	schema := pgx.Identifier{"test_" + strings.ToLower(rand.Text()[:16])}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := exec(ctx, base, "CREATE SCHEMA "+schema.Sanitize()); err != nil {
		return "", nil, err
	}
	drop = func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return exec(ctx, base, "DROP SCHEMA "+schema.Sanitize()+" CASCADE")
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, errors.Join(err, drop(ctx))
	}
	q := u.Query()
	q.Set("search_path", schema[0])
	u.RawQuery = queryEncode(q)
	return u.String(), drop, nil
}

func exec(ctx context.Context, databaseURL, sql string) error {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// queryEncode is url.Values.Encode with spaces as %20: a connection URL's
// query is read as libpq reads it, where + is a plus sign.
func queryEncode(q url.Values) string {
	return strings.ReplaceAll(q.Encode(), "+", "%20")
}

// inCI reports whether CI is set to true (1, t, true, ...), as CI systems do.
func inCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}
