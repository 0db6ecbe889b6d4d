package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// CertReloader serves the certificate in a cert/key file pair and picks up
// a renewed pair without a restart: when the files change (checked at most
// once a second, at a handshake) or when Reload is called (on SIGHUP).
// A pair that fails to load is logged by the caller and the previous one
// stays in use, so a half-written renewal never takes the service down.
type CertReloader struct {
	certFile, keyFile string

	mu      sync.RWMutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
	now     func() time.Time // the clock of the once-a-second check
}

// NewCertReloader loads the pair once; an error here is fatal at start.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	r := &CertReloader{certFile: certFile, keyFile: keyFile, now: time.Now}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload loads the pair from disk now.
func (r *CertReloader) Reload() error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls-cert/tls-key: %w", err)
	}
	mod := r.modified()
	r.mu.Lock()
	r.cert, r.modTime, r.checked = &cert, mod, r.now()
	r.mu.Unlock()
	return nil
}

// modified is the newer of the two files' modification times.
func (r *CertReloader) modified() time.Time {
	var newest time.Time
	for _, f := range []string{r.certFile, r.keyFile} {
		if st, err := os.Stat(f); err == nil && st.ModTime().After(newest) {
			newest = st.ModTime()
		}
	}
	return newest
}

// GetCertificate is tls.Config.GetCertificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.RLock()
	cert, stale := r.cert, r.now().Sub(r.checked) > time.Second
	r.mu.RUnlock()
	if stale {
		r.mu.Lock()
		r.checked = r.now()
		r.mu.Unlock()
		if mod := r.modified(); mod.After(r.loadedAt()) {
			if err := r.Reload(); err == nil {
				r.mu.RLock()
				cert = r.cert
				r.mu.RUnlock()
			}
		}
	}
	return cert, nil
}

func (r *CertReloader) loadedAt() time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.modTime
}

// ServerTLS is the TLS configuration of a listener: the reloaded
// certificate, TLS 1.2 at least, and when clientCAFile is given, client
// certificates verified against it when a client sends one (callers may
// use a bearer token instead).
func ServerTLS(r *CertReloader, clientCAFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate, NextProtos: []string{"h2", "http/1.1"}}
	if clientCAFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("tls-client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("tls-client-ca: no PEM certificate found in " + clientCAFile)
	}
	cfg.ClientCAs = pool
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	return cfg, nil
}
