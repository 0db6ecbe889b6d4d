package main

import (
	"context"
	"fmt"
	"io"

	"github.com/accounthealth/accounthealth/server/buildinfo"
)

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "version", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	_, err := fmt.Fprintln(stdout, buildinfo.Get())
	return err
}
