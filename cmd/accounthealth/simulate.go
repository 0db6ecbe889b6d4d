package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/accounthealth/accounthealth/server/provider/simulate"
)

// runSimulate plays the provider against a running server:
//
//	accounthealth simulate [flags] scenario...      each scenario on its own account(s)
//	accounthealth simulate --accounts N --rate R    load: N accounts living realistic lives
//
// The server is named by --webhook-url (ACCOUNTHEALTH_WEBHOOK_URL, after
// the envName convention), and the deliveries are signed with
// --webhook-secret, read from the same ACCOUNTHEALTH_WEBHOOK_SECRET as
// serve's so that one variable configures both.
func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("simulate", "simulate [flags] [scenario...]", stderr)
	var f simulateFlags
	f.register(fs)
	flagUsage := fs.Usage
	fs.Usage = func() {
		flagUsage()
		fmt.Fprintln(stderr, "\nScenarios:")
		listScenarios(stderr)
	}
	names, err := parseWithNames(fs, args)
	if err != nil {
		return err
	}
	if f.list {
		listScenarios(stdout)
		return nil
	}
	load := len(names) == 0
	rep := &reporter{w: stdout, json: f.output == "json", quiet: load}
	g, deliveries, sender, err := f.setup(names, rep, stderr)
	if err != nil {
		return usageError{err}
	}

	var st simulate.Stats
	if load {
		st, err = sender.Load(ctx, g, simulate.Load{Accounts: f.accounts, Duration: f.duration})
		if err != nil {
			return usageError{err}
		}
	} else {
		st = sender.Send(ctx, deliveries)
	}
	if rep.err != nil {
		return fmt.Errorf("writing results: %w", rep.err)
	}
	printSummary(stderr, st, f.rate)
	switch {
	case st.OK < st.Sent:
		return rep.refusals(st, f.unsigned)
	case !load && ctx.Err() != nil:
		return errors.New("interrupted before every delivery was sent")
	}
	return nil
}

// simulateFlags are simulate's settings, from the command line or the
// environment.
type simulateFlags struct {
	target, name, output          string
	secrets                       []string
	unsigned, includeResource     bool
	list                          bool
	accounts, concurrency         int
	rate, duplicates, reorder     float64
	duration, timeout, retryDelay time.Duration
	seed                          int64
}

func (f *simulateFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.target, "webhook-url", "http://127.0.0.1:8080", "the server's webhook listener (serve's --webhook-addr); "+simulate.WebhookPath+" is added")
	fs.Var((*secretList)(&f.secrets), "webhook-secret", "secret to sign with, as given to serve; of a comma-separated list the last one signs")
	fs.BoolVar(&f.unsigned, "unsigned", false, "send no signature (the server must run with --allow-unsigned-webhooks)")
	fs.BoolVar(&f.includeResource, "include-resource", true, "carry the account object in every accounts.* delivery; false sends lean deliveries")
	fs.StringVar(&f.name, "subscription-name", simulate.DefaultSubscriptionName, `the subscription "name" every delivery carries`)
	fs.IntVar(&f.accounts, "accounts", 0, "without a scenario: load mode with this many accounts; with scenarios: accounts per scenario (0 means 1)")
	fs.Float64Var(&f.rate, "rate", 0, "deliveries per second at most; load mode needs it, scenarios without it go as fast as the server answers")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long load mode sends")
	fs.Float64Var(&f.duplicates, "duplicates", 0, "fraction of deliveries sent twice, byte-identical")
	fs.Float64Var(&f.reorder, "reorder", 0, "fraction of adjacent pairs of one account's deliveries sent swapped")
	fs.Int64Var(&f.seed, "seed", 0, "reproduce life cycles, duplicates, swaps and the random parts of ids and timestamps; 0 picks at random (time still starts now, so runs do not collide)")
	fs.IntVar(&f.concurrency, "concurrency", 0, fmt.Sprintf("requests in flight at most; 0: one at a time for scenarios, in story order, and %d for load", simulate.DefaultConcurrency))
	fs.DurationVar(&f.timeout, "timeout", simulate.DefaultTimeout, "time limit of each request")
	fs.DurationVar(&f.retryDelay, "retry-delay", simulate.DefaultRetryDelay, "wait before the one retry after a 429, a 5xx or no answer")
	fs.BoolVar(&f.list, "list", false, "list the scenarios and exit")
	fs.StringVar(&f.output, "o", "text", "text: a line per delivery (in load mode only those not accepted); json: a JSON object per delivery")
}

// setup checks the settings, reporting every problem at once, and prepares
// the run: the generator, the deliveries of the named scenarios (none in
// load mode) and the sender, which reports to rep and, in load mode, its
// progress to stderr.
func (f *simulateFlags) setup(names []string, rep *reporter, stderr io.Writer) (*simulate.Generator, []simulate.Delivery, *simulate.Sender, error) {
	load := len(names) == 0
	var errs []error
	if f.output != "text" && f.output != "json" {
		errs = append(errs, fmt.Errorf("o: %q is not text or json", f.output))
	}
	secret := ""
	if !f.unsigned {
		if len(f.secrets) == 0 || f.secrets[len(f.secrets)-1] == "" {
			errs = append(errs, errors.New("webhook-secret: required to sign deliveries (or --unsigned)"))
		} else {
			secret = f.secrets[len(f.secrets)-1]
		}
	}
	switch {
	case f.accounts < 0:
		errs = append(errs, fmt.Errorf("accounts: %d is negative", f.accounts))
	case load && f.accounts == 0:
		errs = append(errs, errors.New("name a scenario (see --list), or give --accounts and --rate for a load run"))
	case load && (f.rate <= 0 || f.duration <= 0):
		errs = append(errs, errors.New("rate, duration: a load run needs both positive"))
	}
	g := simulate.NewGenerator(simulate.Options{Name: f.name, Lean: !f.includeResource, Seed: f.seed})
	var deliveries []simulate.Delivery
	for _, n := range names {
		for range max(f.accounts, 1) {
			ds, err := g.Play(n)
			if err != nil {
				errs = append(errs, err)
				break
			}
			deliveries = append(deliveries, ds...)
		}
	}
	cfg := simulate.Config{
		URL: f.target, Secret: secret, Timeout: f.timeout, RetryDelay: f.retryDelay, Concurrency: f.concurrency,
		Rate: f.rate, Duplicates: f.duplicates, Reorder: f.reorder, Seed: f.seed, OnResult: rep.result,
	}
	if load {
		cfg.OnProgress = func(st simulate.Stats) { printProgress(stderr, st) }
	} else if cfg.Concurrency == 0 {
		cfg.Concurrency = 1
	}
	sender, err := simulate.NewSender(cfg)
	if err != nil {
		errs = append(errs, err)
	}
	return g, deliveries, sender, errors.Join(errs...)
}

// parseWithNames parses flags and scenario names in any order (parseFlags
// alone takes no arguments besides flags), then lets the environment fill
// the flags not given.
func parseWithNames(fs *flag.FlagSet, args []string) ([]string, error) {
	var names []string
	for {
		if err := parseArgs(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		args = fs.Args()[1:]
	}
	// The flag set remembers the flags already given, so parsing nothing
	// more only reads the environment for the others.
	return names, parseFlags(fs, nil)
}

func listScenarios(w io.Writer) {
	for _, s := range simulate.Scenarios() {
		fmt.Fprintf(w, "  %-24s %s\n", s.Name, s.Description)
	}
	fmt.Fprintf(w, "  %-24s %s\n", simulate.AllScenarios, "every scenario above, each on its own account")
	fmt.Fprintf(w, "  %-24s %s\n", simulate.ItemOutageScenario, simulate.ItemOutageDescription)
}

// reporter writes each delivery's result as it comes and remembers the
// first refusal of each HTTP status for the final error.
type reporter struct {
	w     io.Writer
	json  bool
	quiet bool // text lines only for deliveries not accepted
	err   error
	first map[int]simulate.Result
}

func (r *reporter) result(res simulate.Result) {
	if !res.OK() {
		if r.first == nil {
			r.first = map[int]simulate.Result{}
		}
		if _, seen := r.first[res.Status]; !seen {
			r.first[res.Status] = res
		}
	}
	if r.err != nil {
		return
	}
	switch {
	case r.json:
		b, err := json.Marshal(res)
		if err == nil {
			_, err = fmt.Fprintf(r.w, "%s\n", b)
		}
		r.err = err
	case !r.quiet || !res.OK():
		_, r.err = fmt.Fprintln(r.w, line(res))
	}
}

// line is a delivery's result for a person, e.g.
// "failed-login  accounts.failed  0190d2f1-8c2e-7a4b-9d1e-5c8a1e2f4c22  200 APPLIED",
// the whole account id, to paste into other commands.
func line(r simulate.Result) string {
	status, what := "---", r.Outcome
	if r.Status != 0 {
		status = fmt.Sprint(r.Status)
	}
	if !r.OK() {
		what = r.Error
	}
	if r.Duplicate {
		what += " (duplicate)"
	}
	if r.Reordered {
		what += " (reordered)"
	}
	return fmt.Sprintf("%-23s  %-18s  %-36s  %s %s", cmp.Or(r.Scenario, "-"), r.Event, r.Account, status, what)
}

// refusals is the error for a run with deliveries not accepted: how many,
// and for each status seen, one example and what to check.
func (r *reporter) refusals(st simulate.Stats, unsigned bool) error {
	msg := fmt.Sprintf("%d of %d deliveries were not accepted", st.Sent-st.OK, st.Sent)
	for _, status := range slices.Sorted(maps.Keys(r.first)) {
		res, answer := r.first[status], fmt.Sprint(status)
		if status == 0 {
			answer = "no answer"
		}
		msg += fmt.Sprintf("\n  %s %s: %s: %s — %s", res.Event, res.Account, answer, res.Error, hint(status, unsigned))
	}
	return errors.New(msg)
}

// hint says what to check for a delivery answered with status.
func hint(status int, unsigned bool) string {
	switch {
	case status == 0:
		return "is the server running at --webhook-url?"
	case status == http.StatusUnauthorized && unsigned:
		return "the server takes unsigned deliveries only with --allow-unsigned-webhooks"
	case status == http.StatusUnauthorized:
		return "check --webhook-secret matches the server's"
	case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
		return "check --webhook-url points at the server's webhook listener"
	case status == http.StatusRequestEntityTooLarge:
		return "the server's --max-body-bytes is below the delivery's size"
	case status == http.StatusBadRequest:
		return "the server could not decode the delivery"
	default:
		return "the server did not take it, even after a retry"
	}
}

// printProgress reports a load run's last second.
func printProgress(w io.Writer, st simulate.Stats) {
	missed := ""
	if st.Missed > 0 {
		missed = fmt.Sprintf("  missed %d (server behind)", st.Missed)
	}
	fmt.Fprintf(w, "%6.1fs  sent %d  ok %d  failed %d  rate %.1f/s  p50 %v  p99 %v%s\n",
		st.Elapsed.Seconds(), st.Sent, st.OK, st.Sent-st.OK, st.Rate, roundLatency(st.P50), roundLatency(st.P99), missed)
}

// printSummary is the run's last word, on stderr so that -o json output
// stays one result per line.
func printSummary(w io.Writer, st simulate.Stats, rate float64) {
	outcomes := ""
	for _, o := range slices.Sorted(maps.Keys(st.Outcomes)) {
		outcomes += fmt.Sprintf(", %s %d", o, st.Outcomes[o])
	}
	if outcomes != "" {
		outcomes = " (" + outcomes[2:] + ")"
	}
	fmt.Fprintf(w, "sent %d deliveries in %.1fs (%.1f/s): %d accepted%s, %d refused, %d failed, %d retried; latency p50 %v p99 %v\n",
		st.Sent, st.Elapsed.Seconds(), st.Rate, st.OK, outcomes, st.Refused, st.Failed, st.Retried,
		roundLatency(st.P50), roundLatency(st.P99))
	if st.Missed > 0 {
		fmt.Fprintf(w, "the server did not keep up with %.0f/s: %d sends were skipped while every account waited for an answer (or --concurrency requests were in flight)\n", rate, st.Missed)
	}
}

// roundLatency keeps about three significant digits: 1.23ms, 12.3ms.
func roundLatency(d time.Duration) time.Duration {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
