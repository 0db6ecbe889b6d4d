package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// subscribersEnv set to "N URL" makes the tool's executable a process of N
// StreamDisconnections subscribers reading URL's newline-delimited JSON, so
// that their reading and decoding do not share the service's process.
const subscribersEnv = "ACCOUNTHEALTH_BENCH_SUBSCRIBERS"

// eventsWait bounds how long subscribers wait for the events of a row
// after it ends.
const eventsWait = 30 * time.Second

// runSubscribers opens the streams, prints "ready" once each has its first
// message (the heartbeat at its start), then reads one line from stdin, the
// events each stream must get, waits for them (at most eventsWait) and
// prints the events received in all.
func runSubscribers(spec string) error {
	nText, url, ok := strings.Cut(spec, " ")
	n, err := strconv.Atoi(nText)
	if !ok || err != nil || n < 1 {
		return fmt.Errorf("%s: %q is not \"N URL\"", subscribersEnv, spec)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	var (
		events  atomic.Int64
		opened  sync.WaitGroup
		failure = make(chan error, n)
	)
	opened.Add(n)
	for range n {
		go func() {
			if err := subscribe(ctx, client, url, &opened, &events); err != nil && ctx.Err() == nil {
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
	fmt.Println(events.Load())
	return nil
}

// subscribe reads one stream, counting its events.
func subscribe(ctx context.Context, client *http.Client, url string, opened *sync.WaitGroup, events *atomic.Int64) error {
	first := true
	defer func() {
		if first {
			opened.Done()
		}
	}()
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
				Event json.RawMessage `json:"event"`
			} `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			return err
		}
		if msg.Result.Event != nil {
			events.Add(1)
		}
		if first {
			first = false
			opened.Done()
		}
	}
	return sc.Err()
}

// subscribers is a running process of subscribers.
type subscribers struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
}

func startSubscribers(n int, url string) (*subscribers, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	s := &subscribers{cmd: exec.Command(self)}
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
// returns how many they got in all.
func (s *subscribers) finish(perStream int64) (int64, error) {
	defer func() { s.stdin.Close(); _ = s.cmd.Wait() }()
	if _, err := fmt.Fprintln(s.stdin, perStream); err != nil {
		return 0, err
	}
	var got int64
	if _, err := fmt.Fscan(s.stdout, &got); err != nil {
		return 0, fmt.Errorf("the subscribers' count: %w", err)
	}
	return got, nil
}
