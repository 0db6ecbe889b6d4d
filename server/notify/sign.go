package notify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/store"
)

// SecretPrefix begins every signing secret, as Standard Webhooks writes
// them; the rest is base64 of the key's bytes.
const SecretPrefix = "whsec_"

// secretBytes is the length of a new key: Standard Webhooks asks for 24
// to 64 bytes.
const secretBytes = 32

// NewSecret returns a fresh random signing secret.
func NewSecret() string {
	key := make([]byte, secretBytes)
	rand.Read(key) // never fails (crypto/rand's contract since Go 1.24)
	return SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// Sign returns the webhook-signature header of a message: a "v1,<base64
// HMAC-SHA256 of id.timestamp.body>" for each secret live at now, space
// separated, so that during a rotation's overlap a receiver holding either
// secret verifies it.
func Sign(secrets []store.Secret, now time.Time, id string, timestamp int64, body []byte) (string, error) {
	var sigs []string
	for _, s := range secrets {
		if !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
			continue
		}
		key, err := decodeSecret(s.Key)
		if err != nil {
			return "", err
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write(strconv.AppendInt(nil, timestamp, 10))
		mac.Write([]byte{'.'})
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	if len(sigs) == 0 {
		return "", fmt.Errorf("notify: the endpoint has no live secret; rotate its secret")
	}
	return strings.Join(sigs, " "), nil
}

func decodeSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("notify: a stored secret does not begin with %q", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("notify: a stored secret is not base64: %w", err)
	}
	return key, nil
}

// rotate returns secrets with a new current one, keeping the current one
// live until now+overlap (not at all when overlap is 0) and dropping
// those expired.
func rotate(secrets []store.Secret, now time.Time, overlap time.Duration) ([]store.Secret, string) {
	fresh := NewSecret()
	out := []store.Secret{{Key: fresh}}
	for _, s := range secrets {
		switch {
		case s.ExpiresAt.IsZero() && overlap > 0:
			out = append(out, store.Secret{Key: s.Key, ExpiresAt: now.Add(overlap)})
		case !s.ExpiresAt.IsZero() && now.Before(s.ExpiresAt):
			out = append(out, s)
		}
	}
	return out, fresh
}
