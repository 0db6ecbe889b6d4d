package service_test

import (
	"net/http"
	"testing"

	"github.com/accounthealth/accounthealth/server/service"
)

// Profiles are served only when asked for, and only to authenticated
// internal callers.
func TestPprofOnlyWhenAskedAndAuthenticated(t *testing.T) {
	ts, tokens := tokensFor(t, "profiler")
	off := start(t, nil, func(c *service.Config) { c.APITokens = ts })
	if code, _ := restGet(t, http.DefaultClient, "http://"+off.addrs.API+"/debug/pprof/heap", tokens["profiler"]); code != http.StatusNotFound {
		t.Errorf("without --pprof: /debug/pprof/heap answered %d, want 404", code)
	}

	on := start(t, nil, func(c *service.Config) { c.APITokens = ts; c.Pprof = true })
	for _, path := range []string{"/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
		url := "http://" + on.addrs.API + path
		if code, _ := restGet(t, http.DefaultClient, url, ""); code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d, want 401", path, code)
		}
		if code, body := restGet(t, http.DefaultClient, url, tokens["profiler"]); code != http.StatusOK || len(body) == 0 {
			t.Errorf("%s with a token: %d, %d bytes", path, code, len(body))
		}
	}
	if code, _ := restGet(t, http.DefaultClient, "http://"+on.addrs.Webhook+"/debug/pprof/heap", tokens["profiler"]); code != http.StatusNotFound {
		t.Errorf("the webhook listener serves /debug/pprof/heap: %d, want 404", code)
	}
}
