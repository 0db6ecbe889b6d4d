package providerfake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Fault makes matching API requests misbehave, to see how a client copes.
// Faults apply to the /v2 routes before authentication, like trouble in
// front of the provider; the first added that matches a request applies.
// Its JSON form, for POST /_fake/faults:
//
//	{"route": "DELETE /v2/accounts/{id}", "status": 429, "retry_after": "2", "times": 3}
//	{"route": "*", "latency": "1.5s"}
//	{"hang": true, "times": 1}
type Fault struct {
	// Route is a pattern the fake serves, with or without its method
	// ("GET /v2/accounts/{id}", "/v2/accounts/{id}"); empty or "*": all.
	Route string `json:"route"`
	// Latency delays the answer, or the Status.
	Latency time.Duration `json:"-"` // JSON: "latency", a Go duration
	// Status, when set (4xx or 5xx), is answered with a JSON error body
	// instead of serving the request.
	Status int `json:"status"`
	// RetryAfter is sent as the Retry-After header with Status: seconds or
	// an HTTP date.
	RetryAfter string `json:"retry_after"`
	// Hang holds the request without an answer until the client gives up
	// or the fake closes, then drops the connection.
	Hang bool `json:"hang"`
	// Times is how many requests the fault applies to; 0: until cleared.
	Times int `json:"times"`
}

// UnmarshalJSON reads the JSON form, refusing unknown fields so that a
// typo in a hand-written fault is an error rather than a fault that never
// fires.
func (x *Fault) UnmarshalJSON(b []byte) error {
	type fields Fault // without methods, so this does not recurse
	aux := struct {
		*fields
		Latency string `json:"latency"`
	}{fields: (*fields)(x)}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	if aux.Latency != "" {
		d, err := time.ParseDuration(aux.Latency)
		if err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		x.Latency = d
	}
	return nil
}

// MarshalJSON writes the JSON form, so that a Go program can post a Fault
// to a fake running elsewhere.
func (x Fault) MarshalJSON() ([]byte, error) {
	type fields Fault
	aux := struct {
		fields
		Latency string `json:"latency,omitempty"`
	}{fields: fields(x)}
	if x.Latency != 0 {
		aux.Latency = x.Latency.String()
	}
	return json.Marshal(aux)
}

func (x Fault) validate(routes map[string]bool) error {
	switch {
	case x.Route != "" && x.Route != "*" && !routes[x.Route]:
		return fmt.Errorf("unknown route %q; use \"*\" or one of %q", x.Route, slices.Sorted(maps.Keys(routes)))
	case x.Times < 0 || x.Latency < 0:
		return errors.New("times and latency must not be negative")
	case x.Hang && (x.Status != 0 || x.Latency != 0 || x.RetryAfter != ""):
		return errors.New("hang excludes status, latency and retry_after")
	case !x.Hang && x.Status == 0 && x.Latency == 0:
		return errors.New("nothing to inject: set status, latency or hang")
	case x.Status != 0 && (x.Status < 400 || x.Status > 599):
		return fmt.Errorf("status %d: want 4xx or 5xx", x.Status)
	case x.RetryAfter != "" && x.Status == 0:
		return errors.New("retry_after needs a status")
	}
	return nil
}

func (x Fault) matches(pattern string) bool {
	if x.Route == "" || x.Route == "*" || x.Route == pattern {
		return true
	}
	_, path, _ := strings.Cut(pattern, " ")
	return x.Route == path
}

// AddFault adds a fault after the existing ones.
func (f *Fake) AddFault(x Fault) error {
	if err := x.validate(f.faultRoutes); err != nil {
		return fmt.Errorf("providerfake: fault: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, &x)
	return nil
}

// ClearFaults removes every fault.
func (f *Fake) ClearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

// takeFault returns the fault for a request to pattern, if any, and
// counts it against its Times.
func (f *Fake) takeFault(pattern string) (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.faults {
		if !x.matches(pattern) {
			continue
		}
		taken := *x
		if x.Times > 0 {
			if x.Times--; x.Times == 0 {
				f.faults = slices.Delete(f.faults, i, i+1)
			}
		}
		return taken, true
	}
	return Fault{}, false
}

// faulty applies the faults to an API route.
func (f *Fake) faulty(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x, ok := f.takeFault(r.Pattern)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		f.log.Info("fault injected", "route", r.Pattern, "status", x.Status, "latency", x.Latency, "hang", x.Hang)
		wait := x.Latency
		if x.Hang {
			wait = -1
		}
		if !f.pause(r.Context(), wait) {
			// The client left or the fake closed: drop the connection
			// rather than answer.
			panic(http.ErrAbortHandler)
		}
		if x.Status == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if x.RetryAfter != "" {
			w.Header().Set("Retry-After", x.RetryAfter)
		}
		writeDetail(w, x.Status, http.StatusText(x.Status)+" (injected by providerfake).")
	})
}

// pause waits d (forever when d < 0) unless ctx or the fake ends first,
// and reports whether the whole wait passed.
func (f *Fake) pause(ctx context.Context, d time.Duration) bool {
	var elapsed <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		elapsed = t.C
	}
	select {
	case <-elapsed:
		return true
	case <-ctx.Done():
	case <-f.ctx.Done():
	}
	return false
}
