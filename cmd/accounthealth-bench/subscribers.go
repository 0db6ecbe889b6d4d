package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

// subscribersEnv set to "N TARGET" makes the tool's executable a process of
// N StreamDisconnections subscribers, so that their reading and decoding do
// not share the service's process: TARGET is a URL whose newline-delimited
// JSON they read (REST), or grpcScheme and the gRPC listener's address.
const subscribersEnv = "ACCOUNTHEALTH_BENCH_SUBSCRIBERS"

// grpcScheme starts a subscribers' target that is a gRPC address.
const grpcScheme = "grpc://"

// streamsPerConn: gRPC subscribers share connections, this many streams
// each at most, as a client with many subscribers would.
const streamsPerConn = 250

// eventsWait bounds how long subscribers wait for the events of a row
// after it ends.
const eventsWait = 30 * time.Second

// runSubscribers opens the streams, prints "ready" once each has its first
// message (the heartbeat at its start), then reads one line from stdin, the
// events each stream must get, waits for them (at most eventsWait) and
// prints the events received in all with the p50 and p99 of their latency
// in nanoseconds: from the service's receipt of the delivery that caused an
// event (its occurredAt) to a subscriber decoding it. The processes share
// the machine's clock.
func runSubscribers(spec string) error {
	nText, url, ok := strings.Cut(spec, " ")
	n, err := strconv.Atoi(nText)
	if !ok || err != nil || n < 1 {
		return fmt.Errorf("%s: %q is not \"N URL\"", subscribersEnv, spec)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	subscribe, closeConns, err := subscriberOf(url, n)
	if err != nil {
		return err
	}
	defer closeConns()
	var (
		events    atomic.Int64
		opened    sync.WaitGroup
		failure   = make(chan error, n)
		latencies = make([]latencyHistogram, n)
	)
	opened.Add(n)
	for i := range n {
		go func() {
			s := &stream{opened: &opened, events: &events, latencies: &latencies[i]}
			defer s.open()
			if err := subscribe(ctx, i, s); err != nil && ctx.Err() == nil {
				failure <- err
			}
		}()
	}
	opened.Wait()
	fmt.Println("ready")

	var perStream int64
	if _, err := fmt.Fscan(os.Stdin, &perStream); err != nil {
		return err
	}
	want := perStream * int64(n)
	deadline := time.Now().Add(eventsWait)
	for events.Load() < want && time.Now().Before(deadline) {
		select {
		case err := <-failure:
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel() // the histograms are read below: no stream may add to them
	var all latencyHistogram
	for i := range latencies {
		all.merge(&latencies[i])
	}
	fmt.Println(events.Load(), int64(all.quantile(0.50)), int64(all.quantile(0.99)))
	return nil
}

// latencyHistogram counts latencies in buckets 2% wide (from 1 µs to over
// an hour in under 1,200 buckets): a stream's events at any rate in 10 KB,
// percentiles within 2%.
type latencyHistogram struct {
	mu     sync.Mutex
	counts [1200]int64
}

const bucketGrowth = 1.02

func (h *latencyHistogram) add(d time.Duration) {
	i := 0
	if us := float64(d) / float64(time.Microsecond); us > 1 {
		i = min(int(math.Log(us)/math.Log(bucketGrowth))+1, len(h.counts)-1)
	}
	h.mu.Lock()
	h.counts[i]++
	h.mu.Unlock()
}

func (h *latencyHistogram) merge(o *latencyHistogram) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// quantile is the upper bound of the bucket holding the q-quantile (0..1),
// nearest rank; 0 when nothing was counted.
func (h *latencyHistogram) quantile(q float64) time.Duration {
	var total int64
	for _, c := range h.counts {
		total += c
	}
	rank := int64(math.Ceil(q * float64(total)))
	for i, c := range h.counts {
		if rank -= c; rank <= 0 && total > 0 {
			return time.Duration(math.Pow(bucketGrowth, float64(i)) * float64(time.Microsecond))
		}
	}
	return 0
}

// stream is what one subscriber counts.
type stream struct {
	opened    *sync.WaitGroup
	once      sync.Once
	events    *atomic.Int64
	latencies *latencyHistogram
}

// open says the stream got its first message (or ended before one).
func (s *stream) open() { s.once.Do(s.opened.Done) }

// received counts a message: an event when occurredAt is not zero.
func (s *stream) received(occurredAt time.Time) {
	if !occurredAt.IsZero() {
		s.latencies.add(time.Since(occurredAt))
		s.events.Add(1)
	}
	s.open()
}

// subscriberOf is how subscriber i reads target's stream until ctx ends,
// and what closes the connections they share.
func subscriberOf(target string, n int) (func(ctx context.Context, i int, s *stream) error, func(), error) {
	addr, ok := strings.CutPrefix(target, grpcScheme)
	if !ok {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
		return func(ctx context.Context, _ int, s *stream) error { return subscribeREST(ctx, client, target, s) }, func() {}, nil
	}
	conns := make([]*grpc.ClientConn, (n+streamsPerConn-1)/streamsPerConn)
	closeAll := func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}
	for i := range conns {
		var err error
		if conns[i], err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	return func(ctx context.Context, i int, s *stream) error {
		return subscribeGRPC(ctx, ahv1.NewAccountHealthServiceClient(conns[i%len(conns)]), s)
	}, closeAll, nil
}

// subscribeREST reads one stream of newline-delimited JSON.
func subscribeREST(ctx context.Context, client *http.Client, url string, s *stream) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, res.Status)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var msg struct {
			Result struct {
				Event struct {
					OccurredAt time.Time `json:"occurredAt"`
				} `json:"event"`
			} `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			return err
		}
		s.received(msg.Result.Event.OccurredAt)
	}
	return sc.Err()
}

// subscribeGRPC reads one gRPC stream.
func subscribeGRPC(ctx context.Context, api ahv1.AccountHealthServiceClient, s *stream) error {
	st, err := api.StreamDisconnections(ctx, &ahv1.StreamDisconnectionsRequest{})
	if err != nil {
		return err
	}
	for {
		msg, err := st.Recv()
		if err != nil {
			return err
		}
		var at time.Time
		if ev := msg.GetEvent(); ev != nil {
			at = ev.GetOccurredAt().AsTime()
		}
		s.received(at)
	}
}

// subscribers is a running process of subscribers.
type subscribers struct {
	n      int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
}

func startSubscribers(n int, url string) (*subscribers, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	s := &subscribers{n: n, cmd: exec.Command(self)}
	s.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %s", subscribersEnv, n, url))
	s.cmd.Stderr = os.Stderr
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s.stdout = bufio.NewReader(stdout)
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	if line, err := s.stdout.ReadString('\n'); err != nil || line != "ready\n" {
		s.stdin.Close()
		_ = s.cmd.Wait()
		return nil, fmt.Errorf("the subscribers did not open their streams: %q %v", line, err)
	}
	return s, nil
}

// finish tells the subscribers how many events each stream must get and
// returns how many they got in all, and the p50 and p99 of their latency.
func (s *subscribers) finish(perStream int64) (got int64, p50, p99 time.Duration, err error) {
	defer func() { s.stdin.Close(); _ = s.cmd.Wait() }()
	if _, err := fmt.Fprintln(s.stdin, perStream); err != nil {
		return 0, 0, 0, err
	}
	if _, err := fmt.Fscan(s.stdout, &got, &p50, &p99); err != nil {
		return 0, 0, 0, fmt.Errorf("the subscribers' count: %w", err)
	}
	return got, p50, p99, nil
}
