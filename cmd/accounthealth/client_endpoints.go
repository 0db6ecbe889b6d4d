package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

func runEndpoints(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "endpoints", []subcommand{
		{"add", "URL", "create a webhook endpoint; prints its signing secret, once", runEndpointsAdd},
		{"list", "", "every endpoint", runEndpointsList},
		{"get", "ID", "one endpoint's settings and state", oneEndpoint("get", "Shows one endpoint.", getEndpoint)},
		{"update", "ID", "change an endpoint's URL, description, filter or limits", runEndpointsUpdate},
		{"disable", "ID", "stop sending to an endpoint (nothing is lost)", oneEndpoint("disable", "Stops sending to the endpoint; enabling it resumes where it stopped, nothing lost.", disableEndpoint)},
		{"enable", "ID", "resume sending to a disabled endpoint", oneEndpoint("enable", "Resumes sending to the endpoint, from where it stopped.", enableEndpoint)},
		{"delete", "ID", "delete an endpoint with its messages and attempts", runEndpointsDelete},
		{"rotate-secret", "ID", "a new signing secret; the old one signs alongside for --overlap", runEndpointsRotate},
		{"test", "ID", "send a signed test message now and show the answer", runEndpointsTest},
		{"messages", "ID", "an endpoint's messages, newest first (--status exhausted: dead letters)", runEndpointsMessages},
		{"attempts", "ID", "an endpoint's delivery attempts, newest first", runEndpointsAttempts},
		{"replay", "ID", "send again the messages since --since, with their own ids", runEndpointsReplay},
		{"retry", "ID MESSAGE_ID", "send one message again now", runEndpointsRetry},
	}, args, stdout, stderr)
}

// endpointFlags are the settings add and update take.
type endpointFlags struct {
	description  *string
	users, codes listFlag
	kinds        enumFlag[ahv1.TransitionKind]
	recoveries   *bool
	itemEvents   *bool
	freshEvents  *bool
	rate         *float64
	concurrency  *int
	fs           *flag.FlagSet
}

func newEndpointFlags(fs *flag.FlagSet) *endpointFlags {
	f := &endpointFlags{fs: fs}
	f.description = fs.String("description", "", "what the endpoint is for")
	fs.Var(&f.users, "user", "only this user's accounts (repeat or comma-separate for several)")
	fs.Var(&f.kinds, "kind", "only these kinds: "+enumChoices(ahv1.TransitionKind(0).Descriptor())+"; default: every disconnection and correction")
	fs.Var(&f.codes, "error-code", "only disconnections with this error code")
	f.recoveries = fs.Bool("include-recoveries", false, "also send accounts coming back to HEALTHY")
	f.itemEvents = fs.Bool("include-item-events", false, "also send payroll platforms' outages beginning and ending (item.outage_began, item.outage_ended)")
	f.freshEvents = fs.Bool("include-freshness-events", false, "also send HEALTHY accounts whose data stops arriving or arrives again (account.data_stale, account.data_fresh)")
	f.rate = fs.Float64("rate-limit", 0, "messages per second at most, 0 for no limit")
	f.concurrency = fs.Int("concurrency", 0, "deliveries in flight at once, 1..100 (0: 10)")
	return f
}

func (f *endpointFlags) filter() *ahv1.EndpointFilter {
	return &ahv1.EndpointFilter{UserIds: f.users, Kinds: f.kinds.values, ErrorCodes: f.codes, IncludeRecoveries: *f.recoveries,
		IncludeItemEvents: *f.itemEvents, IncludeFreshnessEvents: *f.freshEvents}
}

// filterFlags are the flags that make up the filter: any of them given
// replaces the whole filter.
var filterFlags = []string{"user", "kind", "error-code", "include-recoveries", "include-item-events", "include-freshness-events"}

// filterGiven reports whether a flag of the filter was given.
func (f *endpointFlags) filterGiven() bool { return slices.ContainsFunc(filterFlags, f.set) }

// set reports whether the named flag was given.
func (f *endpointFlags) set(name string) bool {
	given := false
	f.fs.Visit(func(fl *flag.Flag) { given = given || fl.Name == name })
	return given
}

const endpointsAbout = `Endpoints receive every transition their filter selects as a Standard Webhooks message (headers
webhook-id, webhook-timestamp, webhook-signature), at least once and in order per account; see
docs/notifications.md for the body and how a receiver verifies it.`

func runEndpointsAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("endpoints add", "endpoints add URL [flags]", endpointsAbout+`
Prints the endpoint and its signing secret (whsec_...): the only time it is shown; give it to the receiver.`,
		stdout, stderr, "URL")
	f := newEndpointFlags(c.fs)
	cl, names, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := cl.Endpoints().CreateEndpoint(ctx, &ahv1.CreateEndpointRequest{
		Url: names[0], Description: *f.description, Filter: f.filter(), RateLimit: *f.rate, Concurrency: int32(*f.concurrency),
	})
	if err != nil {
		return c.explain(err, "")
	}
	if c.output == "json" {
		return printJSON(stdout, resp)
	}
	if err := printEndpoint(stdout, resp.GetEndpoint()); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "\nsigning secret (shown only now): %s\n", resp.GetSecret())
	return err
}

func printEndpoint(w io.Writer, e *ahv1.Endpoint) error {
	var d details
	d.row("id", e.GetId())
	d.row("url", e.GetUrl())
	d.row("description", or(e.GetDescription()))
	state := "enabled"
	if e.GetDisabled() {
		state = "disabled: " + or(e.GetDisabledReason())
	}
	d.row("state", state)
	if e.GetFailingSince() != nil {
		d.row("failing since", when(e.GetFailingSince()))
	}
	f := e.GetFilter()
	d.row("filter", fmt.Sprintf("users %v, kinds %v, error codes %v, recoveries %t, item events %t, freshness events %t",
		f.GetUserIds(), f.GetKinds(), f.GetErrorCodes(), f.GetIncludeRecoveries(), f.GetIncludeItemEvents(), f.GetIncludeFreshnessEvents()))
	rate := "none"
	if e.GetRateLimit() > 0 {
		rate = strconv.FormatFloat(e.GetRateLimit(), 'g', -1, 64) + "/s"
	}
	d.row("limits", fmt.Sprintf("rate %s, concurrency %d", rate, e.GetConcurrency()))
	if e.GetPreviousSecretExpiresAt() != nil {
		d.row("old secret", "signs until "+when(e.GetPreviousSecretExpiresAt()))
	}
	return d.print(w)
}

func runEndpointsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("endpoints list", "endpoints list [flags]", endpointsAbout, stdout, stderr)
	cl, _, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := cl.Endpoints().ListEndpoints(ctx, &ahv1.ListEndpointsRequest{})
	if err != nil {
		return c.explain(err, "")
	}
	if c.output == "json" {
		return printJSON(stdout, resp)
	}
	t := newTable(stdout, false, "ID!", "STATE", "URL!", "DESCRIPTION")
	for _, e := range resp.GetEndpoints() {
		state := "enabled"
		if e.GetDisabled() {
			state = "disabled"
		}
		if err := t.add(e.GetId(), state, e.GetUrl(), e.GetDescription()); err != nil {
			return err
		}
	}
	return t.flush()
}

// oneEndpoint is a subcommand that takes an endpoint id and prints the
// endpoint call returns.
func oneEndpoint(name, about string, call func(context.Context, ahv1.NotificationServiceClient, string) (*ahv1.Endpoint, error)) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		c := newClientCommand("endpoints "+name, "endpoints "+name+" ID [flags]", about, stdout, stderr, "ID")
		cl, names, err := c.connect(args)
		if err != nil {
			return err
		}
		defer cl.Close()
		e, err := call(ctx, cl.Endpoints(), names[0])
		if err != nil {
			return c.explain(err, "")
		}
		if c.output == "json" {
			return printJSON(stdout, e)
		}
		return printEndpoint(stdout, e)
	}
}

func getEndpoint(ctx context.Context, n ahv1.NotificationServiceClient, id string) (*ahv1.Endpoint, error) {
	r, err := n.GetEndpoint(ctx, &ahv1.GetEndpointRequest{Id: id})
	return r.GetEndpoint(), err
}

func disableEndpoint(ctx context.Context, n ahv1.NotificationServiceClient, id string) (*ahv1.Endpoint, error) {
	r, err := n.DisableEndpoint(ctx, &ahv1.DisableEndpointRequest{Id: id})
	return r.GetEndpoint(), err
}

func enableEndpoint(ctx context.Context, n ahv1.NotificationServiceClient, id string) (*ahv1.Endpoint, error) {
	r, err := n.EnableEndpoint(ctx, &ahv1.EnableEndpointRequest{Id: id})
	return r.GetEndpoint(), err
}

func runEndpointsUpdate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("endpoints update", "endpoints update ID [flags]",
		"Changes the settings given as flags; the others stay. Any of --user, --kind, --error-code, --include-recoveries,\n--include-item-events, --include-freshness-events replaces the whole filter.",
		stdout, stderr, "ID")
	f := newEndpointFlags(c.fs)
	url := c.fs.String("url", "", "the new URL")
	cl, names, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	req := &ahv1.UpdateEndpointRequest{Id: names[0]}
	if f.set("url") {
		req.Url = url
	}
	if f.set("description") {
		req.Description = f.description
	}
	if f.set("rate-limit") {
		req.RateLimit = f.rate
	}
	if f.set("concurrency") {
		req.Concurrency = new(int32(*f.concurrency))
	}
	if f.filterGiven() {
		req.Filter = f.filter()
	}
	resp, err := cl.Endpoints().UpdateEndpoint(ctx, req)
	if err != nil {
		return c.explain(err, "")
	}
	if c.output == "json" {
		return printJSON(stdout, resp)
	}
	return printEndpoint(stdout, resp.GetEndpoint())
}

func runEndpointsDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("endpoints delete", "endpoints delete ID [flags]", "Deletes the endpoint with its messages and attempts.", stdout, stderr, "ID")
	cl, names, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, err := cl.Endpoints().DeleteEndpoint(ctx, &ahv1.DeleteEndpointRequest{Id: names[0]}); err != nil {
		return c.explain(err, "")
	}
	_, err = fmt.Fprintf(stdout, "deleted endpoint %s\n", names[0])
	return err
}

func runEndpointsRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("endpoints rotate-secret", "endpoints rotate-secret ID [flags]",
		"Gives the endpoint a new signing secret, printed once. During --overlap every message carries two signatures\n(webhook-signature lists both), so the receiver can switch secrets at its own pace.",
		stdout, stderr, "ID")
	overlap := c.fs.Duration("overlap", 24*time.Hour, "how long the old secret keeps signing; 0: it stops at once")
	cl, names, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := cl.Endpoints().RotateEndpointSecret(ctx, &ahv1.RotateEndpointSecretRequest{Id: names[0], Overlap: durationpb.New(*overlap)})
	if err != nil {
		return c.explain(err, "")
	}
	if c.output == "json" {
		return printJSON(stdout, resp)
	}
	_, err = fmt.Fprintf(stdout, "new signing secret of %s (shown only now): %s\n", names[0], resp.GetSecret())
	return err
}

func runEndpointsTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("endpoints test", "endpoints test ID [flags]",
		`Sends the endpoint a signed message of type "endpoint.test" now and shows how the receiver answered.`, stdout, stderr, "ID")
	cl, names, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := cl.Endpoints().SendTestMessage(ctx, &ahv1.SendTestMessageRequest{Id: names[0]})
	if err != nil {
		return c.explain(err, "")
	}
	if c.output == "json" {
		return printJSON(stdout, resp)
	}
	return printAttempts(stdout, []*ahv1.DeliveryAttempt{resp.GetAttempt()})
}

func printAttempts(w io.Writer, as []*ahv1.DeliveryAttempt) error {
	t := newTable(w, false, "AT", "MESSAGE!", "N", "STATUS", "LATENCY", "ERROR")
	for _, a := range as {
		st := "-"
		if a.GetStatusCode() != 0 {
			st = strconv.Itoa(int(a.GetStatusCode()))
		}
		if err := t.add(when(a.GetAt()), a.GetMessageId(), strconv.Itoa(int(a.GetAttempt())), st,
			a.GetLatency().AsDuration().Round(time.Millisecond).String(), a.GetError()); err != nil {
			return err
		}
	}
	return t.flush()
}

// pageFlags are the flags of a list that pages through a time range:
// --since, --until, --page-size and --page-token.
type pageFlags struct {
	since, until, pageToken *string
	pageSize                *int
}

// addPageFlags defines the page flags on fs; what names the listed items.
func addPageFlags(fs *flag.FlagSet, what string) pageFlags {
	return pageFlags{
		since:     fs.String("since", "", "only from this time: RFC 3339 or a duration back from now (24h)"),
		until:     fs.String("until", "", "only before this time: RFC 3339 or a duration back from now"),
		pageSize:  fs.Int("page-size", 0, what+" per page, 1..500 (0: 50)"),
		pageToken: fs.String("page-token", "", "continue from a previous page's next page token"),
	}
}

// window parses --since and --until.
func (p pageFlags) window() (s, u *timestamppb.Timestamp, err error) {
	if s, err = parseTimeFlag("since", *p.since); err != nil {
		return nil, nil, err
	}
	if u, err = parseTimeFlag("until", *p.until); err != nil {
		return nil, nil, err
	}
	return s, u, nil
}

// parseTimeFlag parses the time flag name: RFC 3339 or a duration back
// from now; nil when v is empty.
func parseTimeFlag(name, v string) (*timestamppb.Timestamp, error) {
	if v == "" {
		return nil, nil
	}
	t, err := parseSince(v, time.Now())
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", name, err)}
	}
	return timestamppb.New(t), nil
}

func runEndpointsMessages(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("endpoints messages", "endpoints messages ID [flags]",
		"Lists the endpoint's messages, newest first, a page at a time. --status exhausted is the dead-letter view:\nmessages whose retries ran out (`endpoints retry` or `endpoints replay` sends them again).",
		stdout, stderr, "ID")
	var statuses enumFlag[ahv1.MessageStatus]
	c.fs.Var(&statuses, "status", "only these: "+enumChoices(ahv1.MessageStatus(0).Descriptor()))
	page := addPageFlags(c.fs, "messages")
	cl, names, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	s, u, err := page.window()
	if err != nil {
		return err
	}
	resp, err := cl.Endpoints().ListMessages(ctx, &ahv1.ListMessagesRequest{
		EndpointId: names[0], Statuses: statuses.values, Since: s, Until: u, PageSize: int32(*page.pageSize), PageToken: *page.pageToken,
	})
	if err != nil {
		return c.explain(err, "")
	}
	if c.output == "json" {
		return printJSON(stdout, resp)
	}
	t := newTable(stdout, false, "CREATED", "MESSAGE!", "TYPE", "ACCOUNT!", "STATUS", "ATTEMPTS", "LAST ERROR")
	for _, m := range resp.GetMessages() {
		if err := t.add(when(m.GetCreatedAt()), m.GetId(), m.GetType(), m.GetAccountId(), enumName(m.GetStatus()),
			strconv.Itoa(int(m.GetAttempts())), m.GetLastError()); err != nil {
			return err
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	return printNextPage(stdout, resp.GetNextPageToken())
}

func printNextPage(w io.Writer, token string) error {
	if token == "" {
		return nil
	}
	_, err := fmt.Fprintf(w, "more: --page-token %s\n", token)
	return err
}

func runEndpointsAttempts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("endpoints attempts", "endpoints attempts ID [flags]",
		"Lists the endpoint's delivery attempts, newest first: when, the status code, the latency and the error.",
		stdout, stderr, "ID")
	message := c.fs.String("message", "", "only this message's attempts (its id, msg_...)")
	page := addPageFlags(c.fs, "attempts")
	cl, names, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	s, u, err := page.window()
	if err != nil {
		return err
	}
	resp, err := cl.Endpoints().ListAttempts(ctx, &ahv1.ListAttemptsRequest{
		EndpointId: names[0], MessageId: *message, Since: s, Until: u, PageSize: int32(*page.pageSize), PageToken: *page.pageToken,
	})
	if err != nil {
		return c.explain(err, "")
	}
	if c.output == "json" {
		return printJSON(stdout, resp)
	}
	if err := printAttempts(stdout, resp.GetAttempts()); err != nil {
		return err
	}
	return printNextPage(stdout, resp.GetNextPageToken())
}

func runEndpointsReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("endpoints replay", "endpoints replay ID --since TIME [flags]",
		"Sends again every message of the endpoint whose transition occurred since --since, delivered or not, each with\nits own webhook-id (a receiver that deduplicates by it sees none twice). It creates no message.",
		stdout, stderr, "ID")
	since := c.fs.String("since", "", "required: RFC 3339 or a duration back from now (24h)")
	cl, names, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	if *since == "" {
		return usageError{fmt.Errorf("since: required")}
	}
	s, err := parseTimeFlag("since", *since)
	if err != nil {
		return err
	}
	resp, err := cl.Endpoints().ReplayMessages(ctx, &ahv1.ReplayMessagesRequest{EndpointId: names[0], Since: s})
	if err != nil {
		return c.explain(err, "")
	}
	if c.output == "json" {
		return printJSON(stdout, resp)
	}
	_, err = fmt.Fprintf(stdout, "sending %d messages again to %s\n", resp.GetRequeued(), names[0])
	return err
}

func runEndpointsRetry(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("endpoints retry", "endpoints retry ID MESSAGE_ID [flags]",
		"Sends one message again now, with a fresh retry schedule (a dead letter included).", stdout, stderr, "ID", "MESSAGE_ID")
	cl, names, err := c.connect(args)
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, err := cl.Endpoints().RetryMessage(ctx, &ahv1.RetryMessageRequest{EndpointId: names[0], MessageId: names[1]}); err != nil {
		return c.explain(err, "")
	}
	_, err = fmt.Fprintf(stdout, "sending %s again to %s\n", names[1], names[0])
	return err
}
