package client

import (
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for n, ceiling := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		ceiling *= time.Millisecond
		for range 100 {
			if d := b.delay(n); d < ceiling/2 || d > ceiling {
				t.Fatalf("delay(%d) = %s, want within [%s, %s]", n, d, ceiling/2, ceiling)
			}
		}
	}
	if d := b.delay(10_000); d > b.Max {
		t.Errorf("delay after many failures %s > max %s", d, b.Max)
	}
}
