package webhook

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path"
	"strings"
	"sync"
	"testing"
)

func TestSignKnownVector(t *testing.T) {
	const want = "fdd8101eebd1c9891e5d82893d19f86e7fc1277a0fdc025bae5142ae9c809b89d590d476835baefe7d77eaad7347e643813815416aa94015a37277f989a34c56"
	got := Sign("fixture-secret-do-not-use", readFixture(t, "deliveries/01_accounts_added.json"))
	if got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestVerifyDeliveries(t *testing.T) {
	secret, signatures := deliveryVectors(t)
	v := mustVerifier(t, secret)
	files := fixtureFiles(t, "deliveries/*.json")
	if len(files) != len(signatures) {
		t.Fatalf("%d deliveries, %d signatures in signatures.json", len(files), len(signatures))
	}
	for _, file := range files {
		t.Run(path.Base(file), func(t *testing.T) {
			body := readFixture(t, file)
			sig, ok := signatures[path.Base(file)]
			if !ok {
				t.Fatal("no signature in signatures.json")
			}
			if err := v.Verify(body, sig); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got := Sign(secret, body); got != sig {
				t.Fatalf("Sign = %s, want %s", got, sig)
			}
		})
	}
}

func TestVerifyRecorded(t *testing.T) {
	v := mustVerifier(t, recordedSecret)
	for _, sigFile := range fixtureFiles(t, "recorded/*.sig.txt") {
		t.Run(path.Base(sigFile), func(t *testing.T) {
			body := readFixture(t, strings.TrimSuffix(sigFile, ".sig.txt")+".json")
			if err := v.Verify(body, string(readFixture(t, sigFile))); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestNewVerifier(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		wantErr bool
	}{
		{"one", []string{"a"}, false},
		{"two", []string{"a", "b"}, false},
		{"none", nil, true},
		{"empty", []string{""}, true},
		{"one of two empty", []string{"a", ""}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(tt.secrets...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewVerifier(%q) error = %v, want error %v", tt.secrets, err, tt.wantErr)
			}
			if (v == nil) != tt.wantErr {
				t.Fatalf("NewVerifier(%q) = %v, want a Verifier only without error", tt.secrets, v)
			}
		})
	}
}

func TestVerifyRotation(t *testing.T) {
	body := readFixture(t, "deliveries/05_accounts_updated_auth_required.json")
	v := mustVerifier(t, "old secret", "new secret")
	tests := []struct {
		secret  string
		wantErr error
	}{
		{"old secret", nil},
		{"new secret", nil},
		{"third secret", ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.secret, func(t *testing.T) {
			if err := v.Verify(body, Sign(tt.secret, body)); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestVerifyConcurrent exercises the pooled MACs from many goroutines; run
// it with -race.
func TestVerifyConcurrent(t *testing.T) {
	secret, signatures := deliveryVectors(t)
	v := mustVerifier(t, "old secret", secret)
	files := fixtureFiles(t, "deliveries/*.json")
	bodies := make([][]byte, len(files))
	for i, file := range files {
		bodies[i] = readFixture(t, file)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i, body := range bodies {
				sig := signatures[path.Base(files[i])]
				if err := v.Verify(body, sig); err != nil {
					t.Errorf("%s: %v", files[i], err)
				}
				if err := v.Verify(body[1:], sig); !errors.Is(err, ErrInvalidSignature) {
					t.Errorf("%s without its first byte: %v", files[i], err)
				}
			}
		})
	}
	wg.Wait()
}

func TestVerifySignatureForms(t *testing.T) {
	const secret = "form secret"
	body := readFixture(t, "deliveries/02_accounts_connected_with_resource.json")
	sig := Sign(secret, body)
	v := mustVerifier(t, secret)
	tests := []struct {
		name    string
		sig     string
		wantErr error
	}{
		{"exact", sig, nil},
		{"uppercase", strings.ToUpper(sig), nil},
		{"whitespace padded", " \t" + sig + "\r\n", nil},
		{"empty", "", ErrMissingSignature},
		{"whitespace only", "  \t", ErrMissingSignature},
		{"truncated by one", sig[:len(sig)-1], ErrInvalidSignature},
		{"truncated by one byte", sig[:len(sig)-2], ErrInvalidSignature},
		{"extended", sig + "00", ErrInvalidSignature},
		{"prefixed", "sha512=" + sig, ErrInvalidSignature},
		{"non-hex", "g" + sig[1:], ErrInvalidSignature},
		{"inner space", sig[:64] + " " + sig[65:], ErrInvalidSignature},
		{"other secret", Sign("other secret", body), ErrInvalidSignature},
		{"all zero", strings.Repeat("0", len(sig)), ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Verify(body, tt.sig)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), sig)) {
				t.Fatalf("error %q reveals the secret or the expected signature", err)
			}
		})
	}
}

func TestVerifyChangedBody(t *testing.T) {
	const secret = "body secret"
	body := readFixture(t, "deliveries/03_accounts_failed_invalid_mfa_with_resource.json")
	sig := Sign(secret, body)
	v := mustVerifier(t, secret)

	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		t.Fatal(err)
	}
	var decoded any
	if err := json.Unmarshal(body, &decoded); err != nil {
		t.Fatal(err)
	}
	reencoded, err := json.MarshalIndent(decoded, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		body []byte
	}{
		{"one byte changed", replaceOnce(t, body, "invalid_mfa", "invalid_mfb")},
		{"one bit flipped", flipBit(body, 8*len(body)/2)},
		{"trailing newline added", append(bytes.Clone(body), '\n')},
		{"last byte removed", body[:len(body)-1]},
		{"compacted", compact.Bytes()},
		{"re-encoded, same content", reencoded},
		{"empty", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if bytes.Equal(tt.body, body) {
				t.Fatal("test body equals the signed body")
			}
			if err := v.Verify(tt.body, sig); !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("Verify = %v, want %v", err, ErrInvalidSignature)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	secret, _ := deliveryVectors(f)
	seedCorpus(f, func(body []byte) {
		f.Add(secret, body, uint(0))
		f.Add(recordedSecret, body, uint(len(body)))
	})
	f.Fuzz(func(t *testing.T, secret string, body []byte, bit uint) {
		if secret == "" {
			return // NewVerifier refuses it; covered by TestNewVerifier.
		}
		v := mustVerifier(t, secret)
		sig := Sign(secret, body)
		if err := v.Verify(body, sig); err != nil {
			t.Fatalf("Verify(Sign) = %v", err)
		}
		if len(body) > 0 {
			if err := v.Verify(flipBit(body, int(bit%uint(8*len(body)))), sig); !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("Verify with a bit of the body flipped = %v", err)
			}
		}
		// The bit is flipped in the digest, not in its hex text, where
		// flipping the case bit of a letter leaves the digest unchanged.
		digest, err := hex.DecodeString(sig)
		if err != nil {
			t.Fatal(err)
		}
		flipped := hex.EncodeToString(flipBit(digest, int(bit%uint(8*len(digest)))))
		if err := v.Verify(body, flipped); !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("Verify with a bit of the signature flipped = %v", err)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	body := readFixture(b, "recorded/accounts_updated_1.json")
	sig := string(readFixture(b, "recorded/accounts_updated_1.sig.txt"))
	for _, bench := range []struct {
		name    string
		secrets []string
	}{
		{"one secret", []string{recordedSecret}},
		{"two secrets", []string{"old secret", recordedSecret}},
	} {
		b.Run(bench.name, func(b *testing.B) {
			v := mustVerifier(b, bench.secrets...)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := v.Verify(body, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func mustVerifier(tb testing.TB, secrets ...string) *Verifier {
	tb.Helper()
	v, err := NewVerifier(secrets...)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// flipBit returns a copy of b with bit i (counted from the first byte's
// lowest bit) inverted.
func flipBit(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i/8] ^= 1 << (i % 8)
	return c
}

// replaceOnce returns a copy of b with the first old replaced by new.
func replaceOnce(tb testing.TB, b []byte, old, new string) []byte {
	tb.Helper()
	if !bytes.Contains(b, []byte(old)) {
		tb.Fatalf("%q not found", old)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}
