package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/accounthealth/accounthealth/client"
	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "health", []subcommand{
		{"get", "ID", "one account's health, and what the user must do about it", runHealthGet},
		{"list", "", "accounts by user, state, data freshness or error code, a page or all", runHealthList},
		{"summary", "", "how many accounts are in each state, of each data freshness and have each error code", runHealthSummary},
		{"refresh", "ID", "fetch the account from the provider now and show the resulting health", runHealthRefresh},
	}, args, stdout, stderr)
}

func runHealthGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("health get", "health get ID [flags]",
		"Shows one account's health: its state and since when, the error, and the remedy (what the user must do, and\nhow to open Link for it).",
		stdout, stderr, "ID")
	cl, names, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	h, err := cl.Health(ctx, names[0])
	if err != nil {
		return c.explain(err, names[0])
	}
	if c.output == "json" {
		return printJSON(stdout, h)
	}
	var d details
	row := d.row
	row("account", h.GetAccountId())
	row("user", or(h.GetUserId()))
	if h.GetItem() != "" {
		row("platform", h.GetItem())
	}
	row("state", enumName(h.GetState())+" since "+when(h.GetStateSince()))
	freshnessRows(&d, h.GetFreshness())
	if h.GetErrorCode() != "" {
		row("error", h.GetErrorCode()+": "+or(h.GetErrorMessage()))
	}
	row("remedy", remedyText(h.GetRemedy()))
	if l := h.GetRemedy().GetLink(); l != nil {
		row("link", linkText(l))
	}
	row("last event", or(h.GetLastEventType())+" at "+when(h.GetLastEventAt()))
	if n := h.GetConsecutiveFailures(); n > 0 {
		row("failures", fmt.Sprintf("%d in a row", n))
	}
	row("connected", map[bool]string{true: "yes, at least once", false: "never"}[h.GetEverConnected()])
	if h.GetUnconfirmed() {
		row("unconfirmed", "a delivery came without the account object: the state may lag behind until the account is fetched")
	}
	return d.print(stdout)
}

// freshnessRows adds a HEALTHY account's data freshness to d; other
// states have none.
func freshnessRows(d *details, f *ahv1.Freshness) {
	if f == nil {
		return
	}
	d.row("freshness", enumName(f.GetStatus())+" since "+when(f.GetSince())+": "+f.GetMessage())
	if len(f.GetFailedDatasets()) > 0 {
		d.row("failed data", strings.Join(f.GetFailedDatasets(), ", "))
	}
	if f.GetScannedAt() != nil {
		d.row("last scan", when(f.GetScannedAt()))
	}
}

// remedyText is "RETRY_MFA: The multi-factor ...".
func remedyText(r *ahv1.Remedy) string {
	if r.GetMessage() == "" {
		return enumName(r.GetAction())
	}
	return enumName(r.GetAction()) + ": " + r.GetMessage()
}

func linkText(l *ahv1.LinkParameters) string {
	if l.GetAccountId() == "" {
		return "open Link for user " + l.GetUserId() + " to connect a new account"
	}
	return "open Link for user " + l.GetUserId() + " with accountId " + l.GetAccountId()
}

func runHealthList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	l := newHealthList(stdout, stderr)
	cl, _, err := l.c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	opts, err := l.options()
	if err != nil {
		return err
	}
	l.tw = newTable(stdout, l.wide, l.columns()...)
	next, err := l.list(ctx, cl, opts)
	if err != nil {
		return err
	}
	if err := l.tw.flush(); err != nil {
		return err
	}
	l.report(opts, next)
	return nil
}

// healthList is health list's flags, and what it has printed.
type healthList struct {
	c              *clientCommand
	opts           client.ListOptions // the flags bound to it directly
	states         enumFlag[ahv1.HealthState]
	freshness      enumFlag[ahv1.FreshnessStatus]
	codes          listFlag
	order          enumFlag[ahv1.AccountOrder]
	pageSize       int
	all, ids, wide bool
	tw             *table
	n              int // accounts printed
}

func newHealthList(stdout, stderr io.Writer) *healthList {
	l := &healthList{c: newClientCommand("health list", "health list [flags]",
		"Lists accounts ordered by id (or --order), one page at a time (--all for every page). Filters of different\nflags all apply; repeated flags, or comma-separated values, match any of them.",
		stdout, stderr)}
	fs := l.c.fs
	fs.StringVar(&l.opts.UserID, "user", "", "only this user's accounts")
	fs.StringVar(&l.opts.Item, "item", "", "only accounts on this payroll platform, e.g. item_000077001")
	fs.Var(&l.states, "state", "only accounts in this state: "+enumChoices(ahv1.HealthState(0).Descriptor()))
	fs.Var(&l.freshness, "freshness", "only HEALTHY accounts whose data is: "+enumChoices(ahv1.FreshnessStatus(0).Descriptor()))
	fs.Var(&l.codes, "error-code", "only accounts with this error code, e.g. auth_required")
	fs.IntVar(&l.pageSize, "page-size", 50, "accounts per page, 0..500 (0: the server's default, 50)")
	fs.StringVar(&l.opts.PageToken, "page-token", "", "start at this page (a previous list says when there are more)")
	fs.Var(&l.order, "order", "by time in state instead of id: "+enumChoices(ahv1.AccountOrder(0).Descriptor())+" (ASC: the longest in their state first)")
	fs.BoolVar(&l.all, "all", false, "list every page")
	fs.BoolVar(&l.ids, "ids", false, "print only the account ids, one a line, whatever -o says: ID=$(accounthealth health list --error-code invalid_mfa --ids)")
	registerWide(fs, &l.wide, "REMEDY and USER")
	return l
}

// options are the call's, from the parsed flags.
func (l *healthList) options() (client.ListOptions, error) {
	opts := l.opts
	opts.States, opts.Freshness, opts.ErrorCodes, opts.PageSize = l.states.values, l.freshness.values, l.codes, int32(l.pageSize)
	if len(l.order.values) > 1 {
		return opts, usageError{fmt.Errorf("order: takes one order, not %s", l.order.String())}
	}
	if len(l.order.values) == 1 {
		opts.Order = l.order.values[0]
	}
	return opts, nil
}

// columns are the table's. A HEALTHY account has no error code and the
// others no freshness: one column holds either, where two would not fit
// 100 columns beside an id as long as the provider's.
func (l *healthList) columns() []string {
	columns := []string{"ACCOUNT!", "STATE", "ERROR/FRESHNESS", "SINCE"}
	if l.wide {
		columns = append(columns, "REMEDY", "USER")
	}
	return columns
}

// list prints a page, or every page with --all, and returns the next
// page's token.
func (l *healthList) list(ctx context.Context, cl *client.Client, opts client.ListOptions) (string, error) {
	if l.all {
		for h, err := range cl.AllHealth(ctx, opts) {
			if err != nil {
				return "", l.c.explain(err, "")
			}
			if err := l.emit(h); err != nil {
				return "", err
			}
		}
		return "", nil
	}
	page, err := cl.ListHealth(ctx, opts)
	if err != nil {
		return "", l.c.explain(err, "")
	}
	for _, h := range page.GetAccounts() {
		if err := l.emit(h); err != nil {
			return "", err
		}
	}
	return page.GetNextPageToken(), nil
}

func (l *healthList) emit(h *ahv1.AccountHealth) error {
	switch l.n++; {
	case l.ids: // over -o, which may come from the environment
		_, err := fmt.Fprintln(l.c.stdout, h.GetAccountId())
		return err
	case l.c.output == "json":
		return printJSON(l.c.stdout, h)
	}
	f := h.GetFreshness()
	problem, _ := errorOrFreshness(h.GetErrorCode(), f.GetStatus(), f.GetFailedDatasets())
	row := []string{h.GetAccountId(), enumName(h.GetState()), problem, cellTime(h.GetStateSince())}
	if l.wide {
		row = append(row, enumName(h.GetRemedy().GetAction()), or(h.GetUserId()))
	}
	return l.tw.add(row...)
}

// report says on stderr why nothing was listed, or how to see more.
func (l *healthList) report(opts client.ListOptions, next string) {
	filtered := opts.UserID != "" || opts.Item != "" || len(opts.States) > 0 || len(opts.Freshness) > 0 || len(opts.ErrorCodes) > 0
	switch {
	case l.n == 0 && filtered:
		fmt.Fprintln(l.c.stderr, "no account matches these filters")
	case l.n == 0:
		fmt.Fprintln(l.c.stderr, "no accounts yet: no delivery naming one has been accepted")
	case next != "":
		fmt.Fprintf(l.c.stderr, "more accounts: --page-token %s shows the next page, --all shows every page\n", next)
	}
}

// errorOrFreshness is an ERROR/FRESHNESS cell: the error code, or the
// data freshness of a HEALTHY account, which has no error code (then
// isFreshness); "-" when neither is known.
func errorOrFreshness(code string, f ahv1.FreshnessStatus, failed []string) (cell string, isFreshness bool) {
	if code == "" && f != ahv1.FreshnessStatus_FRESHNESS_STATUS_UNSPECIFIED {
		return freshnessText(f, failed), true
	}
	return or(code), false
}

// freshnessText is a data freshness for people: FRESH, STALE,
// REFRESH_DISABLED, or SYNC_FAILED(paystubs,shifts) with the datasets
// that failed.
func freshnessText(s ahv1.FreshnessStatus, failed []string) string {
	if s == ahv1.FreshnessStatus_FRESHNESS_STATUS_SYNC_FAILED && len(failed) > 0 {
		return enumName(s) + "(" + strings.Join(failed, ",") + ")"
	}
	return enumName(s)
}

func runHealthSummary(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("health summary", "health summary [flags]",
		"Counts accounts by state (every state, zeros too), HEALTHY ones by data freshness (every status, zeros\ntoo), and accounts by current error code.", stdout, stderr)
	cl, _, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	sum, err := cl.Summary(ctx)
	if err != nil {
		return c.explain(err, "")
	}
	if c.output == "json" {
		return printJSON(stdout, sum)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "STATE\tACCOUNTS\n")
	for _, s := range sum.GetByState() {
		fmt.Fprintf(tw, "%s\t%d\n", enumName(s.GetState()), s.GetCount())
	}
	fmt.Fprintf(tw, "all\t%d\n", sum.GetTotal())
	fmt.Fprintf(tw, "\nFRESHNESS\tHEALTHY ACCOUNTS\n")
	for _, f := range sum.GetByFreshness() {
		fmt.Fprintf(tw, "%s\t%d\n", enumName(f.GetStatus()), f.GetCount())
	}
	if len(sum.GetByErrorCode()) > 0 {
		fmt.Fprintf(tw, "\nERROR CODE\tACCOUNTS\n")
		for _, e := range sum.GetByErrorCode() {
			fmt.Fprintf(tw, "%s\t%d\n", e.GetErrorCode(), e.GetCount())
		}
	}
	return tw.Flush()
}

func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("events", "events ID [flags]",
		"Shows an account's timeline, oldest first: every delivery accepted for it, what it did, and the health\nchanges it caused; also the actions taken through the API (deletions), with who asked.",
		stdout, stderr, "ID")
	var wide bool
	registerWide(c.fs, &wide, "")
	cl, names, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	tw := newTable(stdout, wide, "SEQ!", "RECEIVED", "SOURCE", "EVENT", "OUTCOME", "CHANGE")
	n := 0
	for ev, err := range cl.AllEvents(ctx, names[0], client.PageOptions{PageSize: 500}) {
		if err != nil {
			return c.explain(err, names[0])
		}
		if n++; c.output == "json" {
			if err := printJSON(stdout, ev); err != nil {
				return err
			}
			continue
		}
		source := ev.GetSource()
		if ev.GetActor() != "" {
			source += " by " + ev.GetActor()
		}
		outcome := enumName(ev.GetOutcome())
		if r := ev.GetRedeliveries(); r > 0 {
			outcome += fmt.Sprintf(" (+%d redelivered)", r)
		}
		if err := tw.add(fmt.Sprint(ev.GetSequence()), cellTime(ev.GetReceivedAt()), source, ev.GetEventType(), outcome, changeText(ev.GetTransition())); err != nil {
			return err
		}
	}
	return tw.flush()
}

// changeText is a health change for people: "HEALTHY → DISCONNECTED
// (auth_required)", or within HEALTHY "FRESH → SYNC_FAILED(paystubs)".
func changeText(t *ahv1.HealthTransition) string {
	if t == nil {
		return "-"
	}
	switch t.GetKind() {
	case ahv1.TransitionKind_TRANSITION_KIND_FRESHNESS_LOST, ahv1.TransitionKind_TRANSITION_KIND_FRESHNESS_RESTORED:
		return freshnessText(t.GetPreviousFreshness(), nil) + " → " + freshnessText(t.GetFreshness(), t.GetFailedDatasets())
	}
	from := enumName(t.GetPreviousState())
	if t.GetPreviousState() == ahv1.HealthState_HEALTH_STATE_UNSPECIFIED {
		from = "new"
	}
	s := from + " → " + enumName(t.GetState())
	if t.GetErrorCode() != "" {
		s += " (" + t.GetErrorCode() + ")"
	}
	return s
}
