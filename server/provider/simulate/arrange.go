package simulate

import "math/rand/v2"

// arrange returns ds as an unreliable network would deliver them: first a
// fraction reorder of the adjacent pairs of one account swapped (a pair is
// swapped at most once, so the newer snapshot arrives first and the server
// must keep it), then a fraction duplicates of deliveries followed by a
// byte-identical copy (the provider's redelivery after a lost answer).
// Deliveries of different accounts are never swapped: their order does not
// matter to the server. The same r state gives the same arrangement.
func arrange(ds []Delivery, duplicates, reorder float64, r *rand.Rand) []Delivery {
	if reorder > 0 {
		ds = append([]Delivery(nil), ds...)
		for i := 0; i+1 < len(ds); i++ {
			if ds[i].Account == ds[i+1].Account && r.Float64() < reorder {
				ds[i], ds[i+1] = ds[i+1], ds[i]
				ds[i].Reordered, ds[i+1].Reordered = true, true
				i++ // the next pair starts after this one
			}
		}
	}
	if duplicates <= 0 {
		return ds
	}
	out := make([]Delivery, 0, len(ds)+int(float64(len(ds))*duplicates)+1)
	for _, d := range ds {
		out = append(out, d)
		if r.Float64() < duplicates {
			d.Duplicate = true
			out = append(out, d)
		}
	}
	return out
}
