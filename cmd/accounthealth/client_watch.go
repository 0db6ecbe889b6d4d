package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/client"
	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("watch", "watch [flags]",
		`Prints disconnections as they happen, one line each: when, kind, account, error code, and the remedy (--wide
adds the user, the date and the remedy's message). An account HEALTHY after the event has no error code:
its data freshness stands in its place, e.g. SYNC_FAILED(paystubs).
It reconnects by itself when the server restarts, missing nothing. With --resume-file, a watch that is
stopped and started again misses nothing either: it starts right after the last event it printed.
-o json prints each event as a JSON object, with its cursor. Stop it with Ctrl-C.`,
		stdout, stderr)
	var users, codes, items listFlag
	var kinds enumFlag[ahv1.TransitionKind]
	c.fs.Var(&users, "user", "only this user's accounts (repeat or comma-separate for several)")
	c.fs.Var(&kinds, "kind", "only these kinds: "+enumChoices(ahv1.TransitionKind(0).Descriptor())+"; default: every disconnection and correction")
	c.fs.Var(&codes, "error-code", "only disconnections with this error code (removals have none, so this leaves them out)")
	recoveries := c.fs.Bool("include-recoveries", false, "also print accounts coming back to HEALTHY")
	c.fs.Var(&items, "item", "only events of this payroll platform's accounts, and its own (repeat or comma-separate for several)")
	itemEvents := c.fs.Bool("include-item-events", false, "also print payroll platforms' outages beginning and ending")
	freshnessEvents := c.fs.Bool("include-freshness-events", false, "also print HEALTHY accounts whose data goes stale, fails to sync or stops refreshing (FRESHNESS_LOST), and is fresh again (FRESHNESS_RESTORED)")
	since := c.fs.String("since", "", "start with the events since this time: RFC 3339 (2026-01-02T15:04:05Z) or a duration back from now (24h); default: new events only; a cursor in --resume-file wins")
	resumeFile := c.fs.String("resume-file", "", "file keeping the last cursor: read at start to resume right after it, rewritten after each event printed")
	var wide bool
	registerWide(c.fs, &wide, "USER")
	cl, _, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()

	opts := client.WatchOptions{UserIDs: users, Kinds: kinds.values, ErrorCodes: codes, IncludeRecoveries: *recoveries,
		Items: items, IncludeItemEvents: *itemEvents, IncludeFreshnessEvents: *freshnessEvents}
	w := &watcher{c: c, resumeFile: *resumeFile, from: "new events only", wide: wide}
	if *since != "" {
		if opts.Since, err = parseSince(*since, time.Now()); err != nil {
			return usageError{fmt.Errorf("since: %w", err)}
		}
		w.from = "events since " + opts.Since.Local().Format(time.RFC3339)
	}
	if w.resumeFile != "" {
		if w.cursor, err = readCursor(w.resumeFile); err != nil {
			return usageError{fmt.Errorf("resume-file: %w", err)}
		}
		if w.cursor != "" {
			opts.ResumeAfter, opts.Since = w.cursor, time.Time{}
			w.from = "resuming after the cursor in " + w.resumeFile
		}
	}
	opts.OnHeartbeat, opts.OnReconnect = w.heartbeat, w.reconnect
	// One person watches, not a fleet: come back within seconds of the
	// server, rather than the library's 30 s that spread many watchers.
	opts.Backoff = client.Backoff{Max: watchBackoffMax}

	err = cl.Watch(ctx, opts, w.event)
	switch {
	case ctx.Err() != nil:
		return nil // stopped with Ctrl-C
	case opts.ResumeAfter != "" && client.IsInvalidArgument(err) && strings.Contains(err.Error(), "resume_after"):
		return fmt.Errorf("the cursor in %s is not one this server issued (it may come from another server's database): delete the file to start with new events, or start with --since", w.resumeFile)
	}
	return c.explain(err, "")
}

// watcher prints what the stream brings and keeps the resume file.
type watcher struct {
	c          *clientCommand
	resumeFile string
	cursor     string // the one in the resume file
	from       string // where the watch started, for people
	subscribed bool   // a heartbeat came once
	lost       bool   // the stream broke since the last heartbeat
	lastError  string // why it broke, last time
	wide       bool
	headed     bool // the table's header was printed
}

// The watch prints each event as it comes, so its columns have fixed
// widths: a time of day, the usual kinds (REMEDY_RESTORED and the item
// and freshness kinds kept whole, at the cost of the line's alignment:
// cut, they would not read), a provider's account id (kept whole when
// longer), the usual error codes (or a HEALTHY account's freshness), and
// the rest of 100 columns for the remedy's action.
var (
	watchColumns = []string{"TIME", "KIND", "ACCOUNT", "ERROR/FRESHNESS", "REMEDY"}
	watchWidths  = []int{8, 12, 36, 19, 17}
	watchKeep    = []bool{false, true, true, false, false}
	// --wide adds the user, and keeps every cell whole; the layout's
	// length is that of a time with its zone's offset.
	wideWatchColumns = []string{"TIME", "KIND", "ACCOUNT", "USER", "ERROR/FRESHNESS", "REMEDY"}
	wideWatchWidths  = []int{len(time.RFC3339), 12, 36, 36, 19, 0}
	wideWatchKeep    = []bool{true, true, true, true, true, true}
)

func (w *watcher) event(_ context.Context, ev *ahv1.DisconnectionEvent) error {
	if err := w.print(ev); err != nil {
		return err
	}
	return w.keep(ev.GetCursor())
}

// subject is what an event is about: its account, or for an item-wide
// event its item.
func subject(ev *ahv1.DisconnectionEvent) string {
	if ev.GetAccountId() == "" && ev.GetItem() != "" {
		return "item " + ev.GetItem()
	}
	return ev.GetAccountId()
}

func (w *watcher) print(ev *ahv1.DisconnectionEvent) error {
	if w.c.output == "json" {
		return printJSON(w.c.stdout, ev)
	}
	problem, isFreshness := errorOrFreshness(ev.GetErrorCode(), ev.GetFreshness(), ev.GetFailedDatasets())
	columns, widths, keep := watchColumns, watchWidths, watchKeep
	row := []string{clock(ev.GetOccurredAt().AsTime(), time.Now()), enumName(ev.GetKind()), subject(ev), problem, enumName(ev.GetRemedy().GetAction())}
	if w.wide {
		columns, widths, keep = wideWatchColumns, wideWatchWidths, wideWatchKeep
		row = []string{when(ev.GetOccurredAt()), enumName(ev.GetKind()), subject(ev), or(ev.GetUserId()), problem, remedyText(ev.GetRemedy())}
	}
	if isFreshness || ev.GetAccountId() == "" {
		// Cut to the widths, the datasets and the kind of a freshness or
		// an item-wide event would not read (FRESHNESS_LOST and
		// _RESTORED begin alike, as ITEM_OUTAGE_BEGAN and _ENDED do): the
		// cells stay whole, as a long account id does, at the cost of
		// the line's alignment.
		keep = slices.Repeat([]bool{true}, len(row))
	}
	var b strings.Builder
	if !w.headed {
		b.WriteString(fitRow(widths, keep, columns) + "\n")
		w.headed = true
	}
	b.WriteString(fitRow(widths, keep, row) + "\n")
	_, err := io.WriteString(w.c.stdout, b.String())
	return err
}

// clock is t for a narrow column: the local time of day when t is today,
// the date otherwise (--wide and -o json give both).
func clock(t, now time.Time) string {
	t, now = t.Local(), now.Local()
	if t.Year() == now.Year() && t.YearDay() == now.YearDay() {
		return t.Format(time.TimeOnly)
	}
	return t.Format("Jan _2")
}

// heartbeat says when the watch is (again) connected; its cursor resumes
// past the events the filters left out.
func (w *watcher) heartbeat(_ context.Context, hb *ahv1.Heartbeat) error {
	switch {
	case !w.subscribed:
		fmt.Fprintf(w.c.stderr, "watching %s: %s; stop with Ctrl-C\n", w.c.server, w.from)
	case w.lost:
		fmt.Fprintln(w.c.stderr, "reconnected; resuming right after the last event printed")
	}
	w.subscribed, w.lost, w.lastError = true, false, ""
	return w.keep(hb.GetCursor())
}

// watchBackoffMax caps the wait between two reconnections of watch.
const watchBackoffMax = 3 * time.Second

func (w *watcher) reconnect(err error, delay time.Duration) {
	msg := "the server ended the stream"
	var e *client.Error
	switch {
	case errors.As(err, &e) && e.Reason == ahv1.ErrorReason_SHUTTING_DOWN:
		msg = "the server at " + w.c.server + " is shutting down"
	case !errors.Is(err, io.EOF):
		msg = w.c.explain(err, "").Error()
	}
	if msg == w.lastError {
		msg = "still failing" // said in full the first time
	} else {
		w.lastError = msg
	}
	fmt.Fprintf(w.c.stderr, "%s; reconnecting in %s\n", msg, delay.Round(10*time.Millisecond))
	w.lost = true
}

// keep writes cursor to the resume file, if there is one and it changed.
func (w *watcher) keep(cursor string) error {
	if w.resumeFile == "" || cursor == w.cursor {
		return nil
	}
	if err := writeFileAtomic(w.resumeFile, []byte(cursor+"\n")); err != nil {
		return fmt.Errorf("resume-file: %w", err)
	}
	w.cursor = cursor
	return nil
}

// readCursor returns the cursor in path; "" when the file does not exist yet.
func readCursor(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return strings.TrimSpace(string(b)), err
}

// writeFileAtomic replaces path with data so that a crash at any moment
// leaves either the old content or the new, never a torn file.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// parseSince reads an RFC 3339 time, or a duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-01-02T15:04:05Z) nor a positive duration (24h)", s)
}
