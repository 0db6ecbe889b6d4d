package accounthealth

import (
	"math"
	"testing"
)

// TestMaxResponseBytesFitsGRPC: every cap serve takes implies responses
// gRPC can frame.
func TestMaxResponseBytesFitsGRPC(t *testing.T) {
	if n := MaxResponseBytes(MaxBodyBytesLimit); n > math.MaxInt32 {
		t.Errorf("MaxResponseBytes(MaxBodyBytesLimit) = %d, above gRPC's largest message (%d)", n, math.MaxInt32)
	}
}
