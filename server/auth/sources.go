package auth

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ProviderSources are the addresses the provider sends webhooks from
// (its documentation lists four); "argyle" in an allow-list stands for them.
var ProviderSources = []string{"34.27.251.226/32", "34.122.50.253/32", "35.188.163.115/32", "35.226.53.251/32"}

// SourceFilter admits webhook deliveries by the address they come from.
// Behind a proxy or load balancer the connection's address is the proxy's,
// so X-Forwarded-For is believed only when the connection comes from a
// trusted proxy, and then read from the right: the first address that is
// not itself a trusted proxy is the sender. Anything to its left was
// written by whoever sent the request and proves nothing.
type SourceFilter struct {
	allow, trusted []netip.Prefix
}

// NewSourceFilter parses the allow-list (CIDRs, addresses, or "argyle")
// and the trusted proxies (CIDRs or addresses). An empty allow-list admits
// every source.
func NewSourceFilter(allow, trustedProxies []string) (*SourceFilter, error) {
	var f SourceFilter
	var err error
	var expanded []string
	for _, a := range allow {
		if strings.EqualFold(strings.TrimSpace(a), "argyle") {
			expanded = append(expanded, ProviderSources...)
			continue
		}
		expanded = append(expanded, a)
	}
	if f.allow, err = parsePrefixes("webhook-allow-sources", expanded); err != nil {
		return nil, err
	}
	if f.trusted, err = parsePrefixes("trusted-proxies", trustedProxies); err != nil {
		return nil, err
	}
	return &f, nil
}

func parsePrefixes(setting string, items []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is neither an address nor a CIDR (e.g. 10.0.0.0/8)", setting, item)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// Active reports whether the filter restricts anything.
func (f *SourceFilter) Active() bool { return len(f.allow) > 0 }

// Admit returns the sender's address and whether it may deliver.
func (f *SourceFilter) Admit(r *http.Request) (netip.Addr, bool) {
	src := f.source(r)
	if !f.Active() {
		return src, true
	}
	return src, src.IsValid() && contains(f.allow, src)
}

// source is the sender's address as far as it can be trusted.
func (f *SourceFilter) source(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !contains(f.trusted, peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			// A hop we cannot read: nothing to its left can be trusted.
			return netip.Addr{}
		}
		if a = a.Unmap(); !contains(f.trusted, a) {
			return a
		}
	}
	return peer
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
