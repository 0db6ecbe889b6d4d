package simulate

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
)

// AllScenarios names every scenario at once, each on its own account.
const AllScenarios = "all"

// ErrUnknownScenario is wrapped by Play for a name that is no scenario.
var ErrUnknownScenario = errors.New("unknown scenario")

// Scenario is a named story of one account, told as the deliveries the
// provider sends for it.
type Scenario struct {
	Name        string
	Description string
	play        func(a *Account) []Delivery
	// age is how long before the generator's clock the story begins: zero
	// for a story happening now.
	age time.Duration
}

// staleAge is how long before the generator's clock the stale scenario's
// account was created and scanned: well past the service's default
// stale-after age (72h).
const staleAge = 7 * 24 * time.Hour

// Scenarios lists every case of docs/provider.md#events, in the order `all`
// plays them.
func Scenarios() []Scenario {
	connected := func(a *Account) []Delivery { return slices.Concat(a.Add(), a.Connect()) }
	firstLoginFails := func(code string) func(a *Account) []Delivery {
		return func(a *Account) []Delivery { return slices.Concat(a.Add(), a.Fail(code)) }
	}
	return []Scenario{
		{Name: "connect", Description: "credentials submitted, login succeeds, first scan completes",
			play: connected},
		{Name: "failed-login", Description: "the first login fails: wrong username or password (invalid_credentials)",
			play: firstLoginFails("invalid_credentials")},
		{Name: "wrong-mfa", Description: "the first login fails on a wrong MFA answer (invalid_mfa)",
			play: firstLoginFails("invalid_mfa")},
		{Name: "mfa-timeout", Description: "the first login fails: the MFA request timed out (mfa_timeout)",
			play: firstLoginFails("mfa_timeout")},
		{Name: "repeated-reauth-failure", Description: "connected, then three re-logins with mistyped credentials fail",
			play: func(a *Account) []Delivery {
				return slices.Concat(connected(a), a.Fail("invalid_credentials"), a.Fail("invalid_credentials"), a.Fail("invalid_credentials"))
			}},
		{Name: "disconnect", Description: "connected, then the payroll system logs the session out (auth_required)",
			play: func(a *Account) []Delivery { return slices.Concat(connected(a), a.Disconnect("auth_required")) }},
		{Name: "expired-credentials", Description: "connected, then the payroll system forces a password reset (expired_credentials)",
			play: func(a *Account) []Delivery { return slices.Concat(connected(a), a.Disconnect("expired_credentials")) }},
		{Name: "provider-outage", Description: "connected, platform down (platform_unavailable), provider error (system_error), then recovered",
			play: func(a *Account) []Delivery {
				return slices.Concat(connected(a), a.Disconnect("platform_unavailable"), a.Disconnect("system_error"), a.Recover())
			}},
		{Name: "reconnect", Description: "connected, logged out (auth_required), then the user reconnects in Link",
			play: func(a *Account) []Delivery {
				return slices.Concat(connected(a), a.Disconnect("auth_required"), a.Connect())
			}},
		{Name: "revoke", Description: "connected, then the user revokes access (accounts.removed)",
			play: func(a *Account) []Delivery { return slices.Concat(connected(a), a.Remove()) }},
		{Name: "refresh-disabled", Description: "connected, then the provider disables the account's ongoing refresh (still connected)",
			play: func(a *Account) []Delivery { return slices.Concat(connected(a), a.DisableRefresh()) }},
		{Name: "sync-failed", Description: "connected, a periodic scan fails to sync paystubs (sync_failed), the next one syncs them",
			play: func(a *Account) []Delivery { return slices.Concat(connected(a), a.Scan(DatasetPaystubs), a.Scan()) }},
		{Name: "stale", Description: "connected and scanned 7 days ago, before the service knew it, no scan since (still connected)",
			play: func(a *Account) []Delivery {
				// Only the scan reaches the service: its login happened
				// before the service's time, so its data is as old as
				// the scan, however recently it arrived.
				story := connected(a)
				return story[len(story)-1:]
			}, age: staleAge},
	}
}

// ItemOutageScenario is the one scenario of several accounts: not part of
// AllScenarios, whose scenarios each play on one account.
const ItemOutageScenario = "item-outage"

// ItemOutageDescription describes ItemOutageScenario for --list.
const ItemOutageDescription = "eight accounts of one payroll platform: six fail on its side together (platform_unavailable), one is " +
	"logged out; the provider reports the platform unavailable, then healthy, and the six recover (send with --rate 2 to watch the " +
	"outage begin and end)"

// itemOutage plays ItemOutageScenario on a and seven more accounts of a's
// item.
func itemOutage(a *Account) []Delivery {
	accounts := []*Account{a}
	for range 7 {
		b := a.g.NewAccount()
		b.obj.Item = a.obj.Item
		accounts = append(accounts, b)
	}
	var out []Delivery
	for _, b := range accounts {
		out = slices.Concat(out, b.Add(), b.Connect())
	}
	for _, b := range accounts[:6] {
		out = append(out, b.Disconnect("platform_unavailable")...)
	}
	out = append(out, accounts[7].Disconnect("auth_required")...)
	out = append(out, a.ItemUpdated(health.ReportedUnavailable, "Logins fail; next update within the hour."),
		a.ItemUpdated(health.ReportedHealthy, ""))
	for _, b := range accounts[:6] {
		out = append(out, b.Recover()...)
	}
	return out
}

// Play tells scenario name on a new account, or with AllScenarios every
// scenario, each on its own account. Each delivery names its scenario.
func (g *Generator) Play(name string) ([]Delivery, error) {
	all := Scenarios()
	if name == ItemOutageScenario {
		all = []Scenario{{Name: name, play: itemOutage}}
	} else if name != AllScenarios {
		i := slices.IndexFunc(all, func(s Scenario) bool { return s.Name == name })
		if i < 0 {
			names := []string{AllScenarios}
			for _, s := range all {
				names = append(names, s.Name)
			}
			names = append(names, ItemOutageScenario)
			return nil, fmt.Errorf("%w %q: want one of %s", ErrUnknownScenario, name, strings.Join(names, ", "))
		}
		all = all[i : i+1]
	}
	var out []Delivery
	for _, s := range all {
		ds := s.play(g.newAccount(s.age))
		for i := range ds {
			ds[i].Scenario = s.Name
		}
		out = append(out, ds...)
	}
	return out, nil
}

// lifeStep moves a one step along a realistic life: mostly periodic scans
// of a healthy account, sometimes a failure, a disconnection or an outage,
// usually followed by a recovery, and rarely a removal. a must not be
// removed: nothing happens to a removed account.
func lifeStep(a *Account, r *rand.Rand) []Delivery {
	loginCodes := []string{"invalid_credentials", "invalid_mfa", "mfa_timeout"}
	outageCodes := []string{"platform_unavailable", "platform_temporarily_unavailable", "system_error"}
	pick := func(codes []string) string { return codes[r.IntN(len(codes))] }
	p := r.Float64()
	conn := a.obj.Connection
	switch {
	case !a.added:
		if p < 0.15 {
			return slices.Concat(a.Add(), a.Fail(pick(loginCodes)))
		}
		return slices.Concat(a.Add(), a.Connect())
	case conn.Status == statusConnected:
		switch {
		case p < 0.80:
			return a.Rescan()
		case p < 0.87:
			return a.Disconnect("auth_required")
		case p < 0.90:
			return a.Disconnect("expired_credentials")
		case p < 0.98:
			return a.Disconnect(pick(outageCodes))
		default:
			return a.Remove()
		}
	case health.Classify(string(conn.ErrorCode)).Category == health.CategoryProvider:
		if p < 0.6 {
			return a.Recover()
		}
		return a.Disconnect(pick(outageCodes))
	default:
		// A failed login, or a session the user must renew in Link.
		switch {
		case p < 0.7:
			return a.Connect()
		case p < 0.95:
			return a.Fail(pick(loginCodes))
		default:
			return a.Remove()
		}
	}
}
