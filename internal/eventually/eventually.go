// Package eventually is how tests wait for a state that announces itself
// nowhere they can listen: a listener coming up, a counter on /metrics, a
// row another process writes. Where the code under test can signal (a
// channel, a log line, a stream), tests wait on that instead.
package eventually

import (
	"testing"
	"time"
)

// firstPoll and lastPoll bound the interval between checks: short at first,
// since most states arrive within milliseconds, then backing off so that a
// slow machine is not kept busier by the waiting.
const (
	firstPoll = time.Millisecond
	lastPoll  = 50 * time.Millisecond
)

// Until checks cond until it reports done, and fails t if timeout passes
// first, or the test ends, naming what it waited for and what cond last
// saw.
func Until(t testing.TB, timeout time.Duration, what string, cond func() (done bool, last string)) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for poll := firstPoll; ; poll = min(2*poll, lastPoll) {
		done, last := cond()
		if done {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("%s: not within %s; last seen: %s", what, timeout, last)
		case <-t.Context().Done():
			t.Fatalf("%s: the test ended first; last seen: %s", what, last)
		case <-time.After(poll):
		}
	}
}
