package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/accounthealth/accounthealth/server/rebuild"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/sqlite"
)

// runCheck reads the whole store and reports what is damaged or
// inconsistent (store.RunCheck). It writes nothing, so it is safe beside a
// serving process; it exits non-zero when it finds anything.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", "check [flags]", stderr)
	dataDir, databaseURL := storeFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *databaseURL == "" {
		// Opening would create an empty store, which is no answer.
		if _, err := os.Stat(filepath.Join(*dataDir, sqlite.FileName)); err != nil {
			return fmt.Errorf("data-dir: no store to check in %s (%w): give the --data-dir that serve uses, or --database-url", *dataDir, err)
		}
	}
	st, err := openStore(ctx, *databaseURL, *dataDir)
	if err != nil {
		return err
	}
	defer st.Close()

	bar := newProgress(stderr)
	start := time.Now()
	r, err := st.Check(ctx, store.CheckOptions{
		Decode:   rebuild.Decode,
		Progress: func(r store.CheckReport) { bar.update(int32(r.Accounts), int32(max(r.Total, r.Accounts))) },
	})
	bar.clear()
	if err != nil {
		return err
	}
	for _, p := range r.Problems {
		fmt.Fprintln(stdout, p)
	}
	if r.Found > len(r.Problems) {
		fmt.Fprintf(stdout, "... and %d more\n", r.Found-len(r.Problems))
	}
	summary := fmt.Sprintf("checked %d accounts, %d entries, %d changes in %s", r.Accounts, r.Entries, r.Changes, time.Since(start).Round(time.Millisecond))
	if r.Clean() {
		fmt.Fprintln(stdout, summary+": clean")
		return nil
	}
	return errors.New(summary + fmt.Sprintf(": problems found: %d; `accounthealth rebuild --force` re-derives records and outcomes from the log, damage to the log itself needs a backup", r.Found))
}
