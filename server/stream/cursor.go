package stream

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/accounthealth/accounthealth/server/store"
)

// ErrInvalidCursor: a cursor is malformed, or names a position this log
// never reached. It wraps store.ErrInvalidArgument, so the service maps it
// to InvalidArgument like any other bad request field.
var ErrInvalidCursor = fmt.Errorf("%w: invalid cursor", store.ErrInvalidArgument)

// A cursor is base64url (unpadded) of:
//
//	version (1 byte) | uvarint(Seq) | CRC-32 of the preceding bytes (4 bytes)
//
// Callers treat it as opaque, so the format can change under a new version
// byte. The checksum turns a truncated or mistyped cursor into an error
// instead of a silent jump to another position; it is no secret.
const cursorVersion = 1

// EncodeCursor returns the cursor for a position in the change log: resuming
// after it yields exactly the changes with a greater Seq.
func EncodeCursor(seq int64) string {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+crc32.Size)
	b = append(b, cursorVersion)
	b = binary.AppendUvarint(b, uint64(seq))
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor returns the position of a cursor EncodeCursor made, or an
// error wrapping ErrInvalidCursor.
func DecodeCursor(cursor string) (int64, error) {
	seq, err := decodeCursor(cursor)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %w", ErrInvalidCursor, cursor, err)
	}
	return seq, nil
}

func decodeCursor(cursor string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	switch {
	case err != nil:
		return 0, errors.New("not base64url")
	case len(b) < 1+1+crc32.Size:
		return 0, errors.New("too short")
	case b[0] != cursorVersion:
		return 0, fmt.Errorf("unknown version %d", b[0])
	}
	body, sum := b[:len(b)-crc32.Size], b[len(b)-crc32.Size:]
	if crc32.ChecksumIEEE(body) != binary.BigEndian.Uint32(sum) {
		return 0, errors.New("checksum mismatch")
	}
	seq, n := binary.Uvarint(body[1:])
	if n != len(body)-1 || seq > 1<<63-1 {
		return 0, errors.New("malformed position")
	}
	// Only the canonical form is accepted (the decoder skips line breaks,
	// and varints have padded forms), so one position has one cursor.
	if EncodeCursor(int64(seq)) != cursor {
		return 0, errors.New("not in canonical form")
	}
	return int64(seq), nil
}
