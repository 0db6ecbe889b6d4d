package auth

import (
	"crypto/x509"
	"fmt"
	"strings"
)

// Authenticator decides who an internal caller is, from a verified client
// certificate or a bearer token. With neither configured it is Open: the
// service then runs only on loopback addresses (Config refuses otherwise)
// and callers are named by their address.
type Authenticator struct {
	tokens *Tokens // nil or empty: no tokens
	certs  bool    // client certificates are verified against a CA
}

// NewAuthenticator accepts the given tokens (may be nil) and, when
// clientCerts is set, callers presenting a certificate the TLS layer
// verified.
func NewAuthenticator(tokens *Tokens, clientCerts bool) *Authenticator {
	return &Authenticator{tokens: tokens, certs: clientCerts}
}

// Open reports whether no credential is configured (development mode).
func (a *Authenticator) Open() bool {
	return !a.certs && (a.tokens == nil || a.tokens.Len() == 0)
}

// Identify names the caller. verified is the chains the TLS layer verified
// for the client's certificate (empty without one); authorization is the
// Authorization header or metadata value; peer is the remote address, used
// to name callers in Open mode. It fails with ErrUnauthenticated and a
// message saying what to send.
func (a *Authenticator) Identify(verified [][]*x509.Certificate, authorization, peer string) (string, error) {
	if a.certs && len(verified) > 0 && len(verified[0]) > 0 {
		return "cert:" + certName(verified[0][0]), nil
	}
	if token, ok := strings.CutPrefix(authorization, "Bearer "); ok && a.tokens != nil {
		name, err := a.tokens.Authenticate(strings.TrimSpace(token))
		if err != nil {
			return "", fmt.Errorf("%w: the bearer token matches none configured (check --api-tokens-file / ACCOUNTHEALTH_API_TOKENS)", ErrUnauthenticated)
		}
		return "token:" + name, nil
	}
	if a.Open() {
		return "unauthenticated@" + peer, nil
	}
	if a.certs {
		return "", fmt.Errorf("%w: send 'authorization: Bearer <token>' or a client certificate signed by the configured CA", ErrUnauthenticated)
	}
	return "", fmt.Errorf("%w: send 'authorization: Bearer <token>'", ErrUnauthenticated)
}

// certName names a certificate's holder: its subject's common name, else
// its first DNS or URI name.
func certName(c *x509.Certificate) string {
	switch {
	case c.Subject.CommonName != "":
		return c.Subject.CommonName
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	case len(c.URIs) > 0:
		return c.URIs[0].String()
	}
	return c.SerialNumber.String()
}
