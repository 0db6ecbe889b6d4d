package eventually_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/internal/eventually"
)

func TestUntilReturnsOnceDone(t *testing.T) {
	calls := 0
	eventually.Until(t, time.Minute, "the third call", func() (bool, string) {
		calls++
		return calls == 3, strconv.Itoa(calls)
	})
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}
}

// recorder keeps what Until reports instead of failing the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	panic(r) // Fatalf does not return; Until must not go on either
}

func (r *recorder) Helper() {}

func TestUntilFailsAtTheDeadline(t *testing.T) {
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != r {
				t.Fatalf("Until returned (recovered %v); want it to fail", p)
			}
		}()
		eventually.Until(r, 0, "never", func() (bool, string) { return false, "nothing" })
	}()
	if r.failed == "" {
		t.Error("Until did not report the timeout")
	}
}
