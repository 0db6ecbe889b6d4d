package pgtest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestFindWithoutServer: with nothing configured and nothing answering, the
// error says how to provide a server, and URL may skip (outside CI).
func TestFindWithoutServer(t *testing.T) {
	t.Setenv(EnvURL, "")
	saved := localURLs
	localURLs = []string{"postgres://postgres@127.0.0.1:1/test?sslmode=disable"}
	t.Cleanup(func() { localURLs = saved })

	start := time.Now()
	_, err := find()
	var notFound *notFoundError
	if !errors.As(err, &notFound) || !strings.Contains(err.Error(), EnvURL) || !strings.Contains(err.Error(), ".ci/postgres") {
		t.Errorf("find: %v; want a not-found error naming %s and .ci/postgres", err, EnvURL)
	}
	if d := time.Since(start); d > 2*connectTimeout {
		t.Errorf("find took %v", d)
	}
}

// TestFindConfiguredServerDown: a server asked for by EnvURL that does not
// answer is an error, never a skip.
func TestFindConfiguredServerDown(t *testing.T) {
	for _, u := range []string{"postgres://postgres@127.0.0.1:1/test?sslmode=disable", "host=127.0.0.1 port=5432"} {
		t.Setenv(EnvURL, u)
		_, err := find()
		var notFound *notFoundError
		if err == nil || errors.As(err, &notFound) {
			t.Errorf("find with %s=%q: %v; want an error that fails the test", EnvURL, u, err)
		}
	}
}

func TestInCI(t *testing.T) {
	for ci, want := range map[string]bool{"": false, "true": true, "1": true, "false": false, "yes": false} {
		t.Setenv("CI", ci)
		if got := inCI(); got != want {
			t.Errorf("CI=%q: inCI() = %v, want %v", ci, got, want)
		}
	}
}

// A throwaway server takes connections, refuses them once stopped, and
// takes them again once started.
func TestServerStopStart(t *testing.T) {
	s := StartServer(t)
	if err := ping(s.URL()); err != nil {
		t.Fatalf("a started server: %v", err)
	}
	s.Stop()
	if err := ping(s.URL()); err == nil {
		t.Fatal("a stopped server took a connection")
	}
	s.Start()
	if err := ping(s.URL()); err != nil {
		t.Fatalf("a restarted server: %v", err)
	}
}
