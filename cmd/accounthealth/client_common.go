package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/accounthealth/accounthealth/client"
	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

// clientExitCodes ends the --help of every command that calls the server.
const clientExitCodes = `Exit codes: 0 done; 1 the call failed (the message says why and what to do); 2 the command line is wrong; 3 the account is unknown to the server.`

// clientCommand is what the commands that call the server share: their
// flags, the connection, and how their errors read.
type clientCommand struct {
	fs                   *flag.FlagSet
	server, token, tlsCA string
	tls, plaintext       bool
	timeout              time.Duration
	output               string
	stdout, stderr       io.Writer
	positional           []string // names of the arguments, e.g. "ID"
}

// newClientCommand makes the flag set of `accounthealth <synopsis>`, with
// the connection flags and -o; about is printed under the flags by --help.
func newClientCommand(name, synopsis, about string, stdout, stderr io.Writer, positional ...string) *clientCommand {
	c := &clientCommand{fs: newFlagSet(name, synopsis, stderr), stdout: stdout, stderr: stderr, positional: positional}
	c.fs.StringVar(&c.server, "server", "127.0.0.1:9090", "the server's gRPC address (serve's --grpc-addr)")
	c.fs.StringVar(&c.token, "token", "", "bearer token sent with every call, when the server wants one")
	c.fs.BoolVar(&c.tls, "tls", false, "use TLS with the system's root certificates (the default for a server not on loopback)")
	c.fs.StringVar(&c.tlsCA, "tls-ca", "", "PEM file of the CA that signed the server's certificate (implies --tls)")
	c.fs.BoolVar(&c.plaintext, "plaintext", false, "no TLS, even to a server not on loopback (a --token is then refused)")
	c.fs.DurationVar(&c.timeout, "timeout", client.DefaultTimeout, "how long a call may take")
	registerOutput(c.fs, &c.output)
	flagUsage := c.fs.Usage
	c.fs.Usage = func() {
		flagUsage()
		fmt.Fprintf(stderr, "\n%s\n\n%s\n", about, clientExitCodes)
	}
	return c
}

// registerOutput adds -o, checked by parseCommand.
func registerOutput(fs *flag.FlagSet, output *string) {
	fs.StringVar(output, "o", "table", "table: for people; json: one JSON object per line, for scripts")
}

// parseCommand parses flags and arguments in any order, then checks the
// number of arguments against the names in want, and the -o flag's value.
func parseCommand(fs *flag.FlagSet, args, want []string, output *string) ([]string, error) {
	names, err := parseWithNames(fs, args)
	if err != nil {
		return nil, err
	}
	var errs []error
	switch {
	case len(names) < len(want):
		errs = append(errs, fmt.Errorf("missing the %s argument", want[len(names)]))
	case len(names) > len(want):
		errs = append(errs, fmt.Errorf("unexpected argument %q", names[len(want)]))
	}
	if *output != "table" && *output != "json" {
		errs = append(errs, fmt.Errorf("-o: %q is not table or json", *output))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, flagError{usageError{err}, fs.Name()}
	}
	return names, nil
}

// connect reads the command line and the environment, and dials the
// server; it returns the positional arguments, exactly as many as the
// command names. The caller closes the client.
func (c *clientCommand) connect(args []string) (*client.Client, []string, error) {
	names, err := parseCommand(c.fs, args, c.positional, &c.output)
	if err != nil {
		return nil, nil, err
	}
	if c.plaintext && (c.tls || c.tlsCA != "") {
		return nil, nil, usageError{errors.New("plaintext: cannot be combined with --tls or --tls-ca")}
	}
	if u, err := url.Parse(c.server); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return nil, nil, usageError{fmt.Errorf("--server: %q is a URL; it takes the gRPC address as host:port (serve's --grpc-addr), e.g. %s", c.server, cmp.Or(u.Host, "127.0.0.1:9090"))}
	}
	cl, err := c.dial()
	return cl, names, err
}

// dial connects as the flags say. Problems with them are usage errors.
func (c *clientCommand) dial() (*client.Client, error) {
	opts := []client.Option{client.WithTimeout(c.timeout), client.WithUserAgent("accounthealth-cli")}
	switch {
	case c.tlsCA != "":
		pem, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return nil, usageError{fmt.Errorf("tls-ca: %w", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageError{fmt.Errorf("tls-ca: %s holds no PEM certificate", c.tlsCA)}
		}
		opts = append(opts, client.WithTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	case c.tls:
		opts = append(opts, client.WithTLS(nil))
	case c.plaintext:
		opts = append(opts, client.WithInsecure())
	}
	if c.token != "" {
		opts = append(opts, client.WithToken(c.token))
	}
	cl, err := client.New(c.server, opts...)
	if err != nil {
		return nil, usageError{err}
	}
	return cl, nil
}

// fieldFlags names, for each request field the server may refuse, the
// flag or argument that set it.
var fieldFlags = map[string]string{
	"account_id":  "the account id",
	"user_id":     "--user",
	"user_ids":    "--user",
	"states":      "--state",
	"error_codes": "--error-code",
	"kinds":       "--kind",
	"page_size":   "--page-size",
	"page_token":  "--page-token",
	"since":       "--since",
	"older_than":  "--older-than",
	"limit":       "--limit",
	"url":         "the URL",
	"description": "--description",
	"rate_limit":  "--rate-limit",
	"concurrency": "--concurrency",
	"overlap":     "--overlap",
	"message_id":  "the message id",
	"statuses":    "--status",
	"until":       "--until",
}

// explain words a failed call for a person: what went wrong and what to
// do. accountID is the account the call was about, if any. A request the
// server refused as invalid is a usage error.
func (c *clientCommand) explain(err error, accountID string) error {
	var e *client.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code {
	case codes.NotFound:
		if accountID == "" {
			return notFoundError{errors.New(e.Message)}
		}
		return notFoundError{fmt.Errorf("account %s not found: no delivery named it yet — check the id (`accounthealth health list` shows the known ones)", accountID)}
	case codes.InvalidArgument:
		field, problem, ok := strings.Cut(e.Message, ": ")
		if name, known := fieldFlags[field]; ok && known {
			return usageError{fmt.Errorf("%s: %s", name, problem)}
		}
		return usageError{errors.New(e.Message)}
	case codes.Unavailable:
		switch e.Reason {
		case ahv1.ErrorReason_ERROR_REASON_UNSPECIFIED:
			return c.unreachable(transportCause(e.Message))
		case ahv1.ErrorReason_PROVIDER_UNAVAILABLE:
			return errors.New(e.Message)
		case ahv1.ErrorReason_SHUTTING_DOWN:
			return fmt.Errorf("the server at %s is shutting down — try again once it is back", c.server)
		}
		return fmt.Errorf("the server at %s cannot serve right now: %s", c.server, e.Message)
	case codes.DeadlineExceeded:
		return fmt.Errorf("the server at %s did not answer within %s — it may be overloaded; try again, or raise --timeout", c.server, c.timeout)
	case codes.FailedPrecondition:
		if e.Reason == ahv1.ErrorReason_PROVIDER_NOT_CONFIGURED {
			return fmt.Errorf("%s — without a provider account, `accounthealth fake-provider` stands in for it (see the README)", e.Message)
		}
		return errors.New(e.Message)
	case codes.Unauthenticated:
		return fmt.Errorf("the server wants a valid token: %s — set --token (ACCOUNTHEALTH_TOKEN)", e.Message)
	case codes.PermissionDenied:
		return fmt.Errorf("the server refused this call for this token: %s — ask for a token that allows it", e.Message)
	case codes.Canceled:
		return errors.New("interrupted")
	case codes.Unimplemented:
		return fmt.Errorf("the server at %s does not offer this call: %s — is it an accounthealth server, and as recent as this command?", c.server, e.Message)
	}
	return fmt.Errorf("the server failed: %s (%s) — its log has the details", e.Message, e.Code)
}

// transportCause keeps the part of a gRPC connection error a person
// needs: `connection error: desc = "transport: Error while dialing: dial
// tcp 127.0.0.1:9090: connect: connection refused"` becomes `dial tcp
// 127.0.0.1:9090: connect: connection refused`.
func transportCause(msg string) string {
	if _, desc, ok := strings.Cut(msg, `desc = "`); ok {
		msg = strings.TrimSuffix(desc, `"`)
	}
	msg = strings.ReplaceAll(strings.TrimPrefix(msg, "transport: "), `\"`, `"`)
	return strings.TrimPrefix(msg, "Error while dialing: ")
}

// unreachable words a failed connection, cause being gRPC's: the server is
// not there, or it is but TLS is not agreed on.
func (c *clientCommand) unreachable(cause string) error {
	switch {
	case strings.Contains(cause, "looked like an HTTP/1.1 header"):
		return fmt.Errorf("the server at %s answered HTTP/1.1, not gRPC: is it the REST listener (serve's --api-addr) or the webhook one? --server takes serve's --grpc-addr (default 127.0.0.1:9090)", c.server)
	case strings.Contains(cause, "handshake"):
		return fmt.Errorf("no TLS connection with the server at %s: %s — check --tls-ca (the CA that signed its certificate), or use --plaintext if it does not use TLS", c.server, cause)
	case strings.Contains(cause, "server preface") && !c.tls && c.tlsCA == "":
		return fmt.Errorf("the server at %s closed the connection: %s — if it uses TLS (serve --tls-cert), add --tls or --tls-ca", c.server, cause)
	}
	return fmt.Errorf("cannot reach the server at %s: %s — is `accounthealth serve` running? (--server / ACCOUNTHEALTH_SERVER)", c.server, cause)
}

// printJSON writes m as one line of JSON with the API's field names.
func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	// protojson varies its spacing on purpose; compact lines are stable.
	var line bytes.Buffer
	if err := json.Compact(&line, b); err != nil {
		return err
	}
	line.WriteByte('\n')
	_, err = w.Write(line.Bytes())
	return err
}

// when is a time for people: local RFC 3339 to the second; "-" when unset.
func when(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().Local().Format(time.RFC3339)
}

// cellTime is a time for a table cell: local, to the second, without the
// zone's offset, which makes a column 6 characters wider (-o json has it).
func cellTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().Local().Format(time.DateTime)
}

// enumName is an enum value without its type's prefix, as people read it:
// HEALTH_STATE_AUTH_FAILED is AUTH_FAILED.
func enumName(e protoreflect.Enum) string {
	v := e.Descriptor().Values().ByNumber(e.Number())
	if v == nil {
		return fmt.Sprint(e.Number())
	}
	return strings.TrimPrefix(string(v.Name()), enumPrefix(e.Descriptor()))
}

// enumPrefix is HEALTH_STATE_ for HealthState.
func enumPrefix(d protoreflect.EnumDescriptor) string {
	var b strings.Builder
	for i, r := range string(d.Name()) {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String() + "_"
}

// or is s, or "-" when s is empty, so that table cells are never blank.
func or(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// listFlag is a flag that may be repeated or given comma-separated
// (which is how the environment gives a list).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}

// enumFlag is a listFlag of enum values, given by their short names in
// any case: --state auth_failed,DISCONNECTED.
type enumFlag[E interface {
	~int32
	protoreflect.Enum
}] struct {
	values []E
}

func (f *enumFlag[E]) String() string {
	names := make([]string, len(f.values))
	for i, v := range f.values {
		names[i] = enumName(v)
	}
	return strings.Join(names, ",")
}

func (f *enumFlag[E]) Set(v string) error {
	var zero E
	desc := zero.Descriptor()
	var names listFlag
	_ = names.Set(v)
	for _, name := range names {
		full := enumPrefix(desc) + strings.TrimPrefix(strings.ToUpper(name), enumPrefix(desc))
		val := desc.Values().ByName(protoreflect.Name(full))
		if val == nil || val.Number() == 0 {
			return fmt.Errorf("%q is not one of %s", name, enumChoices(desc))
		}
		f.values = append(f.values, E(val.Number()))
	}
	return nil
}

// enumChoices lists the short names of an enum's values but UNSPECIFIED.
func enumChoices(desc protoreflect.EnumDescriptor) string {
	var out []string
	for i := range desc.Values().Len() {
		if v := desc.Values().Get(i); v.Number() != 0 {
			out = append(out, strings.TrimPrefix(string(v.Name()), enumPrefix(desc)))
		}
	}
	return strings.Join(out, ", ")
}

// subcommand is one verb of a command group such as `health`.
type subcommand struct {
	name, args, summary string
	run                 func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// runGroup runs the subcommand args[0] names.
func runGroup(ctx context.Context, group string, subs []subcommand, args []string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintf(stderr, "Usage: accounthealth %s <subcommand> [flags]\n\nSubcommands:\n", group)
		for _, s := range subs {
			fmt.Fprintf(stderr, "  %-12s %s\n", s.name+" "+s.args, s.summary)
		}
		fmt.Fprintf(stderr, "\nRun 'accounthealth %s <subcommand> --help' for its flags.\n", group)
	}
	if len(args) == 0 {
		usage()
		return usageError{fmt.Errorf("name a subcommand")}
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		return flag.ErrHelp
	}
	for _, s := range subs {
		if s.name == args[0] {
			if err := s.run(ctx, args[1:], stdout, stderr); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			return nil
		}
	}
	usage()
	return usageError{fmt.Errorf("unknown subcommand %q", args[0])}
}
