package jsonstruct

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// The field numbers of google.protobuf.Struct, Value and ListValue, and of
// a map entry, fixed by struct.proto.
const (
	structFields protowire.Number = 1 // Struct.fields, map<string, Value>
	entryKey     protowire.Number = 1
	entryValue   protowire.Number = 2
	valueNull    protowire.Number = 1
	valueNumber  protowire.Number = 2
	valueString  protowire.Number = 3
	valueBool    protowire.Number = 4
	valueStruct  protowire.Number = 5
	valueList    protowire.Number = 6
	listValues   protowire.Number = 1 // ListValue.values
)

// AppendWire appends to dst the protobuf wire encoding of the Struct that
// Struct(b) gives, without building it: a response that carries stored
// JSON can be sent with these bytes as its field (see protowire), which
// costs a scan of the text where the Struct costs a tree of allocations
// to build and another walk to encode. It fails where Struct fails, when
// b, through Servable, is not a JSON object; for empty b it appends
// nothing.
func AppendWire(dst, b []byte) ([]byte, error) {
	if len(b) == 0 {
		return dst, nil
	}
	w := wireEncoder{b: Servable(b)}
	w.skipSpace()
	if w.i >= len(w.b) || w.b[w.i] != '{' {
		return dst, errors.New("jsonstruct: not a JSON object")
	}
	out, err := w.object(dst)
	if err != nil {
		return dst, err
	}
	if w.skipSpace(); w.i != len(w.b) {
		return dst, errors.New("jsonstruct: more after the JSON object")
	}
	return out, nil
}

// wireEncoder reads servable JSON text from b[i:], encoding as it goes.
// It relies on Servable for what protojson checks (UTF-8, duplicate keys,
// the range of numbers, depth) and checks the syntax itself.
type wireEncoder struct {
	b []byte
	i int
}

var errSyntax = errors.New("jsonstruct: invalid JSON")

func (w *wireEncoder) skipSpace() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\r', '\n':
			w.i++
		default:
			return
		}
	}
}

// next skips space and reports the byte there, 0 at the end.
func (w *wireEncoder) next() byte {
	if w.skipSpace(); w.i < len(w.b) {
		return w.b[w.i]
	}
	return 0
}

// object encodes the fields of the Struct that the object at b[i] is: a
// map entry for each key.
func (w *wireEncoder) object(dst []byte) ([]byte, error) {
	w.i++ // {
	if w.next() == '}' {
		w.i++
		return dst, nil
	}
	for {
		if w.next() != '"' {
			return dst, errSyntax
		}
		key, err := w.string()
		if err != nil {
			return dst, err
		}
		if w.next() != ':' {
			return dst, errSyntax
		}
		w.i++
		dst = protowire.AppendTag(dst, structFields, protowire.BytesType)
		entry := len(dst)
		dst = protowire.AppendTag(dst, entryKey, protowire.BytesType)
		dst = protowire.AppendBytes(dst, key)
		dst = protowire.AppendTag(dst, entryValue, protowire.BytesType)
		value := len(dst)
		if dst, err = w.value(dst); err != nil {
			return dst, err
		}
		dst = prefixLength(dst, value)
		dst = prefixLength(dst, entry)
		switch w.next() {
		case ',':
			w.i++
		case '}':
			w.i++
			return dst, nil
		default:
			return dst, errSyntax
		}
	}
}

// list encodes the values of the ListValue that the array at b[i] is.
func (w *wireEncoder) list(dst []byte) ([]byte, error) {
	w.i++ // [
	if w.next() == ']' {
		w.i++
		return dst, nil
	}
	for {
		dst = protowire.AppendTag(dst, listValues, protowire.BytesType)
		value := len(dst)
		var err error
		if dst, err = w.value(dst); err != nil {
			return dst, err
		}
		dst = prefixLength(dst, value)
		switch w.next() {
		case ',':
			w.i++
		case ']':
			w.i++
			return dst, nil
		default:
			return dst, errSyntax
		}
	}
}

// value encodes the fields of the Value that the JSON value at b[i] is.
func (w *wireEncoder) value(dst []byte) ([]byte, error) {
	switch c := w.next(); {
	case c == '{' || c == '[':
		kind, encode := valueStruct, w.object
		if c == '[' {
			kind, encode = valueList, w.list
		}
		dst = protowire.AppendTag(dst, kind, protowire.BytesType)
		start := len(dst)
		dst, err := encode(dst)
		if err != nil {
			return dst, err
		}
		return prefixLength(dst, start), nil
	case c == '"':
		s, err := w.string()
		if err != nil {
			return dst, err
		}
		return protowire.AppendBytes(protowire.AppendTag(dst, valueString, protowire.BytesType), s), nil
	case c == '-' || '0' <= c && c <= '9':
		start := w.i
		for w.i < len(w.b) && isNumberByte(w.b[w.i]) {
			w.i++
		}
		f, err := strconv.ParseFloat(string(w.b[start:w.i]), 64)
		if err != nil {
			return dst, errSyntax
		}
		return protowire.AppendFixed64(protowire.AppendTag(dst, valueNumber, protowire.Fixed64Type), math.Float64bits(f)), nil
	}
	for _, lit := range [...]struct {
		text  string
		field protowire.Number
		v     uint64
	}{{"null", valueNull, 0}, {"true", valueBool, 1}, {"false", valueBool, 0}} {
		if w.i+len(lit.text) <= len(w.b) && string(w.b[w.i:w.i+len(lit.text)]) == lit.text {
			w.i += len(lit.text)
			return protowire.AppendVarint(protowire.AppendTag(dst, lit.field, protowire.VarintType), lit.v), nil
		}
	}
	return dst, errSyntax
}

// string reads the string at b[i], unescaped: the text itself when it has
// no escapes, the common case.
func (w *wireEncoder) string() ([]byte, error) {
	end, escaped, ok := scanString(w.b, w.i)
	if !ok {
		return nil, errSyntax
	}
	lit := w.b[w.i : end+1]
	w.i = end + 1
	if !escaped {
		return lit[1 : len(lit)-1], nil
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return nil, errSyntax
	}
	return []byte(s), nil
}

// prefixLength inserts before dst[start:], a message just encoded, its
// length, as the wire format prefixes a message field.
func prefixLength(dst []byte, start int) []byte {
	n := len(dst) - start
	size := protowire.SizeVarint(uint64(n))
	dst = append(dst, make([]byte, size)...)
	copy(dst[start+size:], dst[start:start+n])
	protowire.AppendVarint(dst[:start], uint64(n))
	return dst
}
