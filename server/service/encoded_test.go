package service

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/stream"
)

func TestEncodedEventsAreTheEventAndStayBounded(t *testing.T) {
	e := newEncodedEvents(8, 1<<20)
	codec := newSharedCodec()
	for seq := int64(1); seq <= 100; seq++ {
		c := &store.Change{Seq: seq, AccountID: "a", Transition: health.Transition{Kind: health.KindDisconnected}}
		m, err := e.get(c)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := e.get(c); &again[0] != &m[0] {
			t.Fatalf("seq %d encoded twice", seq)
		}
		// What the codec sends is exactly the encoded event.
		wire, err := codec.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var got ahv1.StreamDisconnectionsResponse
		if err := proto.Unmarshal(wire.Materialize(), &got); err != nil {
			t.Fatal(err)
		}
		if got.GetEvent().GetCursor() != stream.EncodeCursor(seq) || got.GetEvent().GetKind() != ahv1.TransitionKind_TRANSITION_KIND_DISCONNECTED {
			t.Fatalf("seq %d decodes to %v", seq, &got)
		}
		if len(e.bySeq) > 8 {
			t.Fatalf("cache holds %d events, limit 8", len(e.bySeq))
		}
	}
	// A subscriber replaying old changes does not grow the cache.
	for seq := int64(1); seq <= 50; seq++ {
		if _, err := e.get(&store.Change{Seq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	if len(e.bySeq) > 8 {
		t.Fatalf("cache holds %d events after a replay, limit 8", len(e.bySeq))
	}
	// Anything else still goes through protobuf.
	wire, err := codec.Marshal(&ahv1.Heartbeat{Cursor: "x"})
	if err != nil || wire.Len() == 0 {
		t.Fatalf("plain message: %v", err)
	}
}

// Events carry error messages as large as a delivery: the cache holds at
// most its byte budget of them, and one larger than the whole budget is
// sent without being kept.
func TestEncodedEventsStayWithinTheirByteBudget(t *testing.T) {
	const budget = 64 << 10
	e := newEncodedEvents(1000, budget)
	large := func(seq int64, size int) *store.Change {
		return &store.Change{Seq: seq, AccountID: "a", Transition: health.Transition{
			Kind: health.KindDisconnected, ErrorMessage: strings.Repeat("m", size)}}
	}
	for seq := int64(1); seq <= 100; seq++ {
		if _, err := e.get(large(seq, 10<<10)); err != nil {
			t.Fatal(err)
		}
		held := 0
		for _, m := range e.bySeq {
			held += len(m)
		}
		if held > budget || held != e.bytes {
			t.Fatalf("after seq %d the cache holds %d bytes (counted %d), budget %d", seq, held, e.bytes, budget)
		}
	}
	if _, ok := e.bySeq[100]; !ok {
		t.Error("the newest event is not kept")
	}
	if len(e.bySeq) < budget/(11<<10) {
		t.Errorf("only %d events of 10 KB kept in a %d-byte budget", len(e.bySeq), budget)
	}
	m, err := e.get(large(101, budget))
	if err != nil || len(m) <= budget {
		t.Fatalf("an event over the budget: %d bytes, %v", len(m), err)
	}
	if _, ok := e.bySeq[101]; ok {
		t.Error("an event larger than the whole budget was cached")
	}
	if _, ok := e.bySeq[100]; !ok {
		t.Error("an event too large to cache evicted the others")
	}
}

// TestStreamJSONEncodesAnEventOnce: the REST gateway's chunk of an event
// is the default marshaler's, encoded once for all subscribers (each
// gateway call holds its own decoded copy); heartbeats and other values
// are encoded as the default marshaler does, each time.
func TestStreamJSONEncodesAnEventOnce(t *testing.T) {
	m := newStreamJSON()
	chunk := func(resp *ahv1.StreamDisconnectionsResponse) map[string]any { return map[string]any{"result": resp} }
	event := func() *ahv1.StreamDisconnectionsResponse {
		return itemToProto(streamItemFor(&store.Change{Seq: 7, AccountID: "a", Transition: health.Transition{Kind: health.KindDisconnected}}))
	}
	first, err := m.Marshal(chunk(event()))
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Marshaler.Marshal(chunk(event()))
	if err != nil || string(first) != string(want) {
		t.Fatalf("chunk %s, %v; want the default marshaler's %s", first, err, want)
	}
	if again, _ := m.Marshal(chunk(event())); &again[0] != &first[0] {
		t.Errorf("the same event's chunk was encoded again")
	}
	beat := chunk(itemToProto(stream.Item{Heartbeat: true, Cursor: 7}))
	got, err := m.Marshal(beat)
	if want, _ := m.Marshaler.Marshal(beat); err != nil || string(got) != string(want) || !strings.Contains(string(got), "heartbeat") {
		t.Errorf("heartbeat chunk %s, %v; want %s", got, err, want)
	}
}
