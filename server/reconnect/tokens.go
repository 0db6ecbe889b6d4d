package reconnect

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/accounthealth/accounthealth/server/provider"
)

// maxSharedTokens bounds the tokens kept for their window: a few hundred
// bytes each, and never more than maxSharedTokenBytes with the user's id,
// so 8 MiB at most.
const maxSharedTokens = 2048

// maxSharedTokenBytes is the most a shared token and its user id take: a
// user token is a JWT of a few hundred bytes; a longer one is used but not
// kept.
const maxSharedTokenBytes = 4 << 10

// tokenShare makes calls for one user within a short window share one
// token request: concurrent ones share the request in flight, later ones
// the token it gave, until the window ends.
type tokenShare struct {
	mint   func(ctx context.Context, userID string) (provider.UserToken, error)
	window time.Duration
	now    func() time.Time
	flight singleflight.Group

	mu     sync.Mutex
	recent map[string]sharedToken
}

type sharedToken struct {
	token  provider.UserToken
	minted time.Time
}

func newTokenShare(mint func(context.Context, string) (provider.UserToken, error), window time.Duration, now func() time.Time) *tokenShare {
	return &tokenShare{mint: mint, window: window, now: now, recent: map[string]sharedToken{}}
}

func (s *tokenShare) get(ctx context.Context, userID string) (provider.UserToken, error) {
	if tok, ok := s.lookup(userID); ok {
		return tok, nil
	}
	// The shared request must not die with the first caller's context:
	// the others wait on it.
	v, err, _ := s.flight.Do(userID, func() (any, error) {
		tok, err := s.mint(context.WithoutCancel(ctx), userID)
		if err == nil {
			s.keep(userID, tok)
		}
		return tok, err
	})
	tok, _ := v.(provider.UserToken)
	return tok, err
}

func (s *tokenShare) lookup(userID string) (provider.UserToken, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.recent[userID]
	if !ok || s.now().Sub(t.minted) >= s.window {
		return provider.UserToken{}, false
	}
	return t.token, true
}

// keep remembers tok for its window, dropping expired ones; when the map
// is full of fresh tokens, or tok is too large to keep, it is simply not
// shared.
func (s *tokenShare) keep(userID string, tok provider.UserToken) {
	if len(userID)+len(tok.Token) > maxSharedTokenBytes {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.recent) >= maxSharedTokens {
		for id, t := range s.recent {
			if now.Sub(t.minted) >= s.window {
				delete(s.recent, id)
			}
		}
	}
	if len(s.recent) < maxSharedTokens {
		s.recent[userID] = sharedToken{token: tok, minted: now}
	}
}
