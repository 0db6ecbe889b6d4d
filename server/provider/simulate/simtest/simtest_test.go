package simtest

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
)

// Histories are reproducible, plausible, and the same account in every
// mode, with the deliveries each mode promises.
func TestGenerate(t *testing.T) {
	for seed := int64(1); seed <= 200; seed++ {
		h := Generate(seed, 14)
		if !Plausible(h.Steps) {
			t.Fatalf("seed %d: implausible steps %v", seed, h.Steps)
		}
		again := Generate(seed, 14)
		for _, m := range Modes {
			if !slices.EqualFunc(h.Deliveries(m), again.Deliveries(m), func(a, b Delivery) bool { return bytes.Equal(a.Body, b.Body) }) {
				t.Fatalf("seed %d, %s: another history from the same seed", seed, m)
			}
		}
		var updates int
		for _, d := range h.Deliveries(Full) {
			if d.Event == health.EventAccountsUpdated {
				updates++
			}
		}
		if dual := h.Deliveries(Dual); len(dual) != len(h.Deliveries(Full))+updates {
			t.Fatalf("seed %d: %d dual deliveries for %d and %d updates", seed, len(dual), len(h.Deliveries(Full)), updates)
		}
		full, lean, bare := h.Deliveries(Full), h.Deliveries(Lean), h.Deliveries(Bare)
		if len(full) != len(lean) || len(full) != len(bare) {
			t.Fatalf("seed %d: %d, %d and %d deliveries", seed, len(full), len(lean), len(bare))
		}
		for i, d := range full {
			l, b := lean[i], bare[i]
			switch {
			case d.Decoded.AccountID != h.Account || l.Decoded.AccountID != h.Account || b.Decoded.AccountID != h.Account:
				t.Fatalf("seed %d, delivery %d: not the history's account", seed, i)
			case d.Decoded.Snapshot == nil || l.Decoded.Snapshot != nil || b.Decoded.Snapshot != nil:
				t.Fatalf("seed %d, delivery %d: only full deliveries carry the object", seed, i)
			case l.Event == health.EventAccountsFailed && l.Decoded.ErrorCode == "":
				t.Fatalf("seed %d, delivery %d: a lean failure without its code", seed, i)
			case b.Decoded.ErrorCode != "":
				t.Fatalf("seed %d, delivery %d: a bare delivery with a code", seed, i)
			case i > 0 && d.At.Before(full[i-1].At):
				t.Fatalf("seed %d, delivery %d: sent before the one before it", seed, i)
			case d.At != l.At || d.Step != l.Step || d.Event != b.Event:
				t.Fatalf("seed %d, delivery %d: the twins differ", seed, i)
			}
		}
	}
}

// A re-authentication's start is an accounts.updated whose object is
// connecting, hours after the failure it follows.
func TestReauth(t *testing.T) {
	for seed := int64(1); seed <= 500; seed++ {
		h := Generate(seed, 14)
		ds := h.Deliveries(Full)
		for i, d := range ds {
			if h.Steps[d.Step].Op != OpReauth {
				continue
			}
			if d.Event != health.EventAccountsUpdated || d.Decoded.Snapshot.ConnectionStatus != health.ConnectionConnecting {
				t.Fatalf("seed %d: re-authentication sent as %s, %q", seed, d.Event, d.Decoded.Snapshot.ConnectionStatus)
			}
			if gap := d.At.Sub(ds[i-1].At); gap < time.Hour {
				t.Fatalf("seed %d: re-authentication %v after the step before", seed, gap)
			}
			return
		}
	}
	t.Fatal("no history re-authenticates")
}

// Every arrangement delivers each delivery once, and each copy once after
// its original.
func TestArrangements(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for seed := int64(1); seed <= 200; seed++ {
		h := Generate(seed, 14)
		ds := h.Deliveries(Full)
		for _, a := range []Arrangement{InOrder(ds), PairSwapped(h, ds), Delayed(ds, r), Displaced(ds, r), Doubled(ds), DoubledLate(ds, r), DoubledWide(ds, r)} {
			originals, copies := map[int]int{}, map[int]int{}
			for _, arr := range a.Arrivals {
				if arr.Copy {
					if originals[arr.Index] != 1 {
						t.Fatalf("seed %d, %s: copy of %d before its original", seed, a.Name, arr.Index)
					}
					copies[arr.Index]++
				} else {
					originals[arr.Index]++
				}
			}
			for i := range ds {
				doubled := len(a.Arrivals) == 2*len(ds)
				if originals[i] != 1 || (doubled && copies[i] != 1) || (!doubled && copies[i] != 0) {
					t.Fatalf("seed %d, %s: delivery %d arrives %d times and %d copies", seed, a.Name, i, originals[i], copies[i])
				}
			}
		}
	}
}

// The model store counts a byte-identical delivery with the object as a
// duplicate however late, and applies everything else through the rules.
func TestStore(t *testing.T) {
	h := Generate(3, 14)
	d := h.Deliveries(Full)[0]
	s := NewStore(store.DefaultRedeliveryWindow)
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if res, err := s.Commit(d.Body, at); err != nil || res.Outcome != health.OutcomeApplied {
		t.Fatalf("first: %v %v", res.Outcome, err)
	}
	if res, err := s.Commit(d.Body, at.Add(24*time.Hour)); err != nil || res.Outcome != health.OutcomeDuplicate {
		t.Fatalf("again a day later: %v %v", res.Outcome, err)
	}
	if _, err := s.Commit([]byte(`[]`), at); err == nil {
		t.Fatal("a body that is no delivery was committed")
	}
}
