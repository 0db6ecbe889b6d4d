// Package client is the typed Go client of accounthealth's
// AccountHealthService: reads of account health, the timeline, deletions of
// failed accounts, and a watcher over the disconnection stream that resumes
// by itself after the server restarts.
//
// Calls return the API's generated messages (package accounthealthv1) and,
// on failure, an *Error that carries the gRPC code, the server's reason and
// its message. Reads are retried on UNAVAILABLE; calls that change state are
// retried only where the server makes a repeat harmless (see WithRetries).
package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/accounthealth/accounthealth"
	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

// Defaults of the options below.
const (
	DefaultTimeout   = 10 * time.Second
	DefaultRetries   = 3
	DefaultUserAgent = "accounthealth-go-client"
	// deleteTimeout is the least time DeleteFailed waits: the server itself
	// retries the provider for up to 30 s before it answers.
	deleteTimeout = time.Minute
)

// Client calls one accounthealth server. It is safe for concurrent use.
type Client struct {
	conn   *grpc.ClientConn
	api    ahv1.AccountHealthServiceClient
	notify ahv1.NotificationServiceClient
}

type transport int

const (
	transportDefault transport = iota // plaintext on loopback, else TLS
	transportTLS
	transportInsecure
)

type options struct {
	transport transport
	tls       *tls.Config
	token     string
	timeout   time.Duration
	retries   int
	userAgent string
}

// Option configures New.
type Option func(*options)

// WithTLS secures the connection with cfg; nil means the system's root
// certificates. A cfg with Certificates also presents a client
// certificate, to servers that authenticate callers by mutual TLS. Without WithTLS or WithInsecure, New uses plaintext for
// loopback targets (localhost, 127.0.0.0/8, ::1, unix sockets), where
// `accounthealth serve` listens by default, and TLS with the system's roots
// for any other target, so that nothing crosses a network in the clear by
// accident.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) { o.transport, o.tls = transportTLS, cfg }
}

// WithInsecure forces plaintext, whatever the target (e.g. inside a
// service mesh that encrypts for you). A token is then refused unless the
// target is loopback.
func WithInsecure() Option {
	return func(o *options) { o.transport = transportInsecure }
}

// WithToken sends "authorization: Bearer <token>" with every call, which
// a server started with API tokens requires. New refuses to send it in
// plaintext to a target that is not loopback.
func WithToken(token string) Option {
	return func(o *options) { o.token = token }
}

// WithTimeout is the deadline of a unary call whose context has none
// (default 10 s), across its retries. DeleteFailed waits at least a minute,
// since the server retries the provider before answering. Streams
// (Watch, PurgeFailed) get no default deadline: they end with the context.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// WithRetries is how many times a call that got UNAVAILABLE is repeated,
// with exponential backoff and jitter (default 3; 0 disables). Only calls
// that can be repeated safely are: every read, and DeleteFailed, which the
// server makes idempotent (a repeat returns the first answer without a
// second deletion), except when the provider was unavailable, since the
// server has already retried it for its own time budget. PurgeFailed is
// never retried: run it again instead, it only picks what is left.
func WithRetries(n int) Option {
	return func(o *options) { o.retries = max(n, 0) }
}

// WithUserAgent names the caller in the server's and proxies' logs.
func WithUserAgent(ua string) Option {
	return func(o *options) { o.userAgent = ua }
}

// New prepares a client of the server at target (host:port, or any gRPC
// target such as dns:///host:port or unix:///path). Like grpc.NewClient it
// does not connect: the first call does, and a server that is down shows
// up as UNAVAILABLE on the calls.
func New(target string, opts ...Option) (*Client, error) {
	o := options{timeout: DefaultTimeout, retries: DefaultRetries, userAgent: DefaultUserAgent}
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("client: timeout must be positive, got %s", o.timeout)
	}
	loopback := isLoopback(target)
	secure := o.transport == transportTLS || (o.transport == transportDefault && !loopback)
	creds := insecure.NewCredentials()
	if secure {
		cfg := o.tls
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		creds = credentials.NewTLS(cfg)
	}
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent(o.userAgent),
		// Outermost first: the error is typed once, after the last attempt;
		// the deadline spans every attempt; each attempt may be retried.
		grpc.WithChainUnaryInterceptor(errorInterceptor, deadlineInterceptor(o.timeout), retryInterceptor(o.retries)),
		// gRPC's default reconnect backoff grows to two minutes; a watcher
		// should find a restarted server within seconds.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
		// Pings on idle streams notice a server that vanished without
		// closing the connection (a dead host, a dropped NAT entry); the
		// server accepts them down to every 10 s.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		// gRPC's default of 4 MiB is less than a page of large records
		// can be: take any response a server can send, whatever its
		// delivery cap.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(accounthealth.MaxResponseBytes(accounthealth.MaxBodyBytesLimit))),
	}
	if o.token != "" {
		if !secure && !loopback {
			return nil, fmt.Errorf("client: refusing to send a token in plaintext to %s, which is not a loopback address: use TLS, or no token", target)
		}
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(bearer{token: o.token, secure: secure}))
	}
	conn, err := grpc.NewClient(target, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Client{conn: conn, api: ahv1.NewAccountHealthServiceClient(conn), notify: ahv1.NewNotificationServiceClient(conn)}, nil
}

// Close releases the connection; calls in flight fail with CANCELED.
func (c *Client) Close() error { return c.conn.Close() }

// isLoopback says whether target surely stays on this machine.
func isLoopback(target string) bool {
	if strings.HasPrefix(target, "unix:") || strings.HasPrefix(target, "unix-abstract:") {
		return true
	}
	endpoint := target
	if _, rest, ok := strings.Cut(target, "://"); ok {
		_, endpoint, _ = strings.Cut(rest, "/") // scheme://authority/endpoint
	}
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		host = endpoint
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// bearer is the per-call token. Over plaintext (loopback only, as New
// checks) it must not require transport security, or gRPC refuses to send it.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }

// Methods that may be repeated: the reads, DeleteFailedAccount, which the
// server makes idempotent, a refresh (a repeat fetches again) and a
// reconnect link (a repeat shares or mints a token). Not ResendInvite: a
// repeat would be refused as too soon after the first.
var idempotent = map[string]bool{
	ahv1.AccountHealthService_GetAccountHealth_FullMethodName:     true,
	ahv1.AccountHealthService_ListAccountHealth_FullMethodName:    true,
	ahv1.AccountHealthService_GetHealthSummary_FullMethodName:     true,
	ahv1.AccountHealthService_ListAccountEvents_FullMethodName:    true,
	ahv1.AccountHealthService_DeleteFailedAccount_FullMethodName:  true,
	ahv1.AccountHealthService_RefreshAccountHealth_FullMethodName: true,
	ahv1.AccountHealthService_GetReconnectLink_FullMethodName:     true,
	ahv1.NotificationService_GetEndpoint_FullMethodName:           true,
	ahv1.NotificationService_ListEndpoints_FullMethodName:         true,
	ahv1.NotificationService_ListMessages_FullMethodName:          true,
	ahv1.NotificationService_ListAttempts_FullMethodName:          true,
}

// retryBackoff spaces the retries of unary calls: short, since a call has
// a deadline of seconds.
var retryBackoff = Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}

func retryInterceptor(retries int) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		for attempt := 0; ; attempt++ {
			err := invoker(ctx, method, req, reply, cc, opts...)
			if err == nil || attempt >= retries || !idempotent[method] || !retryable(err) {
				return err
			}
			if !sleep(ctx, retryBackoff.delay(attempt)) {
				return err
			}
		}
	}
}

// retryable: the server could not be reached or could not serve, and
// nothing says that repeating at once is pointless.
func retryable(err error) bool {
	e := asError("", err)
	return e.Code == codes.Unavailable && e.Reason != ahv1.ErrorReason_PROVIDER_UNAVAILABLE
}

func deadlineInterceptor(timeout time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			d := timeout
			if method == ahv1.AccountHealthService_DeleteFailedAccount_FullMethodName {
				d = max(d, deleteTimeout)
			}
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

func errorInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
		return asError(method, err)
	}
	return nil
}

// sleep waits d or until ctx ends, and says whether it waited it out.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
