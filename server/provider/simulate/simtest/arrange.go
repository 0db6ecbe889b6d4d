package simtest

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"time"
)

// Arrival is one delivery as it reaches the service.
type Arrival struct {
	Index int  // into the history's deliveries, in the provider's order
	Copy  bool // a second send of the same bytes
}

// Arrangement is the order in which deliveries arrive.
type Arrangement struct {
	Name     string
	Arrivals []Arrival
	// Exact: the arrangement only swaps the two deliveries of one attempt
	// or repeats deliveries, so the outcome must equal the in-order one.
	// Otherwise it is wider disorder, with weaker promises.
	Exact bool
}

// The retry the provider is said to make: about 30 s after a failed
// attempt (docs/provider.md#deliveries), plus our answer's time and jitter.
const (
	retryAfter  = 30 * time.Second
	retryJitter = 15 * time.Second
)

// InOrder: every delivery once, as sent.
func InOrder(ds []Delivery) Arrangement {
	a := Arrangement{Name: "in order", Exact: true}
	for i := range ds {
		a.Arrivals = append(a.Arrivals, Arrival{Index: i})
	}
	return a
}

// PairSwapped: the deliveries of every attempt (accounts.failed or
// accounts.connected, and the accounts.updated that goes with it) in the
// reverse order; the provider documents none.
func PairSwapped(h *History, ds []Delivery) Arrangement {
	a := InOrder(ds)
	a.Name = "pairs swapped"
	for i := 0; i < len(ds); {
		j := i + 1
		for j < len(ds) && ds[j].Step == ds[i].Step {
			j++
		}
		if op := h.Steps[ds[i].Step].Op; op == OpFail || op == OpConnect {
			slices.Reverse(a.Arrivals[i:j])
		}
		i = j
	}
	return a
}

// Delayed: about a third of the deliveries arrive late, as the provider's
// retry after a lost answer would bring them: 30-45 s after they were sent,
// so past the deliveries the account caused in that span (an attempt's
// pair, a login and its scan) but not past later attempts, which come
// minutes apart. r decides which; one draw per delivery, so a prefix of a
// history gets the same decisions.
func Delayed(ds []Delivery, r *rand.Rand) Arrangement {
	type keyed struct {
		at time.Time
		a  Arrival
	}
	ks := make([]keyed, len(ds))
	for i, d := range ds {
		at := d.At
		if p := r.Float64(); p < 1.0/3 {
			at = at.Add(retryAfter + time.Duration(p*3*float64(retryJitter)))
		}
		ks[i] = keyed{at, Arrival{Index: i}}
	}
	slices.SortStableFunc(ks, func(x, y keyed) int { return x.at.Compare(y.at) })
	a := Arrangement{Name: "delayed"}
	for _, k := range ks {
		a.Arrivals = append(a.Arrivals, k.a)
	}
	return a
}

// Displaced: some deliveries arrive after the next one to three deliveries
// whatever their times: disorder wider than any the provider is known to
// cause, for the promises that hold whatever the order.
func Displaced(ds []Delivery, r *rand.Rand) Arrangement {
	a := InOrder(ds)
	a.Name = "displaced"
	for i := 0; i < len(a.Arrivals); i++ {
		p, k := r.Float64(), 1+r.IntN(3)
		if p < 0.25 && i+k < len(a.Arrivals) {
			moved := a.Arrivals[i]
			copy(a.Arrivals[i:], a.Arrivals[i+1:i+k+1])
			a.Arrivals[i+k] = moved
			i += k
		}
	}
	return a
}

// Doubled: every delivery sent twice in a row.
func Doubled(ds []Delivery) Arrangement {
	a := Arrangement{Name: "doubled at once", Exact: true}
	for i := range ds {
		a.Arrivals = append(a.Arrivals, Arrival{Index: i}, Arrival{Index: i, Copy: true})
	}
	return a
}

// DoubledLate: every delivery sent twice, the copy 30-45 s after the
// original, as the provider's retry comes: past what the account sent in
// that span. One draw per delivery.
func DoubledLate(ds []Delivery, r *rand.Rand) Arrangement {
	type keyed struct {
		at time.Time
		a  Arrival
	}
	var ks []keyed
	for i, d := range ds {
		ks = append(ks, keyed{d.At, Arrival{Index: i}},
			keyed{d.At.Add(retryAfter + time.Duration(r.Float64()*float64(retryJitter))), Arrival{Index: i, Copy: true}})
	}
	slices.SortStableFunc(ks, func(x, y keyed) int {
		// Originals before copies at the same time: a copy never overtakes
		// its original.
		return cmp.Or(x.at.Compare(y.at), cmp.Compare(boolInt(x.a.Copy), boolInt(y.a.Copy)))
	})
	a := Arrangement{Name: "doubled late", Exact: true}
	for _, k := range ks {
		a.Arrivals = append(a.Arrivals, k.a)
	}
	return a
}

// DoubledWide: every delivery sent twice, the copy after up to three more
// deliveries whatever their times. Only for deliveries that carry the account
// object: a lean copy that far behind is a new fact by the rule that lean
// deliveries apply in arrival order. One draw per delivery.
func DoubledWide(ds []Delivery, r *rand.Rand) Arrangement {
	type keyed struct {
		pos float64
		a   Arrival
	}
	var ks []keyed
	for i := range ds {
		ks = append(ks, keyed{float64(i), Arrival{Index: i}}, keyed{float64(i+1+r.IntN(4)) - 0.5, Arrival{Index: i, Copy: true}})
	}
	slices.SortStableFunc(ks, func(x, y keyed) int { return cmp.Compare(x.pos, y.pos) })
	a := Arrangement{Name: "doubled wide", Exact: true}
	for _, k := range ks {
		a.Arrivals = append(a.Arrivals, k.a)
	}
	return a
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
