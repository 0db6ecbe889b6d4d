package accounthealth

import (
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/jsonstruct"
	"github.com/accounthealth/accounthealth/server/store"
)

// MaxBodyBytesLimit is the largest delivery cap (serve's --max-body-bytes)
// a server takes: MaxResponseBytes of it stays under the 2 GiB a gRPC
// message can be. The provider's deliveries are a few KB.
const MaxBodyBytesLimit = 16 << 20

// MaxResponseBytes is the largest response message a server whose
// deliveries are capped at maxBody bytes sends: its own send limit, and
// the receive limit its REST gateway and clients need, where gRPC's default
// is 4 MiB. A response holds one page (or fewer: one record, entry or
// stream event). A page holds items up to store.PageBytes of their
// variable fields, or one item of more; an item carries at most
// itemBodies fields of delivery size and a cut error message; and on the
// wire those bytes grow at most jsonstruct.MaxGrowth times (JSON served as
// a google.protobuf.Struct), plus each item's fixed fields.
func MaxResponseBytes(maxBody int) int {
	item := itemBodies*maxBody + health.MaxMessageBytes + itemSlack
	return jsonstruct.MaxGrowth*max(store.PageBytes, item) + store.MaxPageSize*itemSlack
}

const (
	// itemBodies counts the fields of an item that may each be as large as
	// a delivery: a field may come from another delivery than the next
	// one's, and an unknown error code is quoted in the remedy, up to 4
	// times as long. A record: account id, user id, error code, last
	// event, snapshot, the remedy's two link ids and its message (4).
	// An entry: event, name, account id, user id, actor and body, and its
	// change's event, ids, code, link ids and remedy message (4): 16.
	itemBodies = 16
	// itemSlack covers an item's fixed-size fields, its fields' framing,
	// the cut message's marker and a page token.
	itemSlack = 1 << 10
)
