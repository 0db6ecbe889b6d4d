package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writePair writes a self-signed certificate with serial and its key, and
// stamps both files with modTime.
func writePair(t *testing.T, certFile, keyFile string, serial int64, modTime time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path, kind string
		der        []byte
	}{{certFile, "CERTIFICATE", der}, {keyFile, "EC PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.kind, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f.path, modTime, modTime); err != nil {
			t.Fatal(err)
		}
	}
}

func servedSerial(t *testing.T, r *CertReloader) int64 {
	t.Helper()
	cert, err := r.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.Int64()
}

// A renewal in place is picked up at the first handshake after the next
// once-a-second check, and a half-written one keeps the old pair served.
func TestCertReloaderPicksUpRenewal(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	writePair(t, certFile, keyFile, 1, start)
	r, err := NewCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	clock := start
	r.now = func() time.Time { return clock }
	r.checked = clock

	writePair(t, certFile, keyFile, 2, start.Add(time.Minute))
	if got := servedSerial(t, r); got != 1 {
		t.Errorf("within the second: serial %d, want the old 1", got)
	}
	clock = clock.Add(2 * time.Second)
	if got := servedSerial(t, r); got != 2 {
		t.Errorf("after the check: serial %d, want the renewed 2", got)
	}

	// A half-written certificate: the old pair stays.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERT"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(certFile, start.Add(2*time.Minute), start.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(2 * time.Second)
	if got := servedSerial(t, r); got != 2 {
		t.Errorf("after a broken renewal: serial %d, want 2 still", got)
	}
}
