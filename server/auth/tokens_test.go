package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestTokensRoundTrip(t *testing.T) {
	tokA, entryA, err := NewToken("support-tool")
	if err != nil {
		t.Fatal(err)
	}
	tokB, entryB, _ := NewToken("dashboards")
	if strings.Contains(entryA, tokA) || !strings.HasPrefix(entryA, "support-tool:") {
		t.Fatalf("entry %q must hold the hash, not the token", entryA)
	}
	ts, err := ParseTokens(strings.NewReader("# internal callers\n"+entryA+"\n\n"+entryB+"\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]string{tokA: "support-tool", tokB: "dashboards"} {
		if got, err := ts.Authenticate(tok); err != nil || got != want {
			t.Errorf("Authenticate = %q, %v; want %q", got, err, want)
		}
	}
	for _, bad := range []string{"", tokA + "x", tokA[:len(tokA)-1], strings.ToUpper(tokA), entryA} {
		if _, err := ts.Authenticate(bad); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnauthenticated", bad, err)
		}
	}
	// The comma-separated form (an environment variable) reads the same.
	env, err := ParseTokens(strings.NewReader(entryA+","+entryB), "ACCOUNTHEALTH_API_TOKENS")
	if err != nil || env.Len() != 2 {
		t.Fatalf("comma-separated: %v, %d tokens", err, env.Len())
	}
}

func TestParseTokensErrors(t *testing.T) {
	_, good, _ := NewToken("a")
	cases := []struct{ in, want string }{
		{"justaname", `want "name:sha256-hex"`},
		{"bad name:" + strings.Repeat("0", 64), "token name"},
		{"a:nothex", "64 hex characters"},
		{"a:" + strings.Repeat("0", 62), "64 hex characters"},
		{good + "\n" + good, "used twice"},
	}
	for _, c := range cases {
		_, err := ParseTokens(strings.NewReader(c.in), "tokens.txt")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "tokens.txt line") {
			t.Errorf("ParseTokens(%q) = %v, want an error with %q and the line", c.in, err, c.want)
		}
	}
	if _, _, err := NewToken("no spaces please"); err == nil {
		t.Error("NewToken accepted a bad name")
	}
}
