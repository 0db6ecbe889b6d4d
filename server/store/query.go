package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
)

// Page tokens are opaque to callers but the same for every driver, so a
// token survives a change of driver and both drivers reject the same junk.
// A token is base64url (unpadded) of:
//
//	version (1 byte) | kind (1 byte) | check (8 bytes) | key
//
// The key is where the next page starts (keyset paging, so pages stay
// consistent while records are written). The check is a hash of the kind,
// the query's filters and the key: a truncated or edited token, or one
// reused with other filters, is ErrInvalidArgument rather than a silently
// wrong page. It is no secret; a caller forging a token gains nothing.
const tokenVersion = 1

type tokenKind byte

const (
	healthToken      tokenKind = 1 + iota // key: the last account id returned
	entryToken                            // key: the last entry Seq returned, uvarint
	healthSinceToken                      // key: the last record's state since (Unix ns, varint) and account id
)

const tokenHeader = 2 + 8

// PageLimit checks a page size (PageSize, or ReadChanges' limit): 0 means
// DefaultPageSize, anything else outside 1..MaxPageSize is ErrInvalidArgument.
func PageLimit(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, fmt.Errorf("%w: page size %d not in 0..%d", ErrInvalidArgument, n, MaxPageSize)
	}
	return n, nil
}

// Bounds of a ChangeCountQuery: the store counts changes per hour, so a
// window starts and ends on whole hours (UTC) and its buckets are whole
// hours; it has at most MaxChangeBuckets, so an answer stays a few KB.
const (
	ChangeCountUnit  = time.Hour
	MaxChangeBuckets = 1000
)

var lastCountable = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// Check rejects a query whose window is empty, reversed, out of range or
// not on whole hours, whose bucket is not a whole number of hours, or that
// spans more than MaxChangeBuckets.
func (q ChangeCountQuery) Check() error {
	switch {
	case q.From.IsZero() || q.To.IsZero() || !q.From.Before(q.To):
		return fmt.Errorf("%w: the window needs a start before its end", ErrInvalidArgument)
	case q.From.Before(time.Unix(0, 0)) || q.To.After(lastCountable):
		// Bucket arithmetic on Unix nanoseconds stays in range between these.
		return fmt.Errorf("%w: the window must lie between 1970 and %d", ErrInvalidArgument, lastCountable.Year())
	case !q.From.Truncate(ChangeCountUnit).Equal(q.From) || !q.To.Truncate(ChangeCountUnit).Equal(q.To):
		return fmt.Errorf("%w: the window must start and end on whole hours (UTC), e.g. 2026-12-01T07:00:00Z", ErrInvalidArgument)
	case q.Bucket < ChangeCountUnit || q.Bucket%ChangeCountUnit != 0:
		return fmt.Errorf("%w: bucket %s is not a whole number of hours", ErrInvalidArgument, q.Bucket)
	case (q.To.Sub(q.From)-1)/q.Bucket >= MaxChangeBuckets: // more than Max, counting a last partial bucket
		return fmt.Errorf("%w: %s in buckets of %s is more than %d buckets: widen the bucket or shorten the window", ErrInvalidArgument, q.To.Sub(q.From), q.Bucket, MaxChangeBuckets)
	}
	return nil
}

// Cursor validates q and says where its page starts: fetch up to limit
// records after the key in q's order (a zero key for the first page).
func (q HealthQuery) Cursor() (limit int, after HealthKey, err error) {
	if limit, err = PageLimit(q.PageSize); err != nil {
		return 0, HealthKey{}, err
	}
	for _, s := range q.States {
		// StateUnknown is no state a record can be in: asking for it is a
		// caller's mistake, not an empty filter.
		if s < health.StateConnecting || s > health.StateRemoved {
			return 0, HealthKey{}, fmt.Errorf("%w: unknown state %d", ErrInvalidArgument, int(s))
		}
	}
	for _, f := range q.Freshness {
		if f < health.FreshnessFresh || f > health.FreshnessSyncFailed {
			return 0, HealthKey{}, fmt.Errorf("%w: unknown freshness %d", ErrInvalidArgument, int(f))
		}
	}
	if q.Order < ByAccountID || q.Order > ByStateSinceDesc {
		return 0, HealthKey{}, fmt.Errorf("%w: unknown order %d", ErrInvalidArgument, int(q.Order))
	}
	if q.Order == ByAccountID {
		key, err := decodeToken(q.PageToken, healthToken, q.filters())
		return limit, HealthKey{AccountID: string(key)}, err
	}
	key, err := decodeToken(q.PageToken, healthSinceToken, q.filters())
	if err != nil || key == nil {
		return limit, HealthKey{}, err
	}
	nanos, n := binary.Varint(key)
	if n <= 0 || n == len(key) {
		return 0, HealthKey{}, fmt.Errorf("%w: malformed page token", ErrInvalidArgument)
	}
	return limit, HealthKey{StateSince: time.Unix(0, nanos).UTC(), AccountID: string(key[n:])}, nil
}

// NextPageToken is the token for the page after one whose last record is
// last.
func (q HealthQuery) NextPageToken(last health.Record) string {
	if q.Order == ByAccountID {
		return encodeToken(healthToken, q.filters(), []byte(last.AccountID))
	}
	var nanos int64 // a record without the time sorts as 1970, as in the store
	if !last.StateSince.IsZero() {
		nanos = last.StateSince.UnixNano()
	}
	return encodeToken(healthSinceToken, q.filters(), append(binary.AppendVarint(nil, nanos), last.AccountID...))
}

// filters encodes the query's filters canonically: the same filters in
// another order give the same bytes.
func (q HealthQuery) filters() []byte {
	states := slices.Clone(q.States)
	slices.Sort(states)
	states = slices.Compact(states)
	codes := slices.Clone(q.ErrorCodes)
	slices.Sort(codes)
	codes = slices.Compact(codes)

	var b []byte
	b = appendString(b, q.UserID)
	b = binary.AppendUvarint(b, uint64(len(states)))
	for _, s := range states {
		b = binary.AppendVarint(b, int64(s))
	}
	b = binary.AppendUvarint(b, uint64(len(codes)))
	for _, c := range codes {
		b = appendString(b, c)
	}
	// Last and only when set, so that tokens issued before the filter
	// existed stay valid.
	if q.Item != "" {
		b = appendString(b, q.Item)
	}
	// The token kind tells account id order from state since; the
	// direction is a filter, so a token is not reused the other way.
	if q.Order != ByAccountID {
		b = binary.AppendUvarint(b, uint64(q.Order))
	}
	if len(q.Freshness) > 0 {
		fresh := slices.Compact(slices.Sorted(slices.Values(q.Freshness)))
		b = append(b, 'f')
		for _, f := range fresh {
			b = binary.AppendUvarint(b, uint64(f))
		}
	}
	return b
}

// Cursor validates q and says where its page starts: fetch up to limit
// entries of q.AccountID with Seq > after (0 for the first page). pruned
// is how far pruning had gone in the account's log (its Checkpoint's
// ThroughSeq) when the page before was read: should it have gone further
// past after since, entries of the page may be gone (see ErrOutOfRange).
func (q EntryQuery) Cursor() (limit int, after, pruned int64, err error) {
	if q.AccountID == "" {
		return 0, 0, 0, fmt.Errorf("%w: account id is required", ErrInvalidArgument)
	}
	if limit, err = PageLimit(q.PageSize); err != nil {
		return 0, 0, 0, err
	}
	key, err := decodeToken(q.PageToken, entryToken, appendString(nil, q.AccountID))
	switch {
	case err != nil:
		return 0, 0, 0, err
	case key == nil:
		return limit, 0, 0, nil
	}
	seq, n := binary.Uvarint(key)
	through, m := binary.Uvarint(key[max(n, 0):])
	if n <= 0 || m <= 0 || n+m != len(key) || seq == 0 || seq > 1<<63-1 || through > 1<<63-1 {
		return 0, 0, 0, fmt.Errorf("%w: malformed page token", ErrInvalidArgument)
	}
	return limit, int64(seq), int64(through), nil
}

// NextPageToken is the token for the page after one whose last entry has
// Seq last, read when pruning had gone up to pruned.
func (q EntryQuery) NextPageToken(last, pruned int64) string {
	key := binary.AppendUvarint(binary.AppendUvarint(nil, uint64(last)), uint64(pruned))
	return encodeToken(entryToken, appendString(nil, q.AccountID), key)
}

// CheckPruned says whether the page after after can still be read whole:
// ErrOutOfRange when pruning went from pruned (as Cursor gave it) to now,
// past after.
func (q EntryQuery) CheckPruned(after, pruned, now int64) error {
	if after == 0 || now <= pruned || now <= after {
		return nil
	}
	return fmt.Errorf("%w: the page token of account %s's timeline points to entry %d, and retention has pruned its entries up to %d since the token was issued: "+
		"list the timeline again from its first page, without a page token (entries older than the retention that made no transition are gone)",
		ErrOutOfRange, q.AccountID, after, now)
}

// RecordBytes is what r weighs on a page: its variable-length fields, the
// bytes that grow with what deliveries carry.
func RecordBytes(r health.Record) int {
	return len(r.AccountID) + len(r.UserID) + len(r.Item) + len(r.ErrorCode) + len(r.ErrorMessage) + len(r.LastEventType) +
		remedyBytes(r.Remedy) + len(r.Snapshot)
}

// EntryBytes is what e weighs on a page, like RecordBytes: its
// variable-length fields and its change's.
func EntryBytes(e Entry) int {
	n := len(e.Source) + len(e.Event) + len(e.Name) + len(e.AccountID) + len(e.UserID) + len(e.Actor) + len(e.Body)
	if c := e.Change; c != nil {
		n += ChangeBytes(*c)
	}
	return n
}

// ChangeBytes is what c weighs on a page of ReadChanges, like RecordBytes.
func ChangeBytes(c Change) int {
	return len(c.Event) + len(c.AccountID) + len(c.UserID) + len(c.Item) + len(c.ErrorCode) + len(c.ErrorMessage) + remedyBytes(c.Remedy)
}

func remedyBytes(r health.Remedy) int {
	return len(r.Message) + len(r.LinkAccountID) + len(r.LinkUserID)
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func tokenCheck(kind tokenKind, filters, key []byte) [8]byte {
	h := sha256.New()
	h.Write([]byte{byte(kind)})
	h.Write(appendString(nil, string(filters)))
	h.Write(key)
	return [8]byte(h.Sum(nil))
}

func encodeToken(kind tokenKind, filters, key []byte) string {
	check := tokenCheck(kind, filters, key)
	b := make([]byte, 0, tokenHeader+len(key))
	b = append(b, tokenVersion, byte(kind))
	b = append(b, check[:]...)
	b = append(b, key...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeToken returns the key of a token issued for kind and filters; nil
// for the empty token (the first page).
func decodeToken(token string, kind tokenKind, filters []byte) ([]byte, error) {
	if token == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	// The decoder skips line breaks; a token is only what we issue.
	if err != nil || base64.RawURLEncoding.EncodeToString(b) != token || len(b) <= tokenHeader || b[0] != tokenVersion || tokenKind(b[1]) != kind {
		return nil, fmt.Errorf("%w: malformed page token", ErrInvalidArgument)
	}
	key := b[tokenHeader:]
	if check := tokenCheck(kind, filters, key); !bytes.Equal(b[2:tokenHeader], check[:]) {
		return nil, fmt.Errorf("%w: page token is corrupt or was issued for other filters", ErrInvalidArgument)
	}
	return key, nil
}
