package service

import (
	"sync"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protojson"
	protov2 "google.golang.org/protobuf/proto"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/stream"
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

// encodedEventsLimit is how many of the newest events a cache of them
// keeps, within encodedEventsBudget.
const encodedEventsLimit = 4096

func newEncodedEvents(limit, budget int) *encodedEvents {
	return &encodedEvents{bySeq: make(map[int64]encodedMessage), limit: limit, budget: budget}
}

// get returns c's event in wire form, encoding it on first use.
func (e *encodedEvents) get(c *store.Change) (encodedMessage, error) {
	return e.getOr(c.Seq, func() ([]byte, error) { return protov2.Marshal(itemToProto(streamItemFor(c))) })
}

// getOr returns the bytes kept for seq's event, or encodes them with
// encode and keeps them.
func (e *encodedEvents) getOr(seq int64, encode func() ([]byte, error)) ([]byte, error) {
	e.mu.RLock()
	m, ok := e.bySeq[seq]
	e.mu.RUnlock()
	if ok {
		return m, nil
	}
	b, err := encode()
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// Only the newest Seqs are kept: that is where live subscribers read.
	// A subscriber replaying old changes encodes its own, which is
	// correct, only slower, and cannot grow the cache; so does one sent an
	// event larger than the whole budget.
	e.newest = max(e.newest, seq)
	if seq <= e.newest-int64(e.limit) || len(b) > e.budget {
		return b, nil
	}
	if m, ok := e.bySeq[seq]; ok {
		return m, nil // another subscriber encoded it meanwhile
	}
	e.bySeq[seq] = b
	e.order = append(e.order, seq)
	e.bytes += len(b)
	for len(e.order) > e.limit || e.bytes > e.budget {
		e.bytes -= len(e.bySeq[e.order[0]])
		delete(e.bySeq, e.order[0])
		e.order = e.order[1:]
	}
	return b, nil
}

// streamJSON is the REST gateway's marshaler: the gateway's default,
// except that the chunk of a stream event, the same for every subscriber,
// is encoded once and reused by the others. Over REST each subscriber's
// gateway call decoded the shared wire form and encoded it as JSON again,
// so subscribers fell seconds behind the log at a few hundred of them.
type streamJSON struct {
	runtime.Marshaler
	chunks *encodedEvents
}

// newStreamJSON is streamJSON over the gateway's default marshaler.
func newStreamJSON() streamJSON {
	return streamJSON{
		Marshaler: &runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		}},
		chunks: newEncodedEvents(encodedEventsLimit, encodedEventsBudget),
	}
}

// Marshal encodes v; a stream chunk ({"result": response}, as
// runtime.ForwardResponseStream builds it) of an event once for its Seq.
// The bytes it returns are shared: the gateway writes them and drops them.
func (m streamJSON) Marshal(v any) ([]byte, error) {
	chunk, ok := v.(map[string]any)
	if !ok || len(chunk) != 1 {
		return m.Marshaler.Marshal(v)
	}
	resp, ok := chunk["result"].(*ahv1.StreamDisconnectionsResponse)
	if !ok || resp.GetEvent() == nil {
		return m.Marshaler.Marshal(v)
	}
	seq, err := stream.DecodeCursor(resp.GetEvent().GetCursor())
	if err != nil {
		return m.Marshaler.Marshal(v)
	}
	return m.chunks.getOr(seq, func() ([]byte, error) { return m.Marshaler.Marshal(v) })
}
