package natsexport

import (
	"strings"
	"testing"

	"github.com/accounthealth/accounthealth/server/outbound"
)

func TestToken(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"6f1c2f1e-2b7a-4a86-9d5b-1f0c8e2e6b11", "6f1c2f1e-2b7a-4a86-9d5b-1f0c8e2e6b11"},
		{"acc_1", "acc_1"},
		{"", "%00"},
		{"a.b", "a%2Eb"},
		{"*", "%2A"},
		{">", "%3E"},
		{"a b\tc\n", "a%20b%09c%0A"},
		{"100%", "100%25"},
		{"%00", "%2500"},
		{"é", "%C3%A9"},
	} {
		got := Token(tc.id)
		if got != tc.want {
			t.Errorf("Token(%q) = %q, want %q", tc.id, got, tc.want)
		}
		if got == "" || strings.ContainsAny(got, ".*> \t\r\n") {
			t.Errorf("Token(%q) = %q is not a valid subject token", tc.id, got)
		}
	}
}

func TestSubject(t *testing.T) {
	m := outbound.Message{Type: outbound.TypeDisconnected, UserID: "usr.1", AccountID: "acc 1"}
	if got, want := Subject("accounthealth", m), "accounthealth.account.disconnected.usr%2E1.acc%201"; got != want {
		t.Fatalf("Subject = %q, want %q", got, want)
	}
	item := outbound.Message{Type: outbound.TypeItemOutageBegan, Item: "item_000077001"}
	if got, want := Subject("accounthealth", item), "accounthealth.item.outage_began.item_000077001"; got != want {
		t.Fatalf("Subject = %q, want %q", got, want)
	}
}
