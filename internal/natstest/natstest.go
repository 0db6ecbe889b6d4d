// Package natstest runs a real NATS server with JetStream inside a test
// process, so that tests of the JetStream export need nothing installed
// and never skip. The server keeps its address and its store directory
// across Restart, as a broker restarted by an operator would.
package natstest

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/accounthealth/accounthealth/internal/freeport"
)

// readyLimit bounds the wait for the server to accept connections: far
// above what a start takes, even under -race on a loaded machine.
const readyLimit = 30 * time.Second

// Server is one embedded NATS server with JetStream.
type Server struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

// Start starts a server on a loopback port that a restart can take again
// (internal/freeport), with its JetStream store in a test directory. The
// test's end stops it.
func Start(t testing.TB) *Server {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, opts: server.Options{
		Host: host, Port: port, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, ServerName: "natstest",
	}}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's client URL; it stays the same across restarts.
func (s *Server) URL() string {
	return "nats://" + net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// SetMaxPayload sets the largest message the server takes, from its next
// (re)start.
func (s *Server) SetMaxPayload(n int32) { s.opts.MaxPayload = n }

// Stop shuts the server down and waits until it has; stopping a stopped
// server does nothing.
func (s *Server) Stop() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Restart stops the server and starts it again on the same address and
// store, keeping every stream and message.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

func (s *Server) start() {
	s.t.Helper()
	opts := s.opts // the server keeps and changes the options it is given
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatalf("natstest: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(readyLimit) {
		srv.Shutdown()
		s.t.Fatalf("natstest: the NATS server at %s did not accept connections within %s", s.URL(), readyLimit)
	}
	s.srv = srv
}
