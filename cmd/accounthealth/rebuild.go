package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/rebuild"
	"github.com/accounthealth/accounthealth/server/store"
)

// runRebuild re-derives every record from the log under this binary's rules.
// serve does the same at start when the store's rules are older; this
// command does it on demand, with progress, and with --force also when they
// are current.
func runRebuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rebuild", "rebuild [flags]", stderr)
	dataDir, databaseURL := storeFlags(fs)
	force := fs.Bool("force", false, "rebuild even when the records already follow this binary's rules")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	logger, err := newLogger(stderr, *logLevel, "text")
	if err != nil {
		return usageError{err}
	}
	st, err := openStore(ctx, *databaseURL, *dataDir)
	if err != nil {
		return err
	}
	defer st.Close()

	bar := newProgress(stderr)
	start := time.Now()
	p, err := rebuild.Run(ctx, st, logger, rebuild.Options{
		Force:    *force,
		Progress: func(p store.RebuildProgress) { bar.update(int32(p.Accounts), int32(max(p.Total, p.Accounts))) },
	})
	bar.clear()
	if err != nil {
		return fmt.Errorf("%w; run it again to resume where it stopped", err)
	}
	if p.Skipped {
		fmt.Fprintf(stdout, "nothing to rebuild: the records follow rules version %d (--force rebuilds them anyway)\n", health.RulesVersion)
		return nil
	}
	elapsed := time.Since(start)
	fmt.Fprintf(stdout, "rebuilt %d accounts under rules version %d in %s (%.0f accounts/s): %d records changed, %d corrected (one event each), %d entry outcomes changed\n",
		p.Accounts, health.RulesVersion, elapsed.Round(time.Millisecond), rebuild.Rate(p, elapsed), p.Changed, p.Corrections, p.Outcomes)
	if p.Undecodable > 0 {
		fmt.Fprintf(stdout, "%d entries no longer decode and were left out\n", p.Undecodable)
	}
	return nil
}
