package notify

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/accounthealth/accounthealth/server/store"
)

// maxURLLength bounds an endpoint's URL.
const maxURLLength = 2048

// urlChecker decides which endpoint URLs are acceptable.
type urlChecker struct {
	allowInsecure bool
	// own are the service's listen addresses (host:port): an endpoint there
	// would have the service call itself.
	own      func() []string
	resolver *net.Resolver
}

// FieldError is a bad request field: its text names the field first, and
// it is a store.ErrInvalidArgument.
type FieldError struct{ Field, Problem string }

func (e *FieldError) Error() string        { return e.Field + ": " + e.Problem }
func (e *FieldError) Is(target error) bool { return target == store.ErrInvalidArgument }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// check returns an error wrapping store.ErrInvalidArgument, naming the url
// field, when raw is not an endpoint URL this service will call.
func (c *urlChecker) check(ctx context.Context, raw string) error {
	if raw == "" || len(raw) > maxURLLength {
		return invalid("url", "is required, at most %d characters", maxURLLength)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return invalid("url", "does not parse: %v", err)
	case u.Scheme != "https" && u.Scheme != "http":
		return invalid("url", "must be an https:// URL, got scheme %q", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return invalid("url", "has no host")
	case u.User != nil:
		return invalid("url", "must not carry a user or password; authenticate receivers by the signature")
	case u.Fragment != "" || u.Opaque != "":
		return invalid("url", "must be a plain absolute URL without a fragment")
	}
	if u.Scheme == "http" && !c.allowInsecure && !isLoopbackName(u.Hostname()) {
		return invalid("url", "must use https:// (plain http is allowed to loopback hosts, or everywhere with --allow-insecure-endpoints)")
	}
	return c.checkNotOwn(ctx, u)
}

func isLoopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// checkNotOwn refuses a URL whose host and port are one of the service's
// own listeners, comparing resolved addresses: a listener on an
// unspecified address (":8080", "0.0.0.0:8080") is on every local one.
func (c *urlChecker) checkNotOwn(ctx context.Context, u *url.URL) error {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if c.own == nil {
		return nil
	}
	var targets []netip.Addr
	for _, own := range c.own() {
		host, ownPort, err := net.SplitHostPort(own)
		if err != nil || ownPort != port {
			continue
		}
		if targets == nil {
			if targets, err = c.lookup(ctx, u.Hostname()); err != nil {
				return invalid("url", "host %q does not resolve: %v", u.Hostname(), err)
			}
		}
		ownAddrs, err := c.ownAddrs(ctx, host)
		if err != nil {
			continue
		}
		for _, t := range targets {
			if slices.Contains(ownAddrs, t.Unmap()) {
				return invalid("url", "points at this service's own listener %s; give the receiver's URL", own)
			}
		}
	}
	return nil
}

func (c *urlChecker) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	ips, err := c.resolver.LookupNetIP(ctx, "ip", host)
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips, err
}

// ownAddrs are the addresses a listener on host accepts connections at.
func (c *urlChecker) ownAddrs(ctx context.Context, host string) ([]netip.Addr, error) {
	ip, err := netip.ParseAddr(host)
	if host != "" && (err != nil || !ip.IsUnspecified()) {
		return c.lookup(ctx, host)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out, nil
}
