// Command accounthealth-bench measures the service as a user runs it: it
// builds cmd/accounthealth, runs it in a process of its own on SQLite and
// PostgreSQL, and drives it from this process, beside no-op baselines
// measured in the same run (see docs/benchmarks.md). It is a development
// tool, not part of the shipped binary: `bash bench/run` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if child() {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var void voidError
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, &void):
		fmt.Fprintln(os.Stderr, "accounthealth-bench: the run is void:", err)
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "accounthealth-bench:", err)
		os.Exit(1)
	}
}

// child runs the tool's executable as one of its helper processes, the
// no-op server or the stream subscribers, when the environment asks for
// one, and reports whether it did.
func child() bool {
	var err error
	switch {
	case os.Getenv(noopEnv) != "":
		err = runNoop()
	case os.Getenv(subscribersEnv) != "":
		err = runSubscribers(os.Getenv(subscribersEnv))
	default:
		return false
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "accounthealth-bench:", err)
		os.Exit(1)
	}
	return true
}

// config is the tool's flags.
type config struct {
	accounts    int64
	duration    time.Duration
	senders     []int
	concurrency int
	subscribers int
	// fanoutSubscribers: a stream fan-out row for each; fanoutRate paces
	// their deliveries.
	fanoutSubscribers []int
	fanoutRate        float64
	stores            []string
	databaseURL       string
	jsonPath          string
	markdown          string
	profile           string
}

func parseConfig(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("accounthealth-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var senders, fanout, stores string
	smoke := fs.Bool("smoke", false, "a run of a few seconds that exercises every row (the test suite's); its figures mean nothing")
	fs.Int64Var(&c.accounts, "accounts", 20000, "accounts in the store for the read rows (filled after the intake rows, one delivery each)")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "how long each row runs")
	fs.StringVar(&senders, "senders", "1,16,64", "comma-separated numbers of concurrent webhook senders, one intake row each")
	fs.IntVar(&c.concurrency, "concurrency", 50, "concurrent callers of the read rows")
	fs.IntVar(&c.subscribers, "subscribers", 200, "StreamDisconnections subscribers (NDJSON over REST, in a process of their own) reading while intake runs at the most senders; 0: no such row")
	fs.StringVar(&fanout, "fanout-subscribers", "1,1000", "comma-separated numbers of StreamDisconnections subscribers (NDJSON over REST, in a process of their own) for the stream fan-out rows, 1 delivery in 10 an event (at the most subscribers, also every delivery); empty: no such rows")
	fs.Float64Var(&c.fanoutRate, "fanout-rate", 1000, "deliveries per second the fan-out rows send, paced")
	fs.StringVar(&stores, "stores", "sqlite,postgres", "comma-separated stores to measure: sqlite, postgres")
	fs.StringVar(&c.databaseURL, "database-url", "", "PostgreSQL database to use, empty (default: a fresh schema on the server the tests find: $ACCOUNTHEALTH_TEST_DATABASE_URL, else 127.0.0.1:5432)")
	fs.StringVar(&c.jsonPath, "json", "accounthealth-bench.json", "file for every figure and the machine, as JSON")
	fs.StringVar(&c.markdown, "markdown", "", "file for the Markdown tables (default: stdout)")
	fs.StringVar(&c.profile, "profile", "", "directory for pprof CPU and allocation profiles of the service under intake at the most senders, under GetAccountHealth and in the fan-out to the most subscribers (one delivery in ten an event): <store>-<intake|GetAccountHealth|fanout>-cpu.pprof and -allocs.pprof (runs serve with --pprof)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *smoke {
		c.accounts, c.duration, senders, c.concurrency, c.subscribers = 200, 300*time.Millisecond, "1,4", 4, 4
		fanout, c.fanoutRate = "1,4", 200
	}
	var err error
	if c.senders, err = positiveList("senders", senders); err != nil {
		return c, err
	}
	if fanout != "" {
		if c.fanoutSubscribers, err = positiveList("fanout-subscribers", fanout); err != nil {
			return c, err
		}
	}
	for _, s := range strings.Split(stores, ",") {
		switch s = strings.TrimSpace(s); s {
		case storeSQLite, storePostgres:
			c.stores = append(c.stores, s)
		default:
			return c, fmt.Errorf("stores: %q is not sqlite or postgres", s)
		}
	}
	if c.accounts < 1 || c.duration <= 0 || c.concurrency < 1 || c.subscribers < 0 || !(c.fanoutRate > 0) {
		return c, errors.New("accounts, duration, concurrency and fanout-rate must be positive, subscribers not negative")
	}
	return c, nil
}

// positiveList parses a flag's comma-separated positive numbers.
func positiveList(flag, list string) ([]int, error) {
	var ns []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a positive number", flag, s)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// voidError: the run measured something other than what it claims (its
// ledger did not balance), so none of its figures stand.
type voidError struct{ err error }

func (e voidError) Error() string { return e.err.Error() }
func (e voidError) Unwrap() error { return e.err }
