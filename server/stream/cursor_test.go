package stream

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/accounthealth/accounthealth/server/store"
)

// TestCursorVectors pins the format: cursors handed out by one build must
// decode in the next. The vectors were computed by an independent encoder.
func TestCursorVectors(t *testing.T) {
	for _, c := range []struct {
		seq    int64
		cursor string
	}{
		{0, "AQBYwiO-"},
		{1, "AQEvxRMo"},
		{300, "AawCEj8h7A"},
		{math.MaxInt64, "Af__________f-zZjFY"},
	} {
		if got := EncodeCursor(c.seq); got != c.cursor {
			t.Errorf("EncodeCursor(%d) = %q, want %q", c.seq, got, c.cursor)
		}
		if got, err := DecodeCursor(c.cursor); err != nil || got != c.seq {
			t.Errorf("DecodeCursor(%q) = %d, %v; want %d", c.cursor, got, err, c.seq)
		}
	}
}

func TestDecodeCursorRejects(t *testing.T) {
	valid := EncodeCursor(300)
	for _, c := range []string{
		"",
		"not a cursor",
		valid[:len(valid)-1],         // truncated
		valid + "A",                  // extended
		strings.ToUpper(valid),       // mistyped
		valid[:3] + "\n" + valid[3:], // line break: the decoder would skip it
		"AgH" + valid[3:],            // another version
		EncodeCursor(300) + EncodeCursor(300)[1:], // garbage after the checksum
	} {
		_, err := DecodeCursor(c)
		if !errors.Is(err, ErrInvalidCursor) || !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("DecodeCursor(%q) = %v, want ErrInvalidCursor wrapping store.ErrInvalidArgument", c, err)
		}
	}
}

// FuzzDecodeCursor: whatever it is given, DecodeCursor either rejects it or
// returns the one position whose cursor it is.
func FuzzDecodeCursor(f *testing.F) {
	for _, seq := range []int64{0, 1, 300, math.MaxInt64} {
		f.Add(EncodeCursor(seq))
	}
	f.Add("AQBYwiO")
	f.Fuzz(func(t *testing.T, cursor string) {
		seq, err := DecodeCursor(cursor)
		if err != nil {
			if !errors.Is(err, ErrInvalidCursor) {
				t.Fatalf("DecodeCursor(%q): %v does not wrap ErrInvalidCursor", cursor, err)
			}
			return
		}
		if seq < 0 || EncodeCursor(seq) != cursor {
			t.Fatalf("DecodeCursor(%q) = %d, which encodes as %q", cursor, seq, EncodeCursor(seq))
		}
	})
}
