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

// encodedEvents keeps the wire form of recent stream events by change Seq.
type encodedEvents struct {
	mu     sync.RWMutex
	bySeq  map[int64]encodedMessage
	limit  int
	newest int64 // the highest Seq seen
}

func newEncodedEvents(limit int) *encodedEvents {
	return &encodedEvents{bySeq: make(map[int64]encodedMessage), limit: limit}
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
	// Only the newest Seqs are kept, at most limit/2 of them: that is where
	// live subscribers read. A subscriber replaying old changes encodes its
	// own, which is correct, only slower, and cannot grow the cache.
	e.newest = max(e.newest, c.Seq)
	floor := e.newest - int64(e.limit/2)
	if len(e.bySeq) >= e.limit/2 {
		for seq := range e.bySeq {
			if seq <= floor {
				delete(e.bySeq, seq)
			}
		}
	}
	if c.Seq > floor {
		e.bySeq[c.Seq] = b
	}
	return b, nil
}
