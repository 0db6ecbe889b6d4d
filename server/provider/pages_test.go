package provider

import (
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/accounthealth/accounthealth/server/provider/providerfake"
)

// fakeProvider serves a fake of the provider behind a test server and
// returns it with a fast client of it.
func fakeProvider(t *testing.T, opts providerfake.Options, edit ...func(*Config)) (*providerfake.Fake, *Client, string) {
	t.Helper()
	opts.KeyID, opts.KeySecret = testKeyID, testSecret
	f := providerfake.New(opts)
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(f.Close) // first: releases held requests so srv.Close returns
	return f, newClient(t, srv.URL, edit...), srv.URL
}

func addAccounts(t *testing.T, f *providerfake.Fake, user string, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		s, err := f.AddAccount(providerfake.AccountSeed{User: user})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	return ids
}

func TestAccountPagesResumeFromAStoredCursor(t *testing.T) {
	f, c, _ := fakeProvider(t, providerfake.Options{})
	want := addAccounts(t, f, "u1", 4)
	addAccounts(t, f, "u2", 2)
	want = append(want, addAccounts(t, f, "u1", 3)...)

	params := ListAccountsParams{User: "u1", Limit: 3}
	var got []string
	var stored string // what a backfill persists after each page
	for p, err := range c.AccountPages(t.Context(), params) {
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range p.Accounts {
			got = append(got, a.ID)
		}
		stored = p.NextCursor
		break // the process stops here
	}
	// Accounts added while the walk is stopped come after the others.
	want = append(want, addAccounts(t, f, "u1", 1)...)

	params.Cursor = stored
	pages := 1
	for p, err := range c.AccountPages(t.Context(), params) {
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, a := range p.Accounts {
			got = append(got, a.ID)
		}
		stored = p.NextCursor
	}
	if !slices.Equal(got, want) || pages != 3 || stored != "" {
		t.Errorf("walked %v in %d pages, last cursor %q; want %v in 3 pages, then none", got, pages, stored, want)
	}
}

func TestAccountPagesEndAtTheFirstError(t *testing.T) {
	f, c, url := fakeProvider(t, providerfake.Options{})
	addAccounts(t, f, "u1", 3)
	pages, errs := 0, 0
	for _, err := range c.AccountPages(t.Context(), ListAccountsParams{Limit: 1}) {
		if err != nil {
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("err %v; want ErrUnavailable", err)
			}
			errs++
			continue
		}
		if pages++; pages == 2 {
			if err := f.AddFault(providerfake.Fault{Route: "GET /v2/accounts", Status: 503}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if pages != 2 || errs != 1 {
		t.Errorf("%d pages, %d errors; want 2 pages, then one error", pages, errs)
	}

	f.ClearFaults()
	wrong := newClient(t, url, func(c *Config) { c.KeySecret = "wrong-secret-5Tp" })
	n := 0
	for _, err := range wrong.AccountPages(t.Context(), ListAccountsParams{}) {
		if n++; !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), "wrong-secret-5Tp") {
			t.Errorf("wrong key: %v; want ErrUnauthorized without the secret", err)
		}
	}
	if n != 1 {
		t.Errorf("wrong key: %d yields; want the error once", n)
	}
}

func TestAccountPagesWaitOutRateLimits(t *testing.T) {
	f, c, url := fakeProvider(t, providerfake.Options{})
	want := addAccounts(t, f, "", 5)
	if err := f.AddFault(providerfake.Fault{Route: "GET /v2/accounts", Status: 429, RetryAfter: "0", Times: 2}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for p, err := range c.AccountPages(t.Context(), ListAccountsParams{Limit: MaxPageSize}) {
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range p.Accounts {
			got = append(got, a.ID)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
	// Both 429s went to the walk: a call that may not retry now succeeds.
	once := newClient(t, url, func(c *Config) { c.MaxRetries = -1 })
	if _, err := once.ListAccounts(t.Context(), ListAccountsParams{}); err != nil {
		t.Errorf("after the walk: %v; want the faults used up", err)
	}
}

func TestWalkRefusesALoopingProvider(t *testing.T) {
	srv, rec := scripted(t,
		answer{status: 200, body: `{"next":"https://h/v2/accounts?cursor=a","results":[{"id":"a1"}]}`},
		answer{status: 200, body: `{"next":"https://h/v2/accounts?cursor=a","results":[{"id":"a2"}]}`},
	)
	var got []string
	var last error
	for p, err := range newClient(t, srv.URL).AccountPages(t.Context(), ListAccountsParams{}) {
		for _, a := range p.Accounts {
			got = append(got, a.ID)
		}
		last = err
	}
	if !slices.Equal(got, []string{"a1"}) || last == nil || !strings.Contains(last.Error(), "repeats cursor") || rec.count() != 2 {
		t.Errorf("got %v, %v after %d requests; want a1, then an error instead of the page naming cursor a again", got, last, rec.count())
	}

	// A walk resumed at cursor a meets a at once.
	for _, err := range newClient(t, srv.URL).AccountPages(t.Context(), ListAccountsParams{Cursor: "a"}) {
		if err == nil {
			t.Error("a page whose next cursor is the one it was fetched with was yielded")
		}
	}
}

func TestWalkStopsWhenTheCallerDoes(t *testing.T) {
	srv, rec := scripted(t, answer{status: 200, body: `{"next":"https://h/v2/accounts?cursor=more","results":[{"id":"a1"}]}`})
	for range newClient(t, srv.URL).AccountPages(t.Context(), ListAccountsParams{}) {
		break
	}
	if rec.count() != 1 {
		t.Errorf("%d requests after the caller stopped at the first page", rec.count())
	}
}
