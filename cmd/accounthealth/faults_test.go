package main

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
	"github.com/accounthealth/accounthealth/server/store/sqlite"
)

// Storage faults under load, through the built binary: while the store is
// full, down or hung, deliveries get 503 (never 200 for what was not
// stored, never 500), reads that need the store are UNAVAILABLE, and the
// server is not ready, saying why; once the fault ends the same process
// recovers, and every acknowledged delivery is there.

// faultEnv is the binary's settings for these tests: a check every 250 ms,
// so that recovery is found soon after the fault ends.
var faultEnv = []string{"ACCOUNTHEALTH_HEALTH_CHECK_INTERVAL=250ms"}

// faultWait bounds each wait for an event of a fault test: far above what
// any takes, so that a broken build fails instead of hanging.
const faultWait = 60 * time.Second

// load is a few concurrent senders of signed deliveries, each for an
// account of its own (a connection, so each account ends HEALTHY), with
// every answer kept.
type load struct {
	s    *server
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every answer
	acked   []string      // accounts whose delivery got 200
	refused []string      // accounts whose delivery got 503
	counts  map[int]int   // answers by status
	errs    []string      // anything else
}

func startLoad(t *testing.T, s *server, senders int) *load {
	l := &load{s: s, stop: make(chan struct{}), changed: make(chan struct{}), counts: map[int]int{}}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range senders {
		l.wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				acct := fmt.Sprintf("fault-%d-%d", i, n)
				code, err := s.tryPost(updatedJSON(acct, "u", "connected", "", at))
				l.answer(acct, code, err)
			}
		})
	}
	t.Cleanup(l.end)
	return l
}

func (l *load) answer(acct string, code int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err != nil:
		l.errs = append(l.errs, fmt.Sprintf("%s: %v", acct, err))
	case code == http.StatusOK:
		l.acked = append(l.acked, acct)
	case code == http.StatusServiceUnavailable:
		l.refused = append(l.refused, acct)
	default:
		l.errs = append(l.errs, fmt.Sprintf("%s: HTTP %d", acct, code))
	}
	l.counts[code]++
	close(l.changed)
	l.changed = make(chan struct{})
}

// await waits for n more answers of status code than there were when
// called, and returns when the last came.
func (l *load) await(t *testing.T, code, n int) time.Time {
	t.Helper()
	guard := time.After(faultWait)
	l.mu.Lock()
	want := l.counts[code] + n
	for l.counts[code] < want {
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-guard:
			t.Fatalf("waited %s for %d answers %d; answers so far: %v\n%s", faultWait, n, code, l.answers(), l.s.stderr)
		}
		l.mu.Lock()
	}
	l.mu.Unlock()
	return time.Now()
}

func (l *load) answers() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int]int{}
	for k, v := range l.counts {
		out[k] = v
	}
	return out
}

// end stops the senders and waits for them.
func (l *load) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// check ends the load, then checks what the store holds: every
// acknowledged delivery with the health it implies, and (exact) nothing
// that was refused, or (not exact: a commit cut off mid-way may have
// committed after its sender got 503, which is safe, since the sender
// retries and the redelivery is recognised) at most those. Then it sends
// every refused delivery again, as the provider would, and all must be
// accepted now.
func (l *load) check(t *testing.T, exact bool) {
	t.Helper()
	l.end()
	if len(l.errs) > 0 {
		t.Errorf("%d answers neither 200 nor 503, e.g. %s", len(l.errs), l.errs[0])
	}
	t.Logf("answers: %v", l.counts)
	c := dialHealth(t, l.s)
	total := c.total(t)
	if total < len(l.acked) || (exact && total != len(l.acked)) || total > len(l.acked)+len(l.refused) {
		t.Errorf("the store holds %d accounts; %d deliveries were acknowledged, %d refused (exact: %v)", total, len(l.acked), len(l.refused), exact)
	}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, acct := range l.refused {
		if code, err := l.s.tryPost(updatedJSON(acct, "u", "connected", "", at)); code != http.StatusOK {
			t.Fatalf("redelivery of %s after the fault: %d %v", acct, code, err)
		}
	}
	for _, acct := range append(l.acked, l.refused...) {
		if got := c.state(t, acct); got != ahv1.HealthState_HEALTH_STATE_HEALTHY {
			t.Fatalf("account %s: %s, want HEALTHY", acct, got)
		}
	}
	if total := c.total(t); total != len(l.acked)+len(l.refused) {
		t.Errorf("after the redeliveries the store holds %d accounts, want %d", total, len(l.acked)+len(l.refused))
	}
}

// healthClient reads the binary over gRPC.
type healthClient struct {
	api    ahv1.AccountHealthServiceClient
	health healthpb.HealthClient
}

func dialHealth(t *testing.T, s *server) healthClient {
	t.Helper()
	conn, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthClient{api: ahv1.NewAccountHealthServiceClient(conn), health: healthpb.NewHealthClient(conn)}
}

func (c healthClient) total(t *testing.T) int {
	t.Helper()
	sum, err := c.api.GetHealthSummary(t.Context(), &ahv1.GetHealthSummaryRequest{})
	if err != nil {
		t.Fatalf("GetHealthSummary: %v", err)
	}
	return int(sum.GetTotal())
}

func (c healthClient) state(t *testing.T, acct string) ahv1.HealthState {
	t.Helper()
	resp, err := c.api.GetAccountHealth(t.Context(), &ahv1.GetAccountHealthRequest{AccountId: acct})
	if err != nil {
		t.Fatalf("GetAccountHealth(%s): %v", acct, err)
	}
	return resp.GetAccountHealth().GetState()
}

// servingWatch follows grpc.health.v1's Watch of the whole server.
type servingWatch chan healthpb.HealthCheckResponse_ServingStatus

func (c healthClient) watch(t *testing.T) servingWatch {
	t.Helper()
	w, err := c.health.Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	updates := make(servingWatch, 16)
	go func() {
		defer close(updates)
		for {
			resp, err := w.Recv()
			if err != nil {
				return
			}
			updates <- resp.GetStatus()
		}
	}()
	return updates
}

// await waits for the status want and returns when it came.
func (w servingWatch) await(t *testing.T, want healthpb.HealthCheckResponse_ServingStatus) time.Time {
	t.Helper()
	guard := time.After(faultWait)
	for {
		select {
		case got, ok := <-w:
			if !ok {
				t.Fatalf("health watch ended before it said %s", want)
			}
			if got == want {
				return time.Now()
			}
		case <-guard:
			t.Fatalf("health watch did not say %s within %s", want, faultWait)
		}
	}
}

// readyz returns /readyz's status and body on the webhook listener, the
// one the provider's load balancer probes.
func readyz(t *testing.T, s *server) (int, string) {
	t.Helper()
	res, err := http.Get("http://" + s.webhook + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// wantNotReady checks /readyz during a fault: 503, with the reason and not
// the store's own words.
func wantNotReady(t *testing.T, s *server, reason string) {
	t.Helper()
	code, body := readyz(t, s)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, reason) || strings.Contains(body, "127.0.0.1") || strings.Contains(body, s.dataDir) {
		t.Errorf("/readyz during the fault: %d %s, want 503 saying %q and naming no host or file", code, body, reason)
	}
}

// wantReadsUnavailable checks that a read of an account the store holds is
// UNAVAILABLE over gRPC and 503 over REST.
func wantReadsUnavailable(t *testing.T, s *server, c healthClient, acct string) {
	t.Helper()
	_, err := c.api.GetAccountHealth(t.Context(), &ahv1.GetAccountHealthRequest{AccountId: acct})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("gRPC GetAccountHealth during the fault: %v, want UNAVAILABLE", err)
	}
	if code, body := s.restGet(t, "/v1/accounts/"+acct+"/health"); code != http.StatusServiceUnavailable {
		t.Errorf("REST health during the fault: %d %s, want 503", code, body)
	}
}

// faultRun is a served binary under load, before its fault.
type faultRun struct {
	s *server
	c healthClient
	w servingWatch
	l *load
}

// underLoad serves on dir and env, with 4 senders, and returns once it is
// SERVING and has acknowledged 200 deliveries.
func underLoad(t *testing.T, dir string, env []string) faultRun {
	t.Helper()
	s := serve(t, dir, env...)
	c := dialHealth(t, s)
	w := c.watch(t)
	w.await(t, healthpb.HealthCheckResponse_SERVING)
	l := startLoad(t, s, 4)
	l.await(t, http.StatusOK, 200)
	return faultRun{s: s, c: c, w: w, l: l}
}

// faulted waits for refusals 503s and NOT_SERVING, and checks /readyz
// gives the reason.
func (f faultRun) faulted(t *testing.T, refusals int, notReady string) {
	t.Helper()
	f.l.await(t, http.StatusServiceUnavailable, refusals)
	f.w.await(t, healthpb.HealthCheckResponse_NOT_SERVING)
	wantNotReady(t, f.s, notReady)
}

// recovered waits for the server to be ready again and to accept a
// delivery, and logs how long each took after the fault ended.
func recovered(t *testing.T, l *load, w servingWatch, ended time.Time) {
	t.Helper()
	ready := w.await(t, healthpb.HealthCheckResponse_SERVING)
	accepted := l.await(t, http.StatusOK, 1)
	if code, body := readyz(t, l.s); code != http.StatusOK {
		t.Errorf("/readyz after recovery: %d %s", code, body)
	}
	t.Logf("after the fault ended: SERVING in %s, a delivery accepted in %s", ready.Sub(ended), accepted.Sub(ended))
}

// A full disk under SQLite: the data directory is a small tmpfs, filled up
// while deliveries arrive, then freed.
func TestFaultFullDiskSQLite(t *testing.T) {
	t.Parallel()
	dir := smallFilesystem(t, 32<<20)
	f := underLoad(t, dir, faultEnv)

	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	f.faulted(t, 20, "not ready: commits fail")
	// Reads need no room: they are still served.
	if got := f.c.state(t, f.l.acked[0]); got != ahv1.HealthState_HEALTH_STATE_HEALTHY {
		t.Errorf("reading %s on a full disk: %s, want HEALTHY", f.l.acked[0], got)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	recovered(t, f.l, f.w, time.Now())
	f.l.check(t, true)
}

// A SQLite database held under the write lock by another process (a
// backup, a second instance): commits wait out the busy timeout, then get
// 503; reads go on, since WAL readers never wait for the writer.
func TestFaultSQLiteLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := underLoad(t, dir, faultEnv)

	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName)+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	f.faulted(t, 4, "not ready: ")
	if got := f.c.state(t, f.l.acked[0]); got != ahv1.HealthState_HEALTH_STATE_HEALTHY {
		t.Errorf("reading %s under another process's lock: %s, want HEALTHY", f.l.acked[0], got)
	}
	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	recovered(t, f.l, f.w, time.Now())
	// Not exact: a sender that waited for a commit queued behind the
	// locked one may give up (503) just before its own commit succeeds.
	f.l.check(t, false)
}

// smallFilesystem mounts a tmpfs of size bytes on a new directory, for the
// test's life. Mounting needs root (CAP_SYS_ADMIN), which CI has; elsewhere
// the test is skipped.
func smallFilesystem(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		if inCI() {
			t.Fatalf("mount a tmpfs for the full-disk test: %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	// Lazily: the server, killed by an earlier cleanup, may not have let
	// go of its files yet.
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes path until the filesystem has no room left.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// The last, partial chunks: a page's worth is all SQLite needs.
	for _, n := range []int{4096, 512, 1} {
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
}

// inCI reports whether CI is set to true, as pgtest reads it.
func inCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// PostgreSQL stopped (fast mode) while deliveries arrive, then started
// again: the same process recovers without a restart.
func TestFaultPostgresRestart(t *testing.T) {
	t.Parallel()
	pg := pgtest.StartServer(t)
	f := underLoad(t, t.TempDir(), append(faultEnv, "ACCOUNTHEALTH_DATABASE_URL="+pg.URL()))

	pg.Stop()
	f.faulted(t, 20, "not ready: commits fail")
	wantReadsUnavailable(t, f.s, f.c, f.l.acked[0])
	restarted := time.Now() // recovery's figures include PostgreSQL's own start
	pg.Start()
	recovered(t, f.l, f.w, restarted)
	f.l.check(t, false)
}

// A store that hangs: a proxy between the binary and PostgreSQL stops
// forwarding without closing anything, then forwards again.
func TestFaultPostgresHangs(t *testing.T) {
	t.Parallel()
	databaseURL := pgtest.URL(t)
	u, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, u.Host)
	u.Host = p.addr()
	f := underLoad(t, t.TempDir(), append(faultEnv, "ACCOUNTHEALTH_DATABASE_URL="+u.String()))

	p.hold()
	// Commits or the check: whichever of their bounds ran out first.
	f.faulted(t, 4, "not ready: ")
	wantReadsUnavailable(t, f.s, f.c, f.l.acked[0])
	p.release()
	recovered(t, f.l, f.w, time.Now())
	f.l.check(t, false)
}

// proxy forwards TCP connections to upstream; while held it forwards
// nothing, in either direction, and closes nothing, as a lost network path
// does.
type proxy struct {
	lis      net.Listener
	upstream string
	mu       sync.Mutex
	resumed  chan struct{} // nil while forwarding; closed on release
}

func startProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{lis: lis, upstream: upstream}
	var conns sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		lis.Close()
		p.release()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		conns.Wait()
	})
	go func() {
		for {
			down, err := lis.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				down.Close()
				continue
			}
			mu.Lock()
			open = append(open, down, up)
			mu.Unlock()
			conns.Go(func() { p.forward(up, down) })
			conns.Go(func() { p.forward(down, up) })
		}
	}()
	return p
}

func (p *proxy) addr() string { return p.lis.Addr().String() }

// forward copies from src to dst, waiting before each write while held.
func (p *proxy) forward(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			resumed := p.resumed
			p.mu.Unlock()
			if resumed != nil {
				<-resumed
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resumed == nil {
		p.resumed = make(chan struct{})
	}
}

func (p *proxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resumed != nil {
		close(p.resumed)
		p.resumed = nil
	}
}
