package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/accounthealth/accounthealth/server/auth"
)

// runToken makes internal API tokens: `token new NAME` prints a new token
// (give it to the caller) and the entry to add to --api-tokens-file (only
// its hash: the server never holds the token itself).
func runToken(_ context.Context, args []string, stdout, stderr io.Writer) error {
	help := func() {
		fmt.Fprint(stderr, `Usage: accounthealth token new NAME

Prints a new internal API token for the caller NAME, and the line to add to serve's
--api-tokens-file (or ACCOUNTHEALTH_API_TOKENS): its hash only, the server never holds the token.
NAME: letters, digits, '.', '_', '-' or '@', at most 64. The command takes no flags.
`)
	}
	isHelp := func(a string) bool { return a == "-h" || a == "--help" || a == "help" }
	switch {
	case len(args) == 0:
		help()
		return usageError{errors.New("say 'token new NAME'")}
	case isHelp(args[0]) || (args[0] == "new" && len(args) == 2 && isHelp(args[1])):
		help()
		return nil
	}
	if args[0] != "new" || len(args) != 2 {
		return usageError{fmt.Errorf("unknown arguments %q: say 'token new NAME'", args)}
	}
	token, entry, err := auth.NewToken(args[1])
	if err != nil {
		return usageError{err}
	}
	fmt.Fprintf(stdout, "token (give it to %s; it is not stored anywhere):\n  %s\n", args[1], token)
	fmt.Fprintf(stdout, "add this line to --api-tokens-file (or to ACCOUNTHEALTH_API_TOKENS):\n  %s\n", entry)
	return nil
}
