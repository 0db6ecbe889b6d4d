package main

import (
	"github.com/accounthealth/accounthealth/internal/freeport"

	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	readTimeout = 30 * time.Second
	// clockTicks is Linux's USER_HZ, the unit of /proc/PID/stat's times.
	clockTicks = 100
	// readyWait bounds a start-up: a large store may be rebuilt first.
	readyWait = 5 * time.Minute
)

// moduleRoot is the directory of the project's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the tool inside the accounthealth module (bash bench/run)")
	}
	return filepath.Dir(gomod), nil
}

// buildService builds cmd/accounthealth into dir, as a user builds it.
func buildService(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "accounthealth")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/accounthealth")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build accounthealth: %w\n%s", err, out)
	}
	return bin, nil
}

// commit names the checkout measured: its short commit, "-dirty" with
// uncommitted changes.
func commit(ctx context.Context, root string) string {
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = root
		out, _ := cmd.Output()
		return strings.TrimSpace(string(out))
	}
	c := git("rev-parse", "--short", "HEAD")
	if c == "" {
		return "unknown"
	}
	if git("status", "--porcelain", "--untracked-files=no") != "" {
		c += "-dirty"
	}
	return c
}

// tailBuffer keeps the last bytes a child wrote, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailBytes = 16 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - tailBytes; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// serviceProcess is a running `accounthealth serve`.
type serviceProcess struct {
	cmd                 *exec.Cmd
	exited              chan error
	stderr              *tailBuffer
	webhook, grpc, rest string
	ready               time.Duration // from exec to the first 200 of /readyz
}

// startService runs the binary on the given store (env: its
// ACCOUNTHEALTH_DATA_DIR or ACCOUNTHEALTH_DATABASE_URL) and waits until
// /readyz answers 200.
func startService(ctx context.Context, bin string, storeEnv string, extraEnv ...string) (*serviceProcess, error) {
	s := &serviceProcess{stderr: &tailBuffer{}, exited: make(chan error, 1)}
	for _, a := range []*string{&s.webhook, &s.grpc, &s.rest} {
		var err error
		if *a, err = freeport.Addr(); err != nil {
			return nil, err
		}
	}
	s.cmd = exec.Command(bin, "serve")
	s.cmd.Env = append(withoutServiceEnv(),
		"ACCOUNTHEALTH_WEBHOOK_ADDR="+s.webhook, "ACCOUNTHEALTH_GRPC_ADDR="+s.grpc, "ACCOUNTHEALTH_API_ADDR="+s.rest,
		"ACCOUNTHEALTH_WEBHOOK_SECRET="+benchSecret, "ACCOUNTHEALTH_LOG_LEVEL=warn", storeEnv)
	s.cmd.Env = append(s.cmd.Env, extraEnv...)
	s.cmd.Stderr = s.stderr
	began := time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.exited <- s.cmd.Wait() }()
	deadline := time.NewTimer(readyWait)
	defer deadline.Stop()
	// Polled finely: the time to ready is one of the figures.
	poll := time.NewTicker(2 * time.Millisecond)
	defer poll.Stop()
	client := &http.Client{Timeout: time.Second}
	for {
		res, err := client.Get("http://" + s.webhook + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				s.ready = time.Since(began)
				return s, nil
			}
		}
		select {
		case err := <-s.exited:
			return nil, fmt.Errorf("serve exited before it was ready (%v):\n%s", err, s.stderr)
		case <-deadline.C:
			s.kill()
			return nil, fmt.Errorf("serve was not ready within %v:\n%s", readyWait, s.stderr)
		case <-ctx.Done():
			s.kill()
			return nil, ctx.Err()
		case <-poll.C:
		}
	}
}

// withoutServiceEnv is the tool's environment without the ACCOUNTHEALTH_
// settings of the developer's shell, which would change what is measured.
func withoutServiceEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ACCOUNTHEALTH_") {
			out = append(out, kv)
		}
	}
	return out
}

func (s *serviceProcess) pid() int { return s.cmd.Process.Pid }

// stop shuts the service down with SIGTERM, as an operator does.
func (s *serviceProcess) stop() error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-s.exited:
		if err != nil {
			return fmt.Errorf("serve exited with %v:\n%s", err, s.stderr)
		}
		return nil
	case <-time.After(time.Minute):
		s.kill()
		return fmt.Errorf("serve did not stop within a minute of SIGTERM:\n%s", s.stderr)
	}
}

func (s *serviceProcess) kill() { _ = s.cmd.Process.Kill() }

// noopServer is the tool's own executable serving the baselines.
type noopServer struct {
	cmd        *exec.Cmd
	stdin      io.Closer
	grpc, http string
}

func startNoop() (*noopServer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	n := &noopServer{cmd: exec.Command(self)}
	n.cmd.Env = append(os.Environ(), noopEnv+"=1")
	n.cmd.Stderr = os.Stderr
	if n.stdin, err = n.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if _, scanErr := fmt.Sscan(line, &n.grpc, &n.http); err != nil || scanErr != nil {
		n.stop()
		return nil, fmt.Errorf("the no-op server did not start: %q %v", line, errors.Join(err, scanErr))
	}
	return n, nil
}

func (n *noopServer) pid() int { return n.cmd.Process.Pid }

func (n *noopServer) stop() {
	n.stdin.Close()
	_ = n.cmd.Wait()
}

// cpuTicks is the CPU time a process has used so far, user and system, in
// clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is the first, utime the 12th, stime the 13th.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	return utime + stime, errors.Join(err1, err2)
}

// busyTicks is the CPU time every core of the machine has spent busy so
// far, in clock ticks, from /proc/stat.
func busyTicks() (int64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return busyOf(line)
}

// busyOf reads /proc/stat's first line, the times of all cores: busy is
// all but idle and iowait (the fourth and fifth); the guest times after the
// eighth are already counted in user.
func busyOf(line string) (int64, error) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: %q is not the line of all cores", line)
	}
	var busy int64
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return busy, nil
}

// memory returns a process's resident set size now and at its peak
// (VmRSS, VmHWM), in bytes.
func memory(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(b)) {
		for _, f := range []struct {
			prefix string
			dst    *int64
		}{{"VmRSS:", &rss}, {"VmHWM:", &peak}} {
			if v, ok := strings.CutPrefix(line, f.prefix); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				if err != nil {
					return 0, 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
				}
				*f.dst = kb << 10
			}
		}
	}
	return rss, peak, nil
}

// dirSize is the bytes of the files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	return n, err
}
