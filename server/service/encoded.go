package service

import (
	"sync"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	protov2 "google.golang.org/protobuf/proto"

	"github.com/accounthealth/accounthealth/server/store"
)

// encodedMessage is a response already in wire format. One change goes to
// every subscriber of the stream: encoding it once, not once per
// subscriber, is most of what a send costs at a thousand subscribers.
type encodedMessage []byte

// sharedCodec is the server's codec: protobuf, except that an
// encodedMessage is sent as is. Its bytes are shared by every send and
// never modified, so handing them to gRPC without a copy is safe.
type sharedCodec struct{ encoding.CodecV2 }

func newSharedCodec() sharedCodec {
	return sharedCodec{encoding.GetCodecV2(proto.Name)}
}

func (c sharedCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(encodedMessage); ok {
		return mem.BufferSlice{mem.SliceBuffer(m)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// encodedEvents keeps the wire form of recent stream events by change Seq,
// at most limit of them and budget bytes: an event carries the account's
// error message, which a provider may make as large as a delivery.
type encodedEvents struct {
	mu     sync.RWMutex
	bySeq  map[int64]encodedMessage
	order  []int64 // the Seqs in bySeq, oldest first
	limit  int
	budget int
	bytes  int   // held in bySeq
	newest int64 // the highest Seq seen
}

// encodedEventsBudget holds a few thousand ordinary events (a few hundred
// bytes each), or a dozen of the largest a 1 MiB delivery can cause: live
// subscribers read the newest, and a miss only costs an encoding.
const encodedEventsBudget = 16 << 20

func newEncodedEvents(limit, budget int) *encodedEvents {
	return &encodedEvents{bySeq: make(map[int64]encodedMessage), limit: limit, budget: budget}
}

// get returns c's event in wire form, encoding it on first use.
func (e *encodedEvents) get(c *store.Change) (encodedMessage, error) {
	e.mu.RLock()
	m, ok := e.bySeq[c.Seq]
	e.mu.RUnlock()
	if ok {
		return m, nil
	}
	b, err := protov2.Marshal(itemToProto(streamItemFor(c)))
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// Only the newest Seqs are kept: that is where live subscribers read.
	// A subscriber replaying old changes encodes its own, which is
	// correct, only slower, and cannot grow the cache; so does one sent an
	// event larger than the whole budget.
	e.newest = max(e.newest, c.Seq)
	if c.Seq <= e.newest-int64(e.limit) || len(b) > e.budget {
		return b, nil
	}
	if m, ok := e.bySeq[c.Seq]; ok {
		return m, nil // another subscriber encoded it meanwhile
	}
	e.bySeq[c.Seq] = b
	e.order = append(e.order, c.Seq)
	e.bytes += len(b)
	for len(e.order) > e.limit || e.bytes > e.budget {
		e.bytes -= len(e.bySeq[e.order[0]])
		delete(e.bySeq, e.order[0])
		e.order = e.order[1:]
	}
	return b, nil
}
