package jsonstruct

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// poison is JSON that encoding/json takes and protojson, or a reader's
// protobuf decoder, does not; want is its servable form.
var poison = []struct{ name, in, want string }{
	{"lone low surrogate", `{"employer":"Caf\udce9"}`, `{"employer":"Caf` + "\uFFFD" + `"}`},
	{"lone high surrogate", `{"a":"\ud83d!"}`, `{"a":"` + "\uFFFD" + `!"}`},
	{"reversed pair", `{"a":"\ude00\ud83d"}`, `{"a":"` + "\uFFFD\uFFFD" + `"}`},
	{"surrogate in a key", `{"Caf\udce9":1}`, `{"Caf` + "\uFFFD" + `":1}`},
	{"invalid UTF-8", "{\"employer\":\"Caf\xe9\"}", `{"employer":"Caf` + "\uFFFD" + `"}`},
	{"encoded surrogate", "{\"a\":\"\xed\xa0\x80\"}", `{"a":"` + "\uFFFD\uFFFD\uFFFD" + `"}`},
	{"invalid UTF-8 in a key", "{\"\xff\":true}", `{"` + "\uFFFD" + `":true}`},
	{"duplicate key", `{"code":"a","x":[1],"code":"b"}`, `{"code":"b","x":[1]}`},
	{"duplicate nested key", `{"c":{"s":1,"s":{"t":2}}}`, `{"c":{"s":{"t":2}}}`},
	{"duplicate escaped key", `{"a":1,"\u0061":2}`, `{"a":2}`},
	{"number beyond float64", `{"n":1e400,"m":-2.5E+999,"k":[7]}`, `{"k":[7],"m":"-2.5E+999","n":"1e400"}`},
	{"long integer beyond float64", `{"n":` + strings.Repeat("9", 400) + `}`, `{"n":"` + strings.Repeat("9", 400) + `"}`},
	{"too deep", `{"a":` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `}`,
		`{"a":` + strings.Repeat(`[`, 31) + `"` + strings.Repeat(`[`, 9) + strings.Repeat(`]`, 9) + `"` + strings.Repeat(`]`, 31) + `}`},
	{"far too deep for Go", strings.Repeat(`{"a":`, 4000) + `1` + strings.Repeat(`}`, 4000),
		strings.Repeat(`{"a":`, 32) + `"` + strings.ReplaceAll(strings.Repeat(`{"a":`, 4000-32), `"`, `\"`) + `1` + strings.Repeat(`}`, 4000-32) + `"` + strings.Repeat(`}`, 32)},
	{"all at once, HTML kept", "{\"h\":\"<&>\",\"b\":1,\"b\":\"\xc0\",\"n\":1e999}", `{"b":"` + "\uFFFD" + `","h":"<&>","n":"1e999"}`},
}

// Text protojson takes as it is, including what looks like poison.
var fine = []string{
	`{}`,
	` {"a": 1} `,
	`{"pair":"\ud83d\ude00","upper":"\uD83D\uDE00","nul":"\u0000","max":"\uffff","quoted":"\"\\u\\udc00"}`,
	`{"tiny":1e-400,"big":1.7976931348623157e308,"long":0.` + strings.Repeat("0", 400) + `1}`,
	`{"a":1,"A":2,"b":{"a":1},"c":[{"a":1},{"a":2}]}`,
	`{"a":` + strings.Repeat(`[`, 31) + strings.Repeat(`]`, 31) + `}`,
	`{"e":"` + "é\u2028" + `","deep":"[[[[{{{{","num":-0.5e-3}`,
}

func TestServable(t *testing.T) {
	for _, tt := range poison {
		t.Run(tt.name, func(t *testing.T) {
			got := Servable([]byte(tt.in))
			if string(got) != tt.want {
				t.Errorf("Servable =\n%.300s\nwant\n%.300s", got, tt.want)
			}
			checkServes(t, []byte(tt.in))
		})
	}
	for _, in := range fine {
		b := []byte(in)
		if got := Servable(b); &got[0] != &b[0] {
			t.Errorf("Servable(%s) = %s, want it unchanged", in, got)
		}
		checkServes(t, b)
	}
}

// The provider's objects, and the deliveries that carry them, are kept
// as they are: the same slice, not a copy.
func TestServableKeepsRecorded(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/fixtures/*/*.json")
	if len(files) < 30 {
		t.Fatalf("only %d fixtures", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) || bytes.TrimSpace(b)[0] != '{' {
			continue
		}
		if got := Servable(b); &got[0] != &b[0] {
			t.Errorf("%s re-encoded", f)
		}
		s, err := Struct(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		wantWire(t, b, s)
	}
}

func TestStructRefuses(t *testing.T) {
	for _, in := range []string{`[1]`, `"s"`, `{"a":}`, `{"a":1} {}`, "\ufeff{}"} {
		if s, err := Struct([]byte(in)); err == nil {
			t.Errorf("Struct(%q) = %v, want an error", in, s)
		}
		if w, err := AppendWire(nil, []byte(in)); err == nil {
			t.Errorf("AppendWire(%q) = %x, want an error", in, w)
		}
	}
	if s, err := Struct(nil); s != nil || err != nil {
		t.Errorf("Struct(nil) = %v, %v", s, err)
	}
	if w, err := AppendWire(nil, nil); w != nil || err != nil {
		t.Errorf("AppendWire(nil, nil) = %x, %v", w, err)
	}
}

// TestMaxGrowth: the text that grows most as a Struct stays within
// MaxGrowth (checkServes checks it), and comes near it.
func TestMaxGrowth(t *testing.T) {
	repeat := func(open, item, close string, n int) []byte {
		return []byte(open + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + close)
	}
	digits := repeat(`{"a":[`, "0", `]}`, 20000)
	shortKeys := []byte("{")
	for i := range 20000 {
		shortKeys = fmt.Appendf(shortKeys, `"%x":0,`, i)
	}
	shortKeys = append(shortKeys[:len(shortKeys)-1], '}')
	for name, b := range map[string][]byte{
		"digits":          digits,
		"empty arrays":    repeat(`{"a":[`, "[]", `]}`, 20000),
		"nulls":           repeat(`{"a":[`, "null", `]}`, 20000),
		"empty strings":   repeat(`{"a":[`, `""`, `]}`, 20000),
		"invalid UTF-8":   []byte(`{"a":"` + string(bytes.Repeat([]byte{0xff}, 20000)) + `"}`),
		"short keys":      shortKeys,
		"nested arrays":   repeat(`{"a":[`, "[[0]]", `]}`, 20000),
		"deep nesting":    []byte(`{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`),
		"numbers too big": repeat(`{"a":[`, "1e999", `]}`, 10000),
	} {
		t.Run(name, func(t *testing.T) { checkServes(t, b) })
	}
	s, err := Struct(digits)
	if err != nil {
		t.Fatal(err)
	}
	if got := float64(proto.Size(s)) / float64(len(digits)); got < MaxGrowth-1 {
		t.Errorf("one-digit numbers grow %.2f times, want near MaxGrowth (%d): is MaxGrowth too loose?", got, MaxGrowth)
	}
}

func FuzzStruct(f *testing.F) {
	for _, tt := range poison {
		f.Add([]byte(tt.in))
	}
	for _, in := range fine {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) || bytes.TrimLeft(b, " \t\r\n")[0] != '{' {
			return
		}
		checkServes(t, b)
		// Servable is exact: it keeps every text that converts as it is.
		strict := protojson.Unmarshal(b, &structpb.Struct{}) == nil && depth(b) <= MaxDepth
		if servable(b) != strict {
			t.Fatalf("servable = %v, but protojson takes it: %v", !strict, strict)
		}
	})
}

// ids are string literals and what ID makes of them: the text, or the
// error's message.
var ids = []struct{ name, lit, want, err string }{
	{"plain", `"acct-1"`, "acct-1", ""},
	{"escapes and a pair", `"a\u00e9\ud83d\ude00\/"`, "a\u00e9\U0001F600/", ""},
	{"U+FFFD as written", `"a\ufffd"`, "a\uFFFD", ""},
	{"lone high surrogate", `"acct-\ud800"`, "", "not valid UTF-8 (a lone surrogate escape)"},
	{"lone low surrogate", `"\udc00acct"`, "", "not valid UTF-8 (a lone surrogate escape)"},
	{"reversed pair", `"\ude00\ud83d"`, "", "not valid UTF-8 (a lone surrogate escape)"},
	{"invalid UTF-8", "\"acct-\xff\"", "", "not valid UTF-8 (an invalid byte sequence)"},
	{"encoded surrogate", "\"\xed\xa0\x80\"", "", "not valid UTF-8 (an invalid byte sequence)"},
	{"NUL", `"a\u0000"`, "", `contains NUL (\u0000)`},
	{"longest", `"` + strings.Repeat("a", MaxIDBytes) + `"`, strings.Repeat("a", MaxIDBytes), ""},
	{"too long", `"` + strings.Repeat("\u00e9", MaxIDBytes/2) + `a"`, "", "513 bytes long, over the 512 an id may have"},
}

func TestID(t *testing.T) {
	for _, tt := range ids {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ID([]byte(tt.lit))
			if msg := errText(err); got != tt.want || msg != tt.err {
				t.Errorf("ID(%s) = %q, %q; want %q, %q", tt.lit, got, msg, tt.want, tt.err)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// FuzzID checks ID against protojson, which refuses exactly the text that
// encoding/json repairs: ID takes a string when protojson does, with the
// same text, unless it holds NUL or is too long.
func FuzzID(f *testing.F) {
	for _, tt := range ids {
		f.Add([]byte(tt.lit))
	}
	f.Fuzz(func(t *testing.T, lit []byte) {
		var s string
		if len(lit) == 0 || lit[0] != '"' || json.Unmarshal(lit, &s) != nil {
			return
		}
		got, err := ID(lit)
		var v structpb.Value
		strict := protojson.Unmarshal(lit, &v) == nil && !strings.ContainsRune(v.GetStringValue(), 0) && len(v.GetStringValue()) <= MaxIDBytes
		if (err == nil) != strict || err == nil && got != v.GetStringValue() {
			t.Fatalf("ID(%q) = %q, %v; protojson reads %q (takes it: %v)", lit, got, err, v.GetStringValue(), strict)
		}
	})
}

// checkServes checks that b converts, that any reader decodes the result,
// and that Servable is idempotent.
func checkServes(t *testing.T, b []byte) {
	t.Helper()
	s, err := Struct(b)
	if err != nil {
		t.Fatalf("Struct(%q): %v", b, err)
	}
	wire, err := proto.Marshal(s)
	if err != nil {
		t.Fatalf("proto.Marshal: %v", err)
	}
	if err := proto.Unmarshal(wire, &structpb.Struct{}); err != nil {
		t.Fatalf("proto.Unmarshal: %v", err)
	}
	if _, err := protojson.Marshal(s); err != nil {
		t.Fatalf("protojson.Marshal: %v", err)
	}
	if len(wire) > MaxGrowth*len(b) {
		t.Fatalf("Struct of %d bytes of text is %d on the wire, above MaxGrowth times", len(b), len(wire))
	}
	wantWire(t, b, s)
	once := Servable(b)
	if twice := Servable(once); !bytes.Equal(once, twice) || !servable(once) {
		t.Fatalf("Servable not idempotent: %q, then %q", once, twice)
	}
}

// wantWire checks that AppendWire encodes b as the Struct s that Struct
// made of it: a reader decodes the one as the other.
func wantWire(t *testing.T, b []byte, s *structpb.Struct) {
	t.Helper()
	prefix := []byte("kept")
	wire, err := AppendWire(prefix, b)
	if err != nil {
		t.Fatalf("AppendWire(%.300q): %v", b, err)
	}
	if !bytes.HasPrefix(wire, prefix) {
		t.Fatalf("AppendWire did not append to dst")
	}
	got := &structpb.Struct{}
	if err := proto.Unmarshal(wire[len(prefix):], got); err != nil {
		t.Fatalf("proto.Unmarshal of AppendWire(%.300q): %v", b, err)
	}
	if !proto.Equal(got, s) {
		t.Fatalf("AppendWire(%.300q) decodes as\n%.300v\nStruct gives\n%.300v", b, got, s)
	}
}

// depth is the deepest nesting of objects and arrays in the JSON text b.
func depth(b []byte) int {
	d := json.NewDecoder(bytes.NewReader(b))
	n, deepest := 0, 0
	for {
		tok, err := d.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			n++
			deepest = max(deepest, n)
		case json.Delim('}'), json.Delim(']'):
			n--
		}
	}
}

func BenchmarkServable(b *testing.B) {
	body, err := os.ReadFile("../../testdata/fixtures/recorded/accounts_updated_1.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		Servable(body)
	}
}

// BenchmarkWire compares what a response costs to carry an account object:
// its Struct built and encoded, or AppendWire.
func BenchmarkWire(b *testing.B) {
	body, err := os.ReadFile("../../testdata/fixtures/recorded/accounts_updated_1.json")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Struct+Marshal", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			s, _ := Struct(body)
			if _, err := proto.Marshal(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendWire", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := AppendWire(nil, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
