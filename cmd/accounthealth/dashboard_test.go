package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/rebuild"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/sqlite"
	"github.com/accounthealth/accounthealth/server/store/storetest"
)

// The dashboard's tests drive a real headless Chromium against the built
// binary. .ci/chromium installs the browser and .ci/test passes its path
// in ACCOUNTHEALTH_CHROMIUM; without one they skip, and under CI=true fail.

// chromiumPath finds the browser.
func chromiumPath(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("ACCOUNTHEALTH_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium: run bash .ci/chromium (it installs Debian's chromium) or set ACCOUNTHEALTH_CHROMIUM")
	}
	t.Skip("no Chromium (bash .ci/chromium installs it; ACCOUNTHEALTH_CHROMIUM names it)")
	return ""
}

// startBrowser starts one browser for a test's subtests, with a fresh
// profile, closed when the test ends.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath(t)), chromedp.Headless, chromedp.NoSandbox, chromedp.NoFirstRun,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1366, 768))
	t.Cleanup(cancel)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(cancelCtx)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// openTab opens a tab in a browser context of its own (its own cookies).
// When the test ends, any console error or uncaught exception fails it,
// but for messages containing one of the expected strings (a refused
// request the test makes on purpose).
func openTab(t *testing.T, browser context.Context, expected ...string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	var (
		mu   sync.Mutex
		errs []string
	)
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				errs = append(errs, m.String())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		for _, e := range errs {
			if !containsAny(e, expected) {
				t.Errorf("browser console: %s", e)
			}
		}
	})
	return ctx
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// browse runs browser actions, failing the test with what it was doing.
func browse(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitJS waits until the JavaScript expression is truthy (it re-evaluates
// it on every frame) and returns its value. A page that reloads meanwhile
// (a login does) ends one wait; the next one asks the new page.
func waitJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	for range 3 {
		v, err := chromedp.Run(ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(20*time.Second)))
		if err == nil {
			return v
		}
		if !containsAny(err.Error(), []string{"navigated or closed", "context was destroyed", "Cannot find context"}) {
			t.Fatalf("waiting for %s: %v", expr, err)
		}
	}
	t.Fatalf("waiting for %s: the page kept navigating", expr)
	panic("unreachable")
}

// setField sets the value of the form field sel selects, as typing would
// leave it (SetValue refuses an empty value).
func setField(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf("document.querySelector(%q).value = %q, undefined", sel, value))
}

func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// screenshots writes the page at a laptop's and a phone's width into
// $ACCOUNTHEALTH_SCREENSHOTS as name-laptop.png and name-phone.png, when
// that is set, waiting for ready (a JavaScript condition) at each width.
func screenshots(t *testing.T, ctx context.Context, name, ready string) {
	t.Helper()
	dir := os.Getenv("ACCOUNTHEALTH_SCREENSHOTS")
	if dir == "" {
		return
	}
	for _, size := range []struct {
		device        string
		width, height int64
	}{{"laptop", 1366, 768}, {"phone", 390, 844}} {
		browse(t, ctx, "resize", chromedp.EmulateViewport(size.width, size.height))
		waitJS[bool](t, ctx, ready)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+"-"+size.device+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	browse(t, ctx, "resize", chromedp.EmulateViewport(1366, 768))
}

// seedHistory writes n accounts into a fresh SQLite store in dir through
// the store API, their deliveries spread over the last 30 days so that the
// chart has something to show: a quarter healthy, a quarter failed at
// login (never connected), half disconnected of which a third recovered.
func seedHistory(t testing.TB, dir string, n int) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Derived under the current rules, as serve would leave an empty
	// store, so that serve finds nothing to rebuild.
	if _, err := rebuild.Run(context.Background(), st, slog.New(slog.DiscardHandler), rebuild.Options{}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	codes := []string{"auth_required", "expired_credentials", "auth_required", "invalid_credentials"}
	var batch []storetest.Event
	flush := func() {
		if _, err := st.Ingest(context.Background(), storetest.Deliveries(batch...)); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range n {
		acct, user := fmt.Sprintf("seed-%07d", i), fmt.Sprintf("user-%06d", i/3)
		// Spread over 30 days, denser in the last day.
		age := time.Duration((i*7919)%(30*24*60)) * time.Minute
		if i%3 == 0 {
			age = time.Duration((i*7919)%(24*60)) * time.Minute
		}
		at := now.Add(-age)
		connected := func(at time.Time) storetest.Event {
			return storetest.Event{Event: health.EventAccountsUpdated, AccountID: acct, UserID: user, ReceivedAt: at,
				Resource: &storetest.Resource{Status: health.ConnectionConnected, UpdatedAt: at, ScannedAt: at, Employers: []string{"Acme"}}}
		}
		errored := func(code string, at time.Time) storetest.Event {
			return storetest.Event{Event: health.EventAccountsUpdated, AccountID: acct, UserID: user, ReceivedAt: at,
				Resource: &storetest.Resource{Status: health.ConnectionError, ErrorCode: code, ErrorMessage: "The connection needs the user: " + code + ".", UpdatedAt: at, ScannedAt: at}}
		}
		switch i % 4 {
		case 0:
			batch = append(batch, connected(at.Add(-time.Hour)))
		case 1:
			batch = append(batch, storetest.Event{Event: health.EventAccountsFailed, AccountID: acct, UserID: user, ReceivedAt: at,
				ErrorCode: "invalid_credentials", ErrorMessage: "The credentials were wrong.",
				Resource: &storetest.Resource{Status: health.ConnectionError, ErrorCode: "invalid_credentials", ErrorMessage: "The credentials were wrong.", UpdatedAt: at}})
		default:
			batch = append(batch, connected(at.Add(-48*time.Hour)), errored(codes[i%len(codes)], at))
			if i%3 == 0 && age > time.Hour {
				batch = append(batch, connected(at.Add(age/2)))
			}
		}
		if len(batch) >= 3000 {
			flush()
		}
	}
	flush()
}

// failedWithObject is accounts.failed carrying the account object, so that
// nothing fetches the account from the provider to confirm it.
func failedWithObject(account, user, code string) []byte {
	at := time.Now()
	return storetest.Event{Event: health.EventAccountsFailed, AccountID: account, UserID: user, ReceivedAt: at, ErrorCode: code, ErrorMessage: "The login failed.",
		Resource: &storetest.Resource{Status: health.ConnectionError, ErrorCode: code, ErrorMessage: "The login failed.", UpdatedAt: at}}.Delivery().Body
}
