package simtest

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"time"

	"github.com/accounthealth/accounthealth/server/provider/simulate"
)

// Codes the walk uses, by who can fix them.
var (
	LoginCodes   = []string{"invalid_credentials", "invalid_mfa", "mfa_timeout"}
	OutageCodes  = []string{"platform_unavailable", "platform_temporarily_unavailable", "system_error"}
	SessionCodes = []string{"auth_required", "expired_credentials"}
)

// Start is when every generated history's first account is created.
var Start = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

// status is the walk's own view of the account's connection.
type status int

const (
	stNew        status = iota
	stConnecting        // first login or re-authentication under way
	stConnected
	stOutage    // the connection is in error on the provider's or platform's side
	stUserError // a failed login, or a session the user must renew
	stRemoved
)

// Generate builds the history of one account from seed: the same seed,
// the same history, in every mode. maxSteps bounds its length (at least 1).
func Generate(seed int64, maxSteps int) *History {
	r := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	full := simulate.NewGenerator(simulate.Options{Name: "property", Seed: seed, Start: Start})
	lean := simulate.NewGenerator(simulate.Options{Name: "property", Seed: seed, Start: Start, Lean: true})
	af, al := full.NewAccount(), lean.NewAccount()
	h := &History{Seed: seed}

	st, ever := stNew, false
	n := 1 + r.IntN(max(maxSteps, 1))
	for len(h.Steps) < n || st == stNew {
		s := nextStep(r, st, ever)
		h.add(s, af, al)
		st, ever = next(st, ever, s)
		if s.Op == OpRemove && !s.AfterRemoval {
			// Sometimes a few more changes after the removal.
			n = len(h.Steps) + r.IntN(3)
		}
	}
	return h
}

// nextStep draws what happens next to an account in status st: the odds
// follow what the provider's users and platforms do.
func nextStep(r *rand.Rand, st status, ever bool) Step {
	pick := func(codes []string) string { return codes[r.IntN(len(codes))] }
	p := r.Float64()
	var s Step
	switch st {
	case stNew:
		s = Step{Op: OpAdd}
	case stConnecting:
		switch {
		case p < 0.65:
			s = Step{Op: OpConnect}
		case p < 0.90:
			s = Step{Op: OpFail, Code: pick(LoginCodes)}
		default:
			// A first login may fail on the provider's side.
			s = Step{Op: OpFail, Code: "system_error"}
		}
	case stConnected:
		switch {
		case p < 0.45:
			s = Step{Op: OpRescan}
		case p < 0.57:
			s = Step{Op: OpDisconnect, Code: "auth_required"}
		case p < 0.65:
			s = Step{Op: OpDisconnect, Code: "expired_credentials"}
		case p < 0.80:
			s = Step{Op: OpDisconnect, Code: pick(OutageCodes)}
		case p < 0.90:
			// A re-authentication with a mistyped MFA code or password.
			s = Step{Op: OpFail, Code: pick(LoginCodes)}
		case p < 0.95:
			s = Step{Op: OpFail, Code: "system_error"}
		default:
			s = Step{Op: OpRemove}
		}
	case stOutage:
		switch {
		case p < 0.40 && ever:
			s = Step{Op: OpRecover}
		case p < 0.60 && ever:
			s = Step{Op: OpDisconnect, Code: pick(OutageCodes)}
		case p < 0.75:
			s = Step{Op: OpConnect}
		case p < 0.85:
			s = Step{Op: OpFail, Code: pick(LoginCodes)}
		case p < 0.95:
			s = Step{Op: OpReauth}
		default:
			s = Step{Op: OpRemove}
		}
	case stUserError:
		switch {
		case p < 0.40:
			s = Step{Op: OpConnect}
		case p < 0.65:
			s = Step{Op: OpFail, Code: pick(LoginCodes)}
		case p < 0.70:
			s = Step{Op: OpFail, Code: "system_error"}
		case p < 0.90:
			s = Step{Op: OpReauth}
		default:
			s = Step{Op: OpRemove}
		}
	case stRemoved:
		// The simulator does not stop a removed account: what it sends
		// then must change nothing.
		s = Step{AfterRemoval: true}
		switch {
		case p < 0.4:
			s.Op = OpConnect
		case p < 0.7:
			s.Op, s.Code = OpFail, pick(LoginCodes)
		default:
			s.Op = OpRescan
		}
	}
	return s
}

// add plays s on the full and the lean twin of the account and records the
// deliveries of every mode.
func (h *History) add(s Step, full, lean *simulate.Account) {
	play := func(a *simulate.Account) []simulate.Delivery {
		switch s.Op {
		case OpAdd:
			return a.Add()
		case OpConnect:
			return a.Connect()
		case OpFail:
			return a.Fail(s.Code)
		case OpDisconnect:
			return a.Disconnect(s.Code)
		case OpRescan:
			return a.Rescan()
		case OpRecover:
			return a.Recover()
		case OpReauth:
			return Reauth(a, h.lastCode)
		case OpRemove:
			return a.Remove()
		}
		panic("simtest: unknown op")
	}
	fs, ls := play(full), play(lean)
	if s.Code != "" {
		h.lastCode = s.Code
	}
	if len(fs) != len(ls) {
		panic("simtest: the lean twin sent a different number of deliveries")
	}
	step := len(h.Steps)
	h.Steps = append(h.Steps, s)
	for i, f := range fs {
		if h.Account == "" {
			h.Account, h.User = f.Account, f.User
		}
		if f.Account != ls[i].Account || f.Event != ls[i].Event {
			panic("simtest: the lean twin is another account")
		}
		full := newDelivery(f.Event, f.Body, step)
		if full.Decoded.Snapshot == nil {
			panic("simtest: the simulator's delivery came without its object")
		}
		full.At = full.Decoded.Snapshot.Time()
		bare := ls[i].Body
		if f.Event == simulate.EventFailed {
			bare = Codeless(bare)
		}
		lean, bared := newDelivery(f.Event, ls[i].Body, step), newDelivery(f.Event, bare, step)
		lean.At, bared.At = full.At, full.At
		h.deliveries[Full] = append(h.deliveries[Full], full)
		h.deliveries[Lean] = append(h.deliveries[Lean], lean)
		h.deliveries[Bare] = append(h.deliveries[Bare], bared)
		if f.Event == simulate.EventFailed {
			h.deliveries[Dual] = append(h.deliveries[Dual], bared)
		} else {
			h.deliveries[Dual] = append(h.deliveries[Dual], lean)
		}
		if f.Event == simulate.EventUpdated {
			h.deliveries[Dual] = append(h.deliveries[Dual], full)
		}
	}
}

// Reauth starts a re-authentication: the user is back in Link and the
// provider reports the connection as connecting, in an accounts.updated.
// The simulator has no builder for it. Add makes the same change of the
// object, and only its event name is the first login's; but it does not
// wait for the user to come back, so the account's clock is moved on first
// by a disconnection with the code it is in error with, whose delivery
// nobody sends (the connection stays as it was, only its time moves).
func Reauth(a *simulate.Account, code string) []simulate.Delivery {
	_ = a.Disconnect(code)
	ds := a.Add()
	for i := range ds {
		from, to := []byte(`"event": "`+simulate.EventAdded+`"`), []byte(`"event": "`+simulate.EventUpdated+`"`)
		if !bytes.Contains(ds[i].Body, from) {
			panic("simtest: the simulator's accounts.added has another shape")
		}
		ds[i].Body = bytes.Replace(ds[i].Body, from, to, 1)
		ds[i].Event = simulate.EventUpdated
	}
	return ds
}

// Codeless re-encodes a lean delivery without data.error_code and
// data.error_message, in the provider's indented form: an accounts.failed
// as v2 deliveries may come.
func Codeless(body []byte) []byte {
	var env struct {
		Event string `json:"event"`
		Name  string `json:"name"`
		Data  struct {
			Account string `json:"account"`
			User    string `json:"user"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		panic("simtest: " + err.Error())
	}
	out, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		panic("simtest: " + err.Error())
	}
	return out
}
