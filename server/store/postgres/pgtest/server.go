package pgtest

import (
	"github.com/accounthealth/accounthealth/internal/freeport"

	"context"
	"errors"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Server is a throwaway PostgreSQL server of one test, which the test may
// stop and start again, as an outage would: a cluster of its own in a
// temporary directory, on a free port, trust auth, 127.0.0.1 only. It is
// set up as .ci/postgres sets up its cluster.
type Server struct {
	t       testing.TB
	bin     string // the directory of initdb and pg_ctl
	dir     string // the cluster's directory: data/, server.log, the socket
	owner   *syscall.Credential
	port    int
	running bool
}

// StartServer initialises and starts a Server, stopped and deleted when t
// ends. Without PostgreSQL's server binaries it skips t, or fails it under
// CI=true. As root, it runs them as the user postgres, since initdb and
// pg_ctl refuse to run as root.
func StartServer(t testing.TB) *Server {
	t.Helper()
	bin, err := serverBin()
	if err != nil {
		if inCI() {
			t.Fatalf("pgtest: %v", err)
		}
		t.Skipf("pgtest: %v", err)
	}
	s := &Server{t: t, bin: bin}
	if os.Geteuid() == 0 {
		if s.owner, err = postgresUser(); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	if s.dir, err = os.MkdirTemp("", "pgtest-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.running {
			_ = s.pgCtl("-m", "immediate", "-w", "stop")
		}
		_ = os.RemoveAll(s.dir)
	})
	if s.owner != nil {
		if err := os.Chown(s.dir, int(s.owner.Uid), int(s.owner.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.run(filepath.Join(bin, "initdb"), "-D", s.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		t.Fatalf("pgtest: initdb: %v", err)
	}
	s.port = freePort(t)
	conf := fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n"+
		"fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n", s.port, s.dir)
	f, err := os.OpenFile(filepath.Join(s.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		t.Fatalf("pgtest: configure: %v", err)
	}
	s.Start()
	return s
}

// URL is the server's database postgres, as the role postgres.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// Start starts the server and returns once it takes connections.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.pgCtl("-l", filepath.Join(s.dir, "server.log"), "-w", "-t", "60", "start"); err != nil {
		s.t.Fatalf("pgtest: start: %v\n%s", err, s.log())
	}
	s.running = true
}

// Stop stops the server in fast mode, as an operator's restart does: it
// ends every session (57P01) and returns once the server is down.
func (s *Server) Stop() {
	s.t.Helper()
	if err := s.pgCtl("-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		s.t.Fatalf("pgtest: stop: %v\n%s", err, s.log())
	}
	s.running = false
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	return string(b)
}

func (s *Server) pgCtl(args ...string) error {
	return s.run(filepath.Join(s.bin, "pg_ctl"), append([]string{"-D", s.data()}, args...)...)
}

// run runs a server binary as the cluster's owner. Its output goes to a
// file, not a pipe: the server pg_ctl starts inherits it and outlives
// pg_ctl, and a pipe would keep Wait waiting for the server's exit.
func (s *Server) run(name string, args ...string) error {
	out, err := os.CreateTemp("", "pgtest-out-")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := osexec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = s.dir
	if s.owner != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.owner}
	}
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		return fmt.Errorf("%s: %w\n%s", filepath.Base(name), err, b)
	}
	return nil
}

// serverBin finds the newest server binaries, as .ci/postgres does.
func serverBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	if initdb, err := osexec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(initdb))
	}
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or $PATH; install PostgreSQL's server package")
}

// version is the major version in /usr/lib/postgresql/<version>/bin.
func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// postgresUser is the user the server binaries run as under root.
func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, initdb and pg_ctl need a user postgres to run as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freePort is a port for the server, which a test stops and starts again.
func freePort(t testing.TB) int {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return n
}
