package service

import (
	"testing"

	"google.golang.org/protobuf/proto"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/stream"
)

func TestEncodedEventsAreTheEventAndStayBounded(t *testing.T) {
	e := newEncodedEvents(8)
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
