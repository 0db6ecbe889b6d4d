// Package simulate plays the provider's (Argyle's) side of the webhook
// contract against a running accounthealth server: it models payroll
// accounts the way the provider does, builds the deliveries each change of
// an account causes (docs/provider.md), and sends them signed, one scenario
// at a time or as a steady load.
//
// It sits beside providerfake because both play the provider: providerfake
// answers the service's REST calls, simulate sends the webhooks.
//
// Nothing here is global: a Generator owns its randomness and clock, a
// Sender its HTTP client, so tests and concurrent runs do not interfere.
package simulate

import (
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"time"
)

// DefaultSubscriptionName is the "name" of deliveries when Options.Name is
// empty. The provider puts the subscriber's own label there.
const DefaultSubscriptionName = "accounthealth-simulator"

// Options configure a Generator. The zero value is usable: deliveries carry
// the account object, ids are random and time starts now.
type Options struct {
	// Name is the subscription name every delivery carries.
	Name string
	// Lean leaves data.resource out, as for a subscription created without
	// include_resource: the server then sees events but not the account.
	Lean bool
	// Seed, when not zero, makes ids, timestamps and life-cycle choices
	// reproducible; zero draws ids from crypto/rand.
	Seed int64
	// Start is the time of the first account's creation; zero means now.
	Start time.Time
}

// Generator creates accounts and their deliveries. It is not safe for
// concurrent use: accounts share its randomness.
type Generator struct {
	name  string
	lean  bool
	ids   io.Reader  // the random bits of UUIDs
	rng   *rand.Rand // jitter of timestamps and life-cycle choices
	clock time.Time  // when the next account is created
}

// NewGenerator returns a Generator for opts.
func NewGenerator(opts Options) *Generator {
	g := &Generator{name: opts.Name, lean: opts.Lean, clock: opts.Start}
	if g.name == "" {
		g.name = DefaultSubscriptionName
	}
	if g.clock.IsZero() {
		g.clock = time.Now()
	}
	g.clock = g.clock.UTC().Truncate(time.Microsecond)
	if opts.Seed != 0 {
		src := seededSource(opts.Seed)
		g.ids, g.rng = src, rand.New(src)
	} else {
		g.ids, g.rng = crand.Reader, newRand(0)
	}
	return g
}

// seededSource is the deterministic stream behind a non-zero seed.
func seededSource(seed int64) *rand.ChaCha8 {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], uint64(seed))
	return rand.NewChaCha8(key)
}

// newRand returns a generator seeded by seed, or randomly when seed is zero.
func newRand(seed int64) *rand.Rand {
	if seed == 0 {
		return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return rand.New(seededSource(seed))
}

// NewAccount returns an account not yet added: call Add first, as the
// provider's account exists from the moment credentials are submitted.
// Successive accounts are created a few seconds apart, like real users.
func (g *Generator) NewAccount() *Account { return g.newAccount(0) }

// newAccount is NewAccount for an account created age before the
// generator's clock: a story that began before the run, its deliveries
// sent now with the timestamps it had.
func (g *Generator) newAccount(age time.Duration) *Account {
	created := g.clock.Add(-age)
	g.clock = g.clock.Add(2*time.Second + g.jitter(3*time.Second))
	// The user signed up in Link a little before submitting credentials.
	user := g.uuid(created.Add(-20*time.Second - g.jitter(10*time.Second)))
	return newAccount(g, g.uuid(created), user, created)
}

// jitter is a random duration in [0, d), with microsecond resolution like
// the provider's timestamps.
func (g *Generator) jitter(d time.Duration) time.Duration {
	if d < time.Microsecond {
		return 0
	}
	return time.Duration(g.rng.Int64N(int64(d/time.Microsecond))) * time.Microsecond
}

// uuid returns a version 7 UUID for time t, as the provider's ids are: a
// 48-bit millisecond timestamp, then random bits.
func (g *Generator) uuid(t time.Time) string {
	var b [16]byte
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(t.UnixMilli()))
	copy(b[:6], ms[2:])
	if _, err := io.ReadFull(g.ids, b[6:]); err != nil {
		// Neither crypto/rand nor ChaCha8 fails.
		panic("simulate: reading random bits: " + err.Error())
	}
	b[6] = 0x70 | b[6]&0x0f // version 7
	b[8] = 0x80 | b[8]&0x3f // RFC 9562 variant
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	hex.Encode(s[9:13], b[4:6])
	hex.Encode(s[14:18], b[6:8])
	hex.Encode(s[19:23], b[8:10])
	hex.Encode(s[24:], b[10:])
	s[8], s[13], s[18], s[23] = '-', '-', '-', '-'
	return string(s[:])
}
