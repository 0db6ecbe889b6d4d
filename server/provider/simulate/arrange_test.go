package simulate

import (
	"bytes"
	"slices"
	"testing"
)

// plays returns every scenario n times over.
func plays(t *testing.T, n int) []Delivery {
	t.Helper()
	g := NewGenerator(Options{Seed: 1, Start: start})
	var ds []Delivery
	for range n {
		all, err := g.Play(AllScenarios)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, all...)
	}
	return ds
}

func TestArrangeIsDeterministic(t *testing.T) {
	ds := plays(t, 1)
	a := arrange(ds, 0.3, 0.3, newRand(9))
	if !slices.EqualFunc(a, arrange(ds, 0.3, 0.3, newRand(9)), func(x, y Delivery) bool {
		return bytes.Equal(x.Body, y.Body) && x.Duplicate == y.Duplicate
	}) {
		t.Error("the same seed gave different arrangements")
	}
	if got := arrange(ds, 0, 0, newRand(9)); !slices.EqualFunc(got, ds, func(x, y Delivery) bool { return bytes.Equal(x.Body, y.Body) }) {
		t.Error("nothing asked, yet the deliveries changed")
	}
}

func TestArrangeDuplicates(t *testing.T) {
	ds := plays(t, 20)
	got := arrange(ds, 0.25, 0, newRand(5))
	copies := 0
	for i, d := range got {
		if !d.Duplicate {
			continue
		}
		copies++
		if i == 0 || got[i-1].Duplicate || !bytes.Equal(got[i-1].Body, d.Body) {
			t.Fatalf("delivery %d is marked a duplicate but does not repeat the one before", i)
		}
	}
	if len(got) != len(ds)+copies {
		t.Errorf("%d deliveries after adding %d copies to %d", len(got), copies, len(ds))
	}
	if frac := float64(copies) / float64(len(ds)); frac < 0.15 || frac > 0.35 {
		t.Errorf("%.2f of the deliveries duplicated, want about 0.25", frac)
	}
}

func TestArrangeReorder(t *testing.T) {
	ds := plays(t, 20)
	got := arrange(ds, 0, 0.5, newRand(5))
	if len(got) != len(ds) {
		t.Fatalf("%d deliveries, want %d", len(got), len(ds))
	}
	swapped, pairs := 0, 0
	for i := 0; i+1 < len(ds); i++ {
		if ds[i].Account == ds[i+1].Account {
			pairs++
		}
		if !bytes.Equal(got[i].Body, ds[i].Body) {
			// Only a swap with the same account's next delivery.
			if !bytes.Equal(got[i].Body, ds[i+1].Body) || !bytes.Equal(got[i+1].Body, ds[i].Body) || ds[i].Account != ds[i+1].Account {
				t.Fatalf("delivery %d moved other than by swapping with its neighbour of the same account", i)
			}
			if !got[i].Reordered || !got[i+1].Reordered {
				t.Errorf("swapped deliveries %d and %d are not marked", i, i+1)
			}
			swapped++
			i++
		}
	}
	// A swap takes two adjacent pairs out of play, so fewer than half swap.
	if swapped < pairs/5 || swapped > pairs/2 {
		t.Errorf("%d of %d adjacent pairs swapped", swapped, pairs)
	}
}
