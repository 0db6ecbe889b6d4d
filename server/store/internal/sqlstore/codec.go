package sqlstore

import (
	_ "embed"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// Delivery bodies and account objects are most of a store's bytes, and the
// account object is kept twice: inside its delivery's body and as the
// record's last snapshot. Both are JSON, which zstd shrinks to about 40%,
// and to 15–30% with a dictionary of the provider's field names and shapes,
// so they are stored compressed where that saves bytes, beside a codec
// column (body_codec, snapshot_codec) that says how each value is stored.
// Reads give back the exact bytes written; rows written before the codec
// existed are codecRaw.
const (
	codecRaw  int64 = 0 // the bytes as given
	codecZstd int64 = 1 // one zstd frame with its checksum; its header names its dictionary
)

// dictionary1 is raw zstd dictionary content: simulated deliveries of the
// provider's accounts.* events with their account objects, pretty-printed
// and compact. It must never change: every frame compressed with it needs
// the same bytes to decompress (TestDictionariesFrozen holds it). A better
// dictionary is a new file with the next id, added to the decoder beside
// this one and given to the encoder instead.
//
//go:embed zstd_dictionary_1.bin
var dictionary1 []byte

const dictionary1ID = 1

// maxBlobBytes bounds what one stored value may decompress to: far above
// any body the intake accepts, so only a damaged row reaches it.
const maxBlobBytes = 256 << 20

// The coders are safe for concurrent EncodeAll and DecodeAll. The fastest
// level: at the sizes of a delivery (1–2 KB) the better levels save a few
// bytes for several times the CPU, and the commit path pays it.
var (
	blobEncoder = must(zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderDictRaw(dictionary1ID, dictionary1)))
	blobDecoder = must(zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxBlobBytes),
		zstd.WithDecoderDictRaw(dictionary1ID, dictionary1)))
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err) // only for options that are constant and valid
	}
	return v
}

// packBlob is how b is stored: its value (NULL for an empty b, so that it
// reads back as nil) and its codec.
func packBlob(b []byte) (value any, codec int64) {
	if len(b) == 0 {
		return nil, codecRaw
	}
	if z := blobEncoder.EncodeAll(b, make([]byte, 0, len(b))); len(z) < len(b) {
		return z, codecZstd
	}
	return b, codecRaw
}

// unpackBlob gives back the bytes packBlob stored as stored with codec.
func unpackBlob(stored []byte, codec int64) ([]byte, error) {
	switch {
	case stored == nil || codec == codecRaw:
		return stored, nil
	case codec == codecZstd:
		b, err := blobDecoder.DecodeAll(stored, nil)
		if err != nil {
			return nil, fmt.Errorf("a stored body or account object does not decompress: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("a stored body or account object has the unknown codec %d", codec)
}
