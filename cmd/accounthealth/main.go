// Command accounthealth runs the account health service and talks to it.
//
//	accounthealth serve [flags]                 run the service
//	accounthealth simulate [flags] [scenario]   send realistic signed deliveries to it
//	accounthealth fake-provider [flags]         a fake provider API for local runs
//
// Every flag can also be set with an environment variable ACCOUNTHEALTH_<FLAG>,
// the flag's name in upper snake case (--webhook-addr: ACCOUNTHEALTH_WEBHOOK_ADDR).
// A flag on the command line wins over the environment.
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
)

// exit codes a script can branch on.
const (
	exitOK       = 0
	exitError    = 1 // the command ran and failed
	exitUsage    = 2 // the command line or configuration is wrong
	exitNotFound = 3 // the account asked about is unknown to the server
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the service (webhook intake, gRPC API, REST gateway)", runServe},
		{"simulate", "send realistic signed webhook deliveries to a running server", runSimulate},
		{"fake-provider", "serve a fake of the provider's API that sends webhooks back (local runs)", runFakeProvider},
		{"health", "ask a running server about accounts: get ID, list, summary, refresh ID", runHealth},
		{"events", "an account's timeline: deliveries, outcomes, health changes", runEvents},
		{"watch", "print disconnections as they happen; resumable", runWatch},
		{"delete-failed", "delete, at the provider, an account whose login failed", runDeleteFailed},
		{"purge-failed", "delete every failed account idle for longer than a duration", runPurgeFailed},
		{"sync", "backfill every account from the provider's list into the server's store", runSync},
		{"reconnect-link", "a Link user token and parameters that open Link at an account to fix it", runReconnectLink},
		{"reconnect-invite", "re-send the user's original invite, never a new one", runReconnectInvite},
		{"webhooks", "list, create or delete webhook subscriptions at the provider", runWebhooks},
		{"endpoints", "outbound webhook endpoints: add, list, get, update, disable, enable, delete, rotate-secret, test, messages, attempts, replay, retry", runEndpoints},
		{"token", "make an internal API token (token new NAME)", runToken},
		{"rebuild", "re-derive every account's health from the log under this binary's rules", runRebuild},
		{"check", "check every record against its log, and the change log's order (read-only)", runCheck},
		{"version", "print the version, the commit and the Go version of this binary", runVersion},
		{"completion", "print the shell completion script: completion bash|zsh|fish", runCompletion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		args = []string{"version"}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == completeCommand {
		complete(ctx, args[1:], stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			switch {
			case err == nil:
				return exitOK
			case errors.Is(err, flag.ErrHelp):
				return exitOK
			case errors.As(err, new(notFoundError)):
				fmt.Fprintf(stderr, "accounthealth %s: %v\n", c.name, err)
				return exitNotFound
			case errors.As(err, new(flagError)), errors.As(err, new(usageError)):
				help := c.name
				if fe := new(flagError); errors.As(err, fe) {
					help = fe.help
				}
				fmt.Fprintf(stderr, "accounthealth %s: %v\nRun 'accounthealth %s --help' for usage.\n", c.name, err, help)
				return exitUsage
			default:
				fmt.Fprintf(stderr, "accounthealth %s: %v\n", c.name, err)
				return exitError
			}
		}
	}
	fmt.Fprintf(stderr, "accounthealth: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: accounthealth <command> [flags]\n\nCommands:")
	width := 0
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'accounthealth <command> --help' for a command's flags.")
	fmt.Fprintln(w, "Every flag can also be set as ACCOUNTHEALTH_<FLAG> in the environment (-o as ACCOUNTHEALTH_OUTPUT),")
	fmt.Fprintln(w, "but --force, --dry-run, --restart and --replace, which are given on the command line only.")
	fmt.Fprintln(w, "\nExit codes: 0 done, 1 failed, 2 wrong command line or configuration, 3 account not found.")
}

// notFoundError marks a call about an account the server does not know
// (exit code 3), so scripts can tell "unknown" from "failed".
type notFoundError struct{ err error }

func (e notFoundError) Error() string { return e.err.Error() }
func (e notFoundError) Unwrap() error { return e.err }

// usageError marks a wrong command line or configuration (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

// flagError is a usageError about a flag of the command help names
// ("health list"), whose --help to point at.
type flagError struct {
	usageError
	help string
}

func (e usageError) Unwrap() error { return e.err }

// flagOnly are the flags that change what a command does to data: a
// variable left in a shell must never set them. (Only serve reads a
// configuration file, and it has none of them.)
var flagOnly = map[string]bool{"force": true, "dry-run": true, "restart": true, "replace": true}

// envName is the environment variable that sets a flag ("" for none).
func envName(flagName string) string {
	switch {
	case flagOnly[flagName]:
		return ""
	case flagName == "o":
		return "ACCOUNTHEALTH_OUTPUT"
	}
	return "ACCOUNTHEALTH_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args, then fills every flag not given on the command
// line from its environment variable.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		if name := envName(f.Name); name == "" {
			return
		} else if v, ok := os.LookupEnv(name); ok {
			given[f.Name] = true
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
		}
	})
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	if cfg := fs.Lookup("config"); cfg != nil && cfg.Value.String() != "" {
		return applyConfigFile(fs, cfg.Value.String(), given)
	}
	return nil
}

// applyConfigFile sets, from a file of "name = value" lines (# comments),
// every flag that neither the command line nor the environment set: the
// file holds a deployment's defaults, flags and environment override it.
// Names are the flags' names; an unknown one is an error, so a typo never
// passes silently.
func applyConfigFile(fs *flag.FlagSet, path string, given map[string]bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return usageError{fmt.Errorf("config: %w", err)}
	}
	var errs []error
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if uq, err := strconv.Unquote(value); err == nil {
			value = uq
		}
		where := fmt.Sprintf("%s line %d", path, n+1)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: want \"name = value\"", where))
		case name == "config" || fs.Lookup(name) == nil:
			errs = append(errs, fmt.Errorf("%s: %q is not a setting of this command (see --help)", where, name))
		case given[name]:
		default:
			if err := fs.Set(name, value); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", where, name, err))
			}
		}
	}
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	return nil
}

// valueKind is " DURATION" for a flag taking a duration, and so on; ""
// for a switch.
func valueKind(f *flag.Flag) string {
	kind, _ := flag.UnquoteUsage(f)
	switch kind {
	case "":
		return ""
	case "value": // our own flag.Values: listFlag, enumFlag, secretList
		kind = "list"
	}
	return " " + strings.ToUpper(kind)
}

// newFlagSet makes a flag set whose --help lists each flag, the kind of
// value it takes, and its environment variable.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: accounthealth %s\n", synopsis)
		if hasFlags(fs) {
			fmt.Fprintln(stderr, "\nFlags (each also settable as the environment variable shown):")
		}
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			// A required flag has no default to show, even when its zero
			// value prints as one (0s).
			if f.DefValue != "" && f.DefValue != "false" && !strings.HasPrefix(f.Usage, "required") {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			dash := "--"
			if len(f.Name) == 1 {
				dash = "-" // -o reads better than --o
			}
			env := envName(f.Name)
			if env == "" {
				env = "command line only"
			}
			fmt.Fprintf(stderr, "  %s%s%s  [%s]\n      %s%s\n", dash, f.Name, valueKind(f), env, f.Usage, def)
		})
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}
