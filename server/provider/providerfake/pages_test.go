package providerfake_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/provider/providerfake"
)

func TestAccountPagesHoldUnderConcurrentAdds(t *testing.T) {
	e := start(t, providerfake.Options{})
	var before []string
	for range 6 {
		before = append(before, e.add(t, providerfake.AccountSeed{}).ID)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 30 {
			if _, err := e.fake.AddAccount(providerfake.AccountSeed{}); err != nil {
				t.Error(err)
			}
		}
	})
	var got []string
	for p, err := range e.client.AccountPages(t.Context(), provider.ListAccountsParams{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range p.Accounts {
			got = append(got, a.ID)
		}
	}
	wg.Wait()

	// Whatever the interleaving: every account there before the walk, once
	// and first; the rest in the order they were added.
	var order []string
	for _, a := range e.fake.Accounts() {
		order = append(order, a.ID)
	}
	if len(got) < len(before) || !slices.Equal(got[:len(before)], before) || !slices.Equal(got, order[:len(got)]) {
		t.Errorf("walked %v; want a prefix of %v", got, order)
	}
}
