package sqlstore

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// Delivery bodies and account objects are most of a store's bytes, and the
// account object is kept twice: inside its delivery's body and as the
// record's last snapshot. Both are JSON, which zstd shrinks to about 40%
// even without a dictionary, so they are stored compressed where that
// saves bytes, beside a codec column (body_codec, snapshot_codec) that says
// how each value is stored. Reads give back the exact bytes written; rows
// written before the codec existed are codecRaw.
const (
	codecRaw  int64 = 0 // the bytes as given
	codecZstd int64 = 1 // one zstd frame, with its checksum
)

// maxBlobBytes bounds what one stored value may decompress to: far above
// any body the intake accepts, so only a damaged row reaches it.
const maxBlobBytes = 256 << 20

// The coders are safe for concurrent EncodeAll and DecodeAll. The fastest
// level: at the sizes of a delivery (1–2 KB) the better levels save a few
// bytes for several times the CPU, and the commit path pays it.
var (
	blobEncoder = must(zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1)))
	blobDecoder = must(zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxBlobBytes)))
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
