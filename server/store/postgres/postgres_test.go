package postgres

import (
	"testing"

	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
	"github.com/accounthealth/accounthealth/server/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openURL(t, pgtest.URL(t)) })
}

func BenchmarkIngest(b *testing.B) {
	storetest.BenchmarkIngest(b, func(b *testing.B) store.Store { return openURL(b, pgtest.URL(b)) })
}

func BenchmarkReads(b *testing.B) {
	storetest.BenchmarkReads(b, func(b *testing.B) store.Store { return openURL(b, pgtest.URL(b)) })
}

// openURL opens the store at databaseURL and closes it when the test ends,
// unless the test closed it first.
func openURL(t testing.TB, databaseURL string) *Store {
	t.Helper()
	s, err := Open(t.Context(), databaseURL, store.Options{})
	return storetest.Opened(t, s, err)
}
