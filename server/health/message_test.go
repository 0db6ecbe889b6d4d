package health

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestApplyCapsMessage: a record and its transition keep at most
// MaxMessageBytes of the message, cut on a rune boundary and marked; a
// message at the cap is kept whole, wherever the delivery carries it.
func TestApplyCapsMessage(t *testing.T) {
	// "é" is two bytes: a cut at an odd byte count would split one.
	long := "x" + strings.Repeat("é", MaxMessageBytes)
	atCap := strings.Repeat("m", MaxMessageBytes)
	inData := func(msg string) Delivery {
		d := failed(2, "invalid_credentials")
		d.ErrorMessage = msg
		return d
	}
	inResource := func(msg string) Delivery {
		d := withResource(event(EventAccountsUpdated, 2), ConnectionError, "auth_required", 2, true)
		d.Snapshot.ConnectionErrorMessage, d.ErrorMessage = msg, msg
		return d
	}
	for _, tc := range []struct {
		name     string
		d        Delivery
		msg      string
		wantKept string // the message's part kept
		wantCut  bool
	}{
		{"data message over the cap", inData(long), long, long[:MaxMessageBytes-1], true},
		{"resource message over the cap", inResource(long), long, long[:MaxMessageBytes-1], true},
		{"data message at the cap", inData(atCap), atCap, atCap, false},
		{"resource message at the cap", inResource(atCap), atCap, atCap, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := replay(t, Record{}, connectedOnce...)
			res := Apply(rec, tc.d)
			checkInvariants(t, rec, tc.d, res)
			got := res.Record.ErrorMessage
			if res.Transition == nil || res.Transition.ErrorMessage != got {
				t.Fatalf("transition %+v, want one carrying the record's message", res.Transition)
			}
			if !utf8.ValidString(got) || !strings.HasPrefix(got, tc.wantKept) {
				t.Errorf("message (%d bytes) does not start with the %d bytes it keeps, or is not valid UTF-8", len(got), len(tc.wantKept))
			}
			marker := got[len(tc.wantKept):]
			switch {
			case !tc.wantCut && marker != "":
				t.Errorf("message at the cap gained %q", marker)
			case tc.wantCut && !strings.Contains(marker, "cut at 4095 of 8193 bytes"):
				t.Errorf("cut message ends %q, want a marker naming the cut", marker)
			}
			// A later lean delivery of the same code keeps the cut message.
			again := Apply(res.Record, failed(3, res.Record.ErrorCode))
			if lean := again.Record.ErrorMessage; lean != got {
				t.Errorf("lean redelivery of the code: message %d bytes, want the kept %d", len(lean), len(got))
			}
		})
	}
}
