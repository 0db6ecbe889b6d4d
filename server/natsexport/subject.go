package natsexport

import (
	"strings"

	"github.com/accounthealth/accounthealth/server/outbound"
)

// emptyToken stands for an empty id (a change without a user). Ids never
// hold NUL (intake refuses them), so no id escapes to it.
const emptyToken = "%00"

// Token escapes an account or user id into one valid subject token: every
// byte but ASCII letters, digits, '-' and '_' becomes %XX (uppercase hex),
// so '.', '*', '>', whitespace, '%' and non-ASCII text never reach the
// subject, and two different ids never share a token. The provider's ids
// (UUIDs) pass unchanged.
func Token(id string) string {
	if id == "" {
		return emptyToken
	}
	if !strings.ContainsFunc(id, needsEscape) {
		return id
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(id) * 3)
	for i := 0; i < len(id); i++ {
		c := id[i]
		if needsEscape(rune(c)) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xF])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// needsEscape: all but ASCII letters, digits, '-' and '_'. A multi-byte
// rune is escaped byte by byte (Token walks bytes), so its value only
// needs to be outside that set.
func needsEscape(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_':
		return false
	}
	return true
}

// Subject is where m is published: the prefix, the message type's tokens
// ("account.disconnected"), then the user's and the account's token, so
// that consumers filter by kind, user or account with wildcards, e.g.
// accounthealth.account.*.<user>.> for everything about one user. An
// item-wide message names its item instead: accounthealth.item.outage_began.<item>.
func Subject(prefix string, m outbound.Message) string {
	if m.ItemWide() {
		return prefix + "." + m.Type + "." + Token(m.Item)
	}
	return prefix + "." + m.Type + "." + Token(m.UserID) + "." + Token(m.AccountID)
}
