// Package jsonstruct turns stored JSON object text into the
// google.protobuf.Struct that responses carry it in, whatever the text holds.
//
// Intake accepts what encoding/json accepts, which is more than a Struct can
// hold: protojson refuses invalid UTF-8, lone UTF-16 surrogate escapes,
// duplicate keys and numbers beyond float64, and a reader's protobuf decoder
// refuses deep nesting. Servable finds such text, which is rare, in one scan
// that allocates nothing unless keys hold escapes, and re-encodes it; Struct
// serves any JSON object.
package jsonstruct

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// MaxDepth bounds the nesting of objects and arrays in servable text. Each
// level costs a reader's protobuf decoder up to three nested messages (a
// Value, a Struct and its map entry), and the runtimes other than Go's
// refuse more than 100 by default. The provider's deliveries nest 5 deep.
const MaxDepth = 32

// MaxGrowth bounds how much larger than its JSON text a Struct is on the
// wire: an array of one-digit numbers, 2 bytes a value as text, is 11 a
// value as a Struct (a tag, a length, and a tag and 8 bytes of double);
// nothing else grows as much. Whoever bounds a response's size by the JSON
// it carries needs it.
const MaxGrowth = 6

// Servable returns b when Struct converts it as it is, the common case.
// Otherwise it returns a re-encoding of b that converts, where:
//   - invalid UTF-8 and lone surrogate escapes are U+FFFD, as encoding/json
//     decodes them into strings;
//   - of a key repeated in an object, the last is kept, as encoding/json does;
//   - a number beyond float64 is a string holding its literal text;
//   - an object or array nested deeper than MaxDepth is a string holding
//     its JSON text;
//
// and the keys of every object are sorted. b must be JSON text; other bytes
// are returned as they are.
func Servable(b []byte) []byte {
	if servable(b) {
		return b
	}
	out, err := sanitize(b)
	if err != nil {
		return b
	}
	return out
}

// Struct converts JSON object text, through Servable; it is nil for empty b.
// It fails only when b is not a JSON object.
func Struct(b []byte) (*structpb.Struct, error) {
	if len(b) == 0 {
		return nil, nil
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(Servable(b), s); err != nil {
		return nil, err
	}
	return s, nil
}

// MaxIDBytes bounds an id. The provider's are UUIDs (36 bytes); 512 leaves
// room for any other form and keeps every index entry far below
// PostgreSQL's B-tree limit (about 2.7 KB), which a longer id fails on
// every attempt.
const MaxIDBytes = 512

// ID decodes lit, a JSON string literal (quotes included), as an
// identifier: exactly the text written, or an error saying why it is not.
// Other text is repaired (see Servable); an id is not, since a repaired id
// names a different thing, and two different bad ids can become one. So
// invalid UTF-8 and lone surrogate escapes, which encoding/json decodes as
// U+FFFD, are errors, and so is NUL, which PostgreSQL's text cannot hold.
// An id longer than MaxIDBytes is an error too: stored, it would fail the
// store's index on every attempt.
// lit must be a string as encoding/json delimits one (a json.RawMessage).
func ID(lit []byte) (string, error) {
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return "", err
	}
	if len(s) > MaxIDBytes {
		return "", fmt.Errorf("%d bytes long, over the %d an id may have", len(s), MaxIDBytes)
	}
	switch _, _, ok := scanString(lit, 0); {
	case !utf8.Valid(lit):
		return "", errors.New("not valid UTF-8 (an invalid byte sequence)")
	case !ok:
		return "", errors.New("not valid UTF-8 (a lone surrogate escape)")
	}
	if strings.ContainsRune(s, 0) {
		return "", errors.New(`contains NUL (\u0000)`)
	}
	return s, nil
}

// servable reports whether protojson takes b into a Struct as it is, and a
// reader's decoder the result. It expects valid JSON: when b is not, its
// answer does not matter, since protojson and sanitize refuse b anyway.
func servable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	var (
		keyBuf   [64][]byte
		startBuf [MaxDepth]int
		keys     = keyBuf[:0]   // the keys of the open objects, outermost first
		starts   = startBuf[:0] // where each open object's keys begin in keys
		depth    int
	)
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			starts = append(starts, len(keys))
			fallthrough
		case '[':
			if depth++; depth > MaxDepth {
				return false
			}
		case '}':
			if len(starts) == 0 {
				return false
			}
			start := starts[len(starts)-1]
			if hasDuplicate(keys[start:]) {
				return false
			}
			keys, starts, depth = keys[:start], starts[:len(starts)-1], depth-1
		case ']':
			depth--
		case '"':
			end, escaped, ok := scanString(b, i)
			if !ok {
				return false
			}
			if isKey(b[end+1:]) {
				key := b[i+1 : end]
				if escaped {
					// Keys are compared as protojson sees them, unescaped.
					var s string
					if json.Unmarshal(b[i:end+1], &s) != nil {
						return false
					}
					key = []byte(s)
				}
				keys = append(keys, key)
			}
			i = end
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			end := i + 1
			for end < len(b) && isNumberByte(b[end]) {
				end++
			}
			if !inRange(b[i:end]) {
				return false
			}
			i = end - 1
		}
	}
	return true
}

// scanString finds the closing quote of the string that opens at b[i], and
// whether the string has escapes. ok is false for a lone surrogate escape.
func scanString(b []byte, i int) (end int, escaped, ok bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return j, escaped, true
		case '\\':
			escaped = true
			if j+1 < len(b) && b[j+1] == 'u' {
				switch surrogate(b[j+2:]) {
				case low:
					return 0, false, false
				case high:
					// protojson takes a pair only, and as one rune.
					if len(b) < j+12 || b[j+6] != '\\' || b[j+7] != 'u' || surrogate(b[j+8:]) != low {
						return 0, false, false
					}
					j += 6
				}
				j += 4
			}
			j++
		}
	}
	return 0, false, false
}

type surrogateKind int

const (
	notSurrogate surrogateKind = iota
	high
	low
)

// surrogate classifies the four hex digits that start h (a \u escape's).
func surrogate(h []byte) surrogateKind {
	if len(h) < 4 || h[0]|0x20 != 'd' { // |0x20 lower-cases a letter
		return notSurrogate
	}
	switch h[1] | 0x20 {
	case '8', '9', 'a', 'b':
		return high
	case 'c', 'd', 'e', 'f':
		return low
	}
	return notSurrogate
}

// isKey reports whether the string just before rest is an object key.
func isKey(rest []byte) bool {
	for _, c := range rest {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return c == ':'
		}
	}
	return false
}

// hasDuplicate reports whether keys repeat one; it may reorder keys.
// Objects have a dozen keys or so: comparing each pair is cheaper than
// sorting them, which only many keys are worth.
func hasDuplicate(keys [][]byte) bool {
	if len(keys) > 16 {
		slices.SortFunc(keys, bytes.Compare)
		for i := 1; i < len(keys); i++ {
			if bytes.Equal(keys[i-1], keys[i]) {
				return true
			}
		}
		return false
	}
	for i, k := range keys {
		for _, earlier := range keys[:i] {
			if bytes.Equal(k, earlier) {
				return true
			}
		}
	}
	return false
}

func isNumberByte(c byte) bool {
	return '0' <= c && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// inRange reports whether the number literal n fits a float64. Without an
// exponent, fewer than 309 characters leave fewer than 309 integer digits:
// under 1e308, so only longer literals and exponents need parsing.
func inRange(n []byte) bool {
	if len(n) < 309 && bytes.IndexAny(n, "eE") < 0 {
		return true
	}
	_, err := strconv.ParseFloat(string(n), 64)
	return err == nil
}

// sanitize re-encodes the JSON text b as Servable describes.
func sanitize(b []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // numbers keep their literal text
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("jsonstruct: more after the JSON value")
	}
	return encode(servableValue(v, 1))
}

// servableValue replaces what Struct cannot hold in v, a decoded value at
// the given nesting depth.
func servableValue(v any, depth int) any {
	switch v := v.(type) {
	case json.Number:
		if !inRange([]byte(v)) {
			return string(v)
		}
	case map[string]any:
		if depth > MaxDepth {
			return text(v)
		}
		for k, e := range v {
			v[k] = servableValue(e, depth+1)
		}
	case []any:
		if depth > MaxDepth {
			return text(v)
		}
		for i, e := range v {
			v[i] = servableValue(e, depth+1)
		}
	}
	return v
}

// text is the JSON text of v, a decoded value, which always encodes.
func text(v any) string {
	b, _ := encode(v)
	return string(b)
}

// encode is json.Marshal without the escaping of <, > and & for HTML.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
