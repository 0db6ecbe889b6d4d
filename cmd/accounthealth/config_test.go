package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "accounthealth.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A config file sets what flags and environment leave unset.
func TestServeConfigFile(t *testing.T) {
	conf := writeConfig(t, "# deployment defaults\nmax-body-bytes = 2048\nwebhook-addr = \"127.0.0.1:1\"\n")
	// The environment (set by serve) wins over the file's webhook-addr;
	// the file's body cap applies.
	s := serve(t, t.TempDir(), "ACCOUNTHEALTH_CONFIG="+conf)
	big := append([]byte(`{"event":"accounts.added","data":{"account":"a"},"pad":"`), bytes.Repeat([]byte("x"), 3000)...)
	big = append(big, `"}`...)
	if code := s.post(t, big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("3 KB body with max-body-bytes = 2048 from the config file: %d, want 413", code)
	}
	s.stop(t)
}

func TestServeConfigFileErrors(t *testing.T) {
	cases := []struct{ text, want string }{
		{"no-such-setting = 1\n", `line 1: "no-such-setting" is not a setting`},
		{"\n\njust words\n", "line 3: want \"name = value\""},
		{"max-body-bytes = lots\n", "line 1: max-body-bytes"},
		{"grpc-addr = nowhere\nwebhook-secret = s\n", "grpc-addr"},
	}
	for _, c := range cases {
		code, stdout, stderr := runBinary(t, nil, "serve", "--config", writeConfig(t, c.text))
		if code != exitUsage || !bytes.Contains([]byte(stdout+stderr), []byte(c.want)) {
			t.Errorf("config %q: exit %d, output %q; want exit 2 mentioning %q", c.text, code, stdout+stderr, c.want)
		}
	}
}
