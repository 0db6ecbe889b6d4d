package store

import (
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
)

func TestIsRedelivery(t *testing.T) {
	orig := time.Date(2026, 10, 6, 8, 30, 51, 0, time.UTC)
	w := DefaultRedeliveryWindow
	for _, tc := range []struct {
		name     string
		snapshot bool
		at       time.Time
		window   time.Duration
		want     bool
	}{
		{"retry after 30s", false, orig.Add(30 * time.Second), w, true},
		{"at the window's end", false, orig.Add(w), w, true},
		{"past the window", false, orig.Add(w + time.Nanosecond), w, false},
		{"received before the original", false, orig.Add(-time.Minute), w, true},
		{"zero time", false, time.Time{}, w, false},
		{"negative window", false, orig, -w, false},
		{"snapshot, days later", true, orig.Add(72 * time.Hour), w, true},
		{"snapshot, negative window", true, orig.Add(time.Hour), -w, true},
	} {
		d := &health.Delivery{ReceivedAt: tc.at}
		if tc.snapshot {
			d.Snapshot = &health.Snapshot{}
		}
		if got := isRedelivery(d, orig, tc.window); got != tc.want {
			t.Errorf("%s: isRedelivery = %v, want %v", tc.name, got, tc.want)
		}
	}
}
