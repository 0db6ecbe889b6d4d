package notify

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultSchedule is when each attempt at a message is made, after the
// failure of the one before: at once, then over about a day (Standard
// Webhooks' and Svix's schedule).
var DefaultSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// MaxRetryAfter bounds how long a receiver's Retry-After may hold a
// message back: a larger one is taken as this.
const MaxRetryAfter = time.Hour

// ParseSchedule reads a schedule written as comma-separated durations
// ("0s,5s,5m"), the first the delay of the first attempt (usually 0).
func ParseSchedule(s string) ([]time.Duration, error) {
	var out []time.Duration
	for part := range strings.SplitSeq(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%q is not a duration of 0 or more (e.g. 0s,5s,5m)", part)
		}
		out = append(out, d)
	}
	return out, nil
}

// nextDelay returns how long to wait before the next attempt at a message
// that has failed retries times (counting the one just made), and false
// when the schedule is exhausted. retryAfter, the receiver's wish, wins
// over the schedule when set. The schedule's delays vary by up to a tenth
// either way, so that messages failed together do not retry together.
func nextDelay(schedule []time.Duration, retries int, retryAfter time.Duration) (time.Duration, bool) {
	if retries >= len(schedule) {
		return 0, false
	}
	if retryAfter > 0 {
		return min(retryAfter, MaxRetryAfter), true
	}
	d := schedule[retries]
	if d <= 0 {
		return 0, true
	}
	return d + time.Duration((rand.Float64()-0.5)*0.2*float64(d)), true
}

// retryAfter reads a 429's or 503's Retry-After (seconds or an HTTP
// date), 0 when absent or unreadable.
func retryAfter(resp *http.Response, now time.Time) time.Duration {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return 0
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(min(max(secs, 0), int64(MaxRetryAfter/time.Second))) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0)
	}
	return 0
}
