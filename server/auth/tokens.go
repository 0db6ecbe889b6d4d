// Package auth authenticates internal callers of the gRPC API and the REST
// gateway: bearer tokens, each with a name for audit, kept only as SHA-256
// hashes and compared in constant time.
package auth

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// ErrUnauthenticated: no credential, or one that matches nothing.
var ErrUnauthenticated = errors.New("unauthenticated")

// Tokens is a set of named bearer tokens, held as SHA-256 hashes: a leaked
// configuration does not leak the tokens. Tokens are long and random, so a
// plain hash is as good as a slow one here.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	name string
	hash [sha256.Size]byte
}

// namePattern keeps names safe to print in logs and audit entries.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ParseTokens reads entries "name:sha256-hex", one per line or separated by
// commas; blank lines and lines starting with # are ignored. source names
// where they come from, for error messages.
func ParseTokens(r io.Reader, source string) (*Tokens, error) {
	t := &Tokens{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		for _, item := range strings.Split(text, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			e, err := parseEntry(item)
			if err != nil {
				return nil, fmt.Errorf("%s line %d: %w", source, line, err)
			}
			if seen[e.name] {
				return nil, fmt.Errorf("%s line %d: token name %q is used twice; names identify callers in audit entries", source, line, e.name)
			}
			seen[e.name] = true
			t.entries = append(t.entries, e)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return t, nil
}

func parseEntry(item string) (tokenEntry, error) {
	name, digest, ok := strings.Cut(item, ":")
	if !ok {
		return tokenEntry{}, errors.New(`want "name:sha256-hex" (create one with 'accounthealth token new NAME')`)
	}
	if !namePattern.MatchString(name) {
		return tokenEntry{}, fmt.Errorf("token name %q: use letters, digits, '.', '_', '-' or '@', at most 64", name)
	}
	raw, err := hex.DecodeString(strings.TrimPrefix(digest, "sha256:"))
	if err != nil || len(raw) != sha256.Size {
		return tokenEntry{}, fmt.Errorf("token %q: the hash must be 64 hex characters (the SHA-256 of the token, never the token itself)", name)
	}
	e := tokenEntry{name: name}
	copy(e.hash[:], raw)
	return e, nil
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.entries) }

// Authenticate returns the name of the token presented. It compares against
// every entry, whatever matches, so the time taken says nothing about which
// token (or how much of one) was right.
func (t *Tokens) Authenticate(token string) (string, error) {
	if token == "" {
		return "", ErrUnauthenticated
	}
	h := sha256.Sum256([]byte(token))
	name := ""
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(h[:], e.hash[:]) == 1 {
			name = e.name
		}
	}
	if name == "" {
		return "", ErrUnauthenticated
	}
	return name, nil
}

// NewToken makes a random token and the entry that configures it.
func NewToken(name string) (token, entry string, err error) {
	if !namePattern.MatchString(name) {
		return "", "", fmt.Errorf("token name %q: use letters, digits, '.', '_', '-' or '@', at most 64", name)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	token = "ahk_" + base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(token))
	return token, name + ":" + hex.EncodeToString(h[:]), nil
}
