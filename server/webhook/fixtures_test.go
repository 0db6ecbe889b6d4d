package webhook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	fixturesDir = "../../testdata/fixtures"
	// recordedSecret signed every delivery in recorded/ that kept its
	// signature (see recorded/README.md).
	recordedSecret = "Webhook Secret"
)

// readFixture returns the exact bytes of a file under fixturesDir.
func readFixture(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(fixturesDir, path))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fixtureFiles returns the paths, relative to fixturesDir, of the files
// matching pattern, failing when there are none so a moved corpus cannot
// make a test pass vacuously.
func fixtureFiles(tb testing.TB, pattern string) []string {
	tb.Helper()
	matches, err := filepath.Glob(filepath.Join(fixturesDir, pattern))
	if err != nil {
		tb.Fatal(err)
	}
	if len(matches) == 0 {
		tb.Fatalf("no fixture matches %s", pattern)
	}
	for i, m := range matches {
		matches[i], _ = filepath.Rel(fixturesDir, m)
	}
	return matches
}

// deliveryVectors reads signatures.json: the secret and, per file of
// deliveries/, the signature the provider would send.
func deliveryVectors(tb testing.TB) (secret string, signatures map[string]string) {
	tb.Helper()
	var v struct {
		Secret     string            `json:"secret"`
		Signatures map[string]string `json:"signatures"`
	}
	if err := json.Unmarshal(readFixture(tb, "signatures.json"), &v); err != nil {
		tb.Fatal(err)
	}
	return v.Secret, v.Signatures
}

// recordedEvents reads recorded/MANIFEST.tsv: the event of each recorded
// delivery, keyed by path relative to fixturesDir. Account objects, whose
// "event" column is an API call, are left out.
func recordedEvents(tb testing.TB) map[string]string {
	tb.Helper()
	events := map[string]string{}
	lines := strings.Split(strings.TrimSpace(string(readFixture(tb, "recorded/MANIFEST.tsv"))), "\n")
	for _, line := range lines[1:] {
		cols := strings.Split(line, "\t")
		if len(cols) < 4 {
			tb.Fatalf("MANIFEST.tsv: short line %q", line)
		}
		if file, event := cols[0], cols[3]; strings.HasSuffix(file, ".json") && !strings.HasPrefix(event, "GET ") {
			events["recorded/"+file] = event
		}
	}
	return events
}

// seedCorpus adds every fixture file's bytes to f, through add.
func seedCorpus(f *testing.F, add func(body []byte)) {
	for _, pattern := range []string{"deliveries/*.json", "recorded/*.json"} {
		for _, path := range fixtureFiles(f, pattern) {
			add(readFixture(f, path))
		}
	}
}

// mustTime parses an RFC 3339 timestamp written in a test.
func mustTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t.UTC()
}
