// Package freeport finds loopback addresses for servers that tests and the
// benchmark tool start, stop and start again on the same address.
//
// A port the kernel hands out for ":0" comes from its ephemeral range,
// from which it also picks the local port of every outgoing connection.
// So once a server on such a port stops, any connection made meanwhile
// (to PostgreSQL, to another test's server) may take its port, and the
// restart fails with "address in use". Ports outside that range are
// never handed out that way.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
)

// lowest is the lowest port chosen: far above the well-known ports and
// the usual fixed ones of local services (PostgreSQL 5432, NATS 4222).
const lowest = 10000

// Addr returns "127.0.0.1:PORT" for a port outside the ephemeral range
// that nothing listens on now.
func Addr() (string, error) {
	lo, hi := ephemeralRange()
	var candidates []int
	switch {
	case lo-lowest >= 1000:
		candidates = []int{lowest, lo - 1}
	case 65535-hi >= 1000:
		candidates = []int{hi + 1, 65535}
	default:
		// No room outside it: the kernel's choice is all there is.
		candidates = []int{0, 0}
	}
	var lastErr error
	for range 100 {
		port := candidates[0]
		if candidates[1] > candidates[0] {
			port += rand.IntN(candidates[1] - candidates[0] + 1)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			lastErr = err
			continue
		}
		addr := l.Addr().String()
		if err := l.Close(); err != nil {
			return "", err
		}
		return addr, nil
	}
	return "", fmt.Errorf("freeport: no free port: %w", lastErr)
}

// ephemeralRange is the kernel's range of ports for outgoing connections
// (Linux; elsewhere the IANA range, which most systems use).
func ephemeralRange() (lo, hi int) {
	lo, hi = 49152, 65535
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	var l, h int
	if _, err := fmt.Sscan(string(b), &l, &h); err != nil || l <= 0 || h < l {
		return lo, hi
	}
	return l, h
}
