package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/client"
	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

func runDeleteFailed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("delete-failed", "delete-failed ID [flags]",
		`Deletes, at the provider, an account whose login failed and that never connected (the provider keeps such
accounts around). The account ends REMOVED, and watchers see it. An account that once connected holds the
user's payroll data and needs --force; a healthy, connecting, degraded or disconnected one is never deleted.
The server needs the provider's API key (serve's --argyle-api-key-id/--argyle-api-key-secret); --dry-run
does not. Repeating a deletion is harmless: it answers as the first time.`,
		stdout, stderr, "ID")
	var opts client.DeleteOptions
	c.fs.BoolVar(&opts.Force, "force", false, "also delete an account that once connected (the provider deletes its payroll data too)")
	c.fs.BoolVar(&opts.DryRun, "dry-run", false, "check that the account qualifies and say what would happen; delete nothing")
	cl, names, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	id := names[0]
	resp, err := cl.DeleteFailed(ctx, id, opts)
	if err != nil {
		return c.explain(err, id)
	}
	if c.output == "json" {
		return printJSON(stdout, resp)
	}
	h := resp.GetAccountHealth()
	switch resp.GetOutcome() {
	case ahv1.DeletionOutcome_DELETION_OUTCOME_WOULD_DELETE:
		connected := "it never connected"
		if h.GetEverConnected() {
			connected = "it once connected, so the provider would delete the user's payroll data too"
		}
		_, err = fmt.Fprintf(stdout, "would delete account %s (user %s, %s since %s): %s; run again without --dry-run to delete it\n",
			id, or(h.GetUserId()), enumName(h.GetState()), when(h.GetStateSince()), connected)
	case ahv1.DeletionOutcome_DELETION_OUTCOME_DELETED:
		_, err = fmt.Fprintf(stdout, "deleted account %s at the provider; it is now %s\n", id, enumName(h.GetState()))
	case ahv1.DeletionOutcome_DELETION_OUTCOME_ALREADY_GONE:
		_, err = fmt.Fprintf(stdout, "account %s was already gone at the provider; it is now marked %s\n", id, enumName(h.GetState()))
	default:
		_, err = fmt.Fprintf(stdout, "account %s: %s; it is %s\n", id, enumName(resp.GetOutcome()), enumName(h.GetState()))
	}
	return err
}

func runPurgeFailed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("purge-failed", "purge-failed --older-than DURATION [flags]",
		`Deletes at the provider every account whose login failed, that never connected, and that had no delivery
for --older-than, one at a time within the provider's rate limit. Prints a line per account on stdout and the
progress on stderr. An account that changed since it was listed is skipped. If the purge stops midway, run
it again: it only finds what is left.`,
		stdout, stderr)
	var opts client.PurgeOptions
	c.fs.DurationVar(&opts.OlderThan, "older-than", 0, "required: only accounts with no delivery for this long, at least 1m; e.g. 720h for 30 days")
	c.fs.BoolVar(&opts.DryRun, "dry-run", false, "list the accounts that would be deleted; delete nothing")
	limit := c.fs.Int("limit", 0, "stop after this many accounts; 0: no limit")
	cl, _, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	if opts.OlderThan == 0 {
		return usageError{fmt.Errorf("older-than: required, e.g. --older-than 720h (30 days)")}
	}
	opts.Limit = int32(*limit)

	bar := newProgress(stderr)
	counts := map[ahv1.DeletionOutcome]int{}
	var total, printed int32
	var writeErr error
	err = cl.PurgeFailed(ctx, opts, func(r *ahv1.PurgeFailedAccountsResponse) {
		res := r.GetResult()
		if res == nil {
			return // the one message of a purge that selected nothing
		}
		counts[res.GetOutcome()]++
		total = r.GetTotal()
		bar.clear()
		if printed++; writeErr == nil {
			writeErr = printPurgeResult(stdout, c.output, r, printed == 1)
		}
		bar.update(r.GetProcessed(), r.GetTotal())
	})
	bar.clear()
	if err != nil {
		return c.explain(err, "")
	}
	if writeErr != nil {
		return writeErr
	}
	failed := counts[ahv1.DeletionOutcome_DELETION_OUTCOME_FAILED]
	switch {
	case total == 0:
		fmt.Fprintf(stderr, "no failed account that never connected has been idle for %s: nothing to purge\n", shortDuration(opts.OlderThan))
	case opts.DryRun:
		fmt.Fprintf(stderr, "dry run: %d accounts would be deleted; run again without --dry-run to delete them\n", counts[ahv1.DeletionOutcome_DELETION_OUTCOME_WOULD_DELETE])
	default:
		fmt.Fprintf(stderr, "purged %d accounts: %d deleted, %d already gone, %d skipped (changed since listed), %d failed\n", total,
			counts[ahv1.DeletionOutcome_DELETION_OUTCOME_DELETED], counts[ahv1.DeletionOutcome_DELETION_OUTCOME_ALREADY_GONE],
			counts[ahv1.DeletionOutcome_DELETION_OUTCOME_SKIPPED], failed)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d accounts could not be deleted (their lines above say why); run the same command again to retry them", failed, total)
	}
	return nil
}

// A purge prints each account as it is done, so its columns have fixed
// widths: the longest outcome, a provider's account id, a time; the
// message, which says why a deletion failed, is never cut.
var (
	purgeColumns = []string{"OUTCOME", "ACCOUNT", "LAST EVENT", "MESSAGE"}
	purgeWidths  = []int{12, 36, 19, 0}
	purgeKeep    = []bool{false, true, false, true}
)

// printPurgeResult prints r, under the header when first is set.
func printPurgeResult(w io.Writer, output string, r *ahv1.PurgeFailedAccountsResponse, first bool) error {
	if output == "json" {
		return printJSON(w, r)
	}
	res := r.GetResult()
	line := fitRow(purgeWidths, purgeKeep, []string{enumName(res.GetOutcome()), res.GetAccountId(), cellTime(res.GetLastEventAt()), or(res.GetMessage())}) + "\n"
	if first {
		line = fitRow(purgeWidths, purgeKeep, purgeColumns) + "\n" + line
	}
	_, err := io.WriteString(w, line)
	return err
}

// shortDuration prints 720h rather than 720h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// progress shows how far a long run is: a bar redrawn in place on a
// terminal, else a line at every tenth, so that logs stay short.
type progress struct {
	w     io.Writer
	tty   bool
	drawn bool // a bar is on the terminal's current line
	tenth int32
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	if !ok {
		return &progress{w: w}
	}
	fi, err := f.Stat()
	return &progress{w: w, tty: err == nil && fi.Mode()&os.ModeCharDevice != 0}
}

func (p *progress) update(done, total int32) {
	if total <= 0 {
		return
	}
	if p.tty {
		const width = 30
		filled := int(width * done / total)
		fmt.Fprintf(p.w, "\r[%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total)
		p.drawn = true
		return
	}
	if tenth := done * 10 / total; tenth > p.tenth {
		fmt.Fprintf(p.w, "progress: %d of %d accounts\n", done, total)
		p.tenth = tenth
	}
}

// clear removes the bar, so that a line printed next starts clean.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}
