package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/accounthealth/accounthealth/client"
	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/provider/simulate/simtest"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
	"github.com/accounthealth/accounthealth/server/stream"
	"github.com/accounthealth/accounthealth/server/webhook"
)

var crashSeed = flag.Int64("crash.seed", 0, "seed of TestCrashRecovery's histories and kill points; 0: from the clock")

// crashSize is the crash test's size: a short run by default, the long one
// (docs/reliability.md) with ACCOUNTHEALTH_CRASH_DELIVERIES=20000
// ACCOUNTHEALTH_CRASH_KILLS=5.
func crashSize(t *testing.T) (deliveries, kills int) {
	t.Helper()
	deliveries, kills = 2000, 3
	for name, v := range map[string]*int{"ACCOUNTHEALTH_CRASH_DELIVERIES": &deliveries, "ACCOUNTHEALTH_CRASH_KILLS": &kills} {
		if s := os.Getenv(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want a positive number", name, s)
			}
			*v = n
		}
	}
	return deliveries, kills
}

// crashSenders is how many deliveries are in flight at once: enough for
// the SQLite batcher to group commits, so that kills land mid-commit.
const crashSenders = 16

// TestCrashRecovery sends realistic histories (simtest: failures,
// disconnections, reconnections, removals, in every delivery mode) from
// concurrent senders that behave like the provider (a delivery not
// answered 2xx is sent again until it is), SIGKILLs the served binary when
// the count of acknowledged deliveries reaches points drawn from a seeded
// RNG, and restarts it on the same store and ports. Then: every
// acknowledged delivery is in its account's log, the log holds only the
// deliveries sent, in their order (a delivery whose commit outran the
// kill may be there twice); replaying each account's log through the
// model of the store's commit (simtest.Store) gives each entry's outcome
// and transition and the record served; a subscriber from the start and
// one that stayed subscribed across the kills (the Go client's Watch,
// resuming from its last cursor) each get every transition of the change
// log exactly once; and `accounthealth check` finds the store clean.
func TestCrashRecovery(t *testing.T) {
	deliveries, kills := crashSize(t)
	seed := *crashSeed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000_000
	}
	t.Logf("seed %d: rerun with -crash.seed=%d", seed, seed)
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		runCrash(t, seed, deliveries, kills, dir, []string{"--data-dir", dir})
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.URL(t)
		runCrash(t, seed, deliveries, kills, t.TempDir(), []string{"--database-url", url}, "ACCOUNTHEALTH_DATABASE_URL="+url)
	})
}

// crashAccount is one account's deliveries, sent in order, and what each
// attempt got.
type crashAccount struct {
	id     string
	bodies [][]byte
	acks   []crashAck // by delivery, once acknowledged
}

type crashAck struct {
	outcome ahv1.DeliveryOutcome
	seq     int64
}

// crashHistories generates accounts until they hold n deliveries, each
// history in one of the delivery modes in turn, and counts them by event.
func crashHistories(t *testing.T, seed int64, n int) ([]*crashAccount, map[string]int) {
	t.Helper()
	var accounts []*crashAccount
	events := map[string]int{}
	seen := map[string]bool{}
	for total, i := 0, 0; total < n; i++ {
		h := simtest.Generate(seed+int64(i), 12)
		if seen[h.Account] {
			t.Fatalf("histories %d and another share account %s", seed+int64(i), h.Account)
		}
		seen[h.Account] = true
		a := &crashAccount{id: h.Account}
		for _, d := range h.Deliveries(simtest.Modes[i%len(simtest.Modes)]) {
			a.bodies = append(a.bodies, d.Body)
			events[d.Event]++
		}
		a.acks = make([]crashAck, len(a.bodies))
		accounts = append(accounts, a)
		total += len(a.bodies)
	}
	return accounts, events
}

// upGate is open while the server is up: senders whose attempt failed
// wait on it before the next.
type upGate struct {
	mu sync.Mutex
	up chan struct{}
}

func (g *upGate) wait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.up
}

func (g *upGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.up)
}

func (g *upGate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.up = make(chan struct{})
}

// crashStats are the figures of a run, for the log.
type crashStats struct {
	attempts, acked, failedAttempts atomic.Int64
}

func runCrash(t *testing.T, seed int64, n, kills int, dataDir string, storeArgs []string, env ...string) {
	accounts, events := crashHistories(t, seed, n)
	total := 0
	for _, a := range accounts {
		total += len(a.bodies)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0xc4a5))
	// Kill k when the acknowledgements reach about k/(kills+1) of the
	// deliveries, give or take a quarter of a step.
	step := total / (kills + 1)
	var killAt []int64
	for k := 1; k <= kills; k++ {
		killAt = append(killAt, int64(k*step+rng.IntN(step/2+1)-step/4))
	}
	t.Logf("%d deliveries to %d accounts (%v), kills after %v acknowledgements", total, len(accounts), events, killAt)

	webhookAddr, grpcAddr, restAddr := freePort(t), freePort(t), freePort(t)
	s := serveOn(t, webhookAddr, grpcAddr, restAddr, dataDir, env...)
	began := time.Now()

	// The subscriber that stays across the kills, from before the first
	// delivery.
	c, err := client.New(grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	survivor := newCrashWatch(t, c, "")

	gate := &upGate{up: make(chan struct{})}
	gate.open()
	var stats crashStats
	acks := make(chan struct{}, 1)
	work := make(chan *crashAccount)
	var wg sync.WaitGroup
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: crashSenders}}
	for range crashSenders {
		wg.Go(func() {
			for a := range work {
				for i, body := range a.bodies {
					a.acks[i] = sendUntilAcked(httpc, "http://"+webhookAddr+"/v1/webhooks/argyle", body, gate, &stats)
					select {
					case acks <- struct{}{}:
					default:
					}
				}
			}
		})
	}
	go func() {
		for _, a := range accounts {
			work <- a
		}
		close(work)
	}()
	sent := make(chan struct{})
	go func() { wg.Wait(); close(sent) }()

	var readyIn []time.Duration
	for _, at := range killAt {
		for stats.acked.Load() < at {
			select {
			case <-acks:
			case <-sent:
			}
			if isClosed(sent) {
				break
			}
		}
		if isClosed(sent) {
			t.Fatalf("every delivery was acknowledged before the kill at %d", at)
		}
		gate.shut()
		inFlight := stats.attempts.Load() - stats.acked.Load() - stats.failedAttempts.Load()
		if err := s.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = s.cmd.Wait()
		t.Logf("killed after %d acknowledgements, %d attempts in flight", stats.acked.Load(), inFlight)
		restarted := time.Now()
		s = serveOn(t, webhookAddr, grpcAddr, restAddr, dataDir, env...)
		readyIn = append(readyIn, servingAt(t, s).Sub(restarted).Round(time.Millisecond))
		gate.open()
	}
	<-sent
	duration := time.Since(began)

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	e := &e2e{s: s, api: ahv1.NewAccountHealthServiceClient(conn)}
	// A sentinel marks the end of the change log for both subscribers.
	sentinel := failedJSON("crash-sentinel", "crash-user", "invalid_credentials")
	if code := s.post(t, sentinel); code != http.StatusOK {
		t.Fatalf("sentinel: %d", code)
	}
	fromStart := newCrashWatch(t, c, stream.EncodeCursor(0))
	survivorEvents, fromStartEvents := survivor.until(t, "crash-sentinel"), fromStart.until(t, "crash-sentinel")

	var problems []string
	logged := map[int64]bool{} // changes in the accounts' logs, by entry
	outran := 0
	for _, a := range accounts {
		p, n := checkCrashAccount(t, e, a, logged)
		problems = append(problems, p...)
		outran += n
	}
	for name, evs := range map[string][]*ahv1.DisconnectionEvent{"the subscriber from the start": fromStartEvents, "the subscriber across the kills": survivorEvents} {
		got := map[int64]int{}
		lastOf := map[string]int64{} // the last entry whose change came, by account
		for _, ev := range evs {
			if ev.GetAccountId() == "crash-sentinel" {
				continue
			}
			seq := ev.GetDelivery().GetSequence()
			if seq <= lastOf[ev.GetAccountId()] {
				problems = append(problems, fmt.Sprintf("%s got the change of entry %d after that of entry %d", name, seq, lastOf[ev.GetAccountId()]))
			}
			lastOf[ev.GetAccountId()] = seq
			got[seq]++
		}
		for seq, n := range got {
			if n != 1 || !logged[seq] {
				problems = append(problems, fmt.Sprintf("%s got the change of entry %d %d times (in the log: %v)", name, seq, n, logged[seq]))
			}
		}
		for seq := range logged {
			if got[seq] == 0 {
				problems = append(problems, fmt.Sprintf("%s never got the change of entry %d", name, seq))
			}
		}
	}
	code, out, errOut := runBinary(t, nil, append([]string{"check"}, storeArgs...)...)
	if code != 0 || !strings.Contains(out, ": clean") {
		problems = append(problems, fmt.Sprintf("accounthealth check: exit %d\n%s%s", code, out, errOut))
	}
	t.Logf("%d deliveries, %d attempts, %d acknowledged, %d attempts failed and retried, %d commits that outran a kill (committed, never answered), %d kills, serving again %v after each restart (its log), %d changes, in %v; check: %s",
		total, stats.attempts.Load(), stats.acked.Load(), stats.failedAttempts.Load(), outran, len(killAt), readyIn, len(logged), duration.Round(time.Millisecond), strings.TrimSpace(out))
	if len(problems) > 0 {
		if len(problems) > 50 {
			problems = append(problems[:50], fmt.Sprintf("... and %d more", len(problems)-50))
		}
		t.Errorf("seed %d: after %d kills:\n%s", seed, len(killAt), strings.Join(problems, "\n"))
	}
	s.stop(t)
}

// servingAt is when the server logged that it serves: its store open,
// recovered and checked, its listeners up.
func servingAt(t *testing.T, s *server) time.Time {
	t.Helper()
	// The line comes once the listeners are up, so it may follow the
	// first answer to a probe.
	for line := range strings.Lines(s.stderr.waitForText(t, "msg=serving")) {
		if !strings.Contains(line, "msg=serving") {
			continue
		}
		stamp, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			t.Fatalf("the serving line's time: %v\n%s", err, line)
		}
		return at
	}
	t.Fatalf("serve did not log serving:\n%s", s.stderr)
	return time.Time{}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// sendUntilAcked posts body, signed, until it is answered 2xx, waiting
// for the server to be up again after each failed attempt.
func sendUntilAcked(c *http.Client, url string, body []byte, gate *upGate, stats *crashStats) crashAck {
	for {
		<-gate.wait()
		stats.attempts.Add(1)
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			panic(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(webhook.SignatureHeader, webhook.Sign(fixtureSecret, body))
		res, err := c.Do(req)
		if err == nil {
			var b bytes.Buffer
			_, err = b.ReadFrom(res.Body)
			res.Body.Close()
			var out ahv1.ReceiveArgyleWebhookResponse
			if err == nil && res.StatusCode/100 == 2 && protojson.Unmarshal(b.Bytes(), &out) == nil {
				stats.acked.Add(1)
				return crashAck{outcome: out.GetOutcome(), seq: out.GetSequence()}
			}
		}
		stats.failedAttempts.Add(1)
	}
}

// checkCrashAccount compares an account's log, record and changes with
// what the deliveries sent imply, and adds the entries that made a change
// to logged. It returns the problems and how many commits outran a kill:
// committed, but the answer never came.
func checkCrashAccount(t *testing.T, e *e2e, a *crashAccount, logged map[int64]bool) (problems []string, outran int) {
	problem := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("account %s: ", a.id)+fmt.Sprintf(format, args...))
	}
	entries := e.timeline(t, a.id)
	bySeq := map[int64]int{}
	for i, en := range entries {
		bySeq[en.GetSequence()] = i
	}
	// Each entry's delivery: the one acknowledged with its Seq; or the
	// first acknowledged as a DUPLICATE of it that no delivery before
	// claimed (a commit the kill cut off from its answer, whose retry was
	// recognised as a redelivery); or, for an entry no answer named, the
	// next delivery acknowledged (deliveries go one at a time: the same
	// commit, retried, was not recognised and was logged again).
	delivery := make([]int, len(entries))
	for i := range delivery {
		delivery[i] = -1
	}
	for _, dup := range []bool{false, true} {
		for d, ack := range a.acks {
			if (ack.outcome == ahv1.DeliveryOutcome_DELIVERY_OUTCOME_DUPLICATE) != dup {
				continue
			}
			i, ok := bySeq[ack.seq]
			switch {
			case !ok:
				problem("delivery %d was acknowledged (%s, seq %d) but is not in the log", d, ack.outcome, ack.seq)
			case delivery[i] < 0 && dup:
				delivery[i], outran = d, outran+1
			case delivery[i] < 0:
				delivery[i] = d
			}
		}
	}
	next := -1
	for i := len(entries) - 1; i >= 0; i-- {
		if delivery[i] >= 0 {
			next = delivery[i]
		} else if next >= 0 {
			delivery[i], outran = next, outran+1
		} else {
			problem("entry %d follows the last delivery acknowledged", entries[i].GetSequence())
			return problems, outran
		}
	}

	model := simtest.NewStore(store.DefaultRedeliveryWindow)
	last := -1
	for i, en := range entries {
		d := delivery[i]
		body := a.bodies[d]
		if d < last {
			problem("entry %d is delivery %d, after delivery %d: out of the order sent", en.GetSequence(), d, last)
		}
		last = d
		var want structpb.Struct
		if err := protojson.Unmarshal(body, &want); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&want, en.GetPayload()) {
			problem("entry %d holds %s, not delivery %d's body %s", en.GetSequence(), en.GetPayload(), d, body)
		}
		res, err := model.Commit(body, en.GetReceivedAt().AsTime())
		if err != nil {
			t.Fatal(err)
		}
		if got := en.GetOutcome(); got != protoOutcome(res.Outcome) {
			problem("entry %d (delivery %d): %s, the model says %s", en.GetSequence(), d, got, res.Outcome)
		}
		got, tr := en.GetTransition(), res.Transition
		switch {
		case (got != nil) != (tr != nil):
			problem("entry %d (delivery %d): change %v, the model's %+v", en.GetSequence(), d, got, tr)
		case tr != nil && (got.GetKind() != protoKind(tr.Kind) || got.GetPreviousState() != protoState(tr.PreviousState) ||
			got.GetState() != protoState(tr.State) || got.GetErrorCode() != tr.ErrorCode):
			problem("entry %d (delivery %d): change %v, the model's %+v", en.GetSequence(), d, got, tr)
		}
		if got != nil {
			logged[en.GetSequence()] = true
		}
	}
	for d, ack := range a.acks {
		if ack.outcome == ahv1.DeliveryOutcome_DELIVERY_OUTCOME_DUPLICATE {
			if i, ok := bySeq[ack.seq]; ok && !bytes.Equal(a.bodies[delivery[i]], a.bodies[d]) {
				problem("delivery %d was acknowledged as a duplicate of entry %d, which holds other bytes", d, ack.seq)
			}
		} else if !slices.Contains(delivery, d) {
			problem("delivery %d (%s) is not in the log", d, ack.outcome)
		}
	}

	want := model.Record
	if want.State == 0 {
		return problems, outran
	}
	got := e.health(t, a.id)
	type view struct {
		State                   ahv1.HealthState
		Code, Message           string
		Action                  ahv1.RemedyAction
		Failures                int32
		Ever, Unconfirmed       bool
		LastEvent               string
		StateSince, LastEventAt time.Time
	}
	gotView := view{got.GetState(), got.GetErrorCode(), got.GetErrorMessage(), got.GetRemedy().GetAction(), got.GetConsecutiveFailures(),
		got.GetEverConnected(), got.GetUnconfirmed(), got.GetLastEventType(), got.GetStateSince().AsTime(), got.GetLastEventAt().AsTime()}
	wantView := view{protoState(want.State), want.ErrorCode, want.ErrorMessage, protoAction(want.Remedy.Action), int32(want.ConsecutiveFailures),
		want.EverConnected, want.Unconfirmed, want.LastEventType, want.StateSince.UTC(), want.LastEventAt.UTC()}
	if gotView != wantView {
		problem("record:\n got %+v\nwant %+v", gotView, wantView)
	}
	return problems, outran
}

// crashWatch is a StreamDisconnections subscriber through the Go client's
// Watch, which reconnects and resumes from its last cursor.
type crashWatch struct {
	mu      sync.Mutex
	events  []*ahv1.DisconnectionEvent
	changed chan struct{} // closed and replaced on every event
	err     error
}

func newCrashWatch(t *testing.T, c *client.Client, resumeAfter string) *crashWatch {
	w := &crashWatch{changed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	subscribed := make(chan struct{})
	var once sync.Once
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := c.Watch(ctx, client.WatchOptions{IncludeRecoveries: true, ResumeAfter: resumeAfter,
			Backoff: client.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond},
			// The first heartbeat: subscribed, every change from then on comes.
			OnHeartbeat: func(context.Context, *ahv1.Heartbeat) error { once.Do(func() { close(subscribed) }); return nil },
		}, func(_ context.Context, ev *ahv1.DisconnectionEvent) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.events = append(w.events, ev)
			close(w.changed)
			w.changed = make(chan struct{})
			return nil
		})
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-subscribed:
	case <-done:
		t.Fatalf("Watch ended: %v", w.err)
	case <-time.After(streamWait):
		t.Fatalf("Watch did not subscribe within %v", streamWait)
	}
	return w
}

// until waits for an event of account and returns every event so far.
func (w *crashWatch) until(t *testing.T, account string) []*ahv1.DisconnectionEvent {
	t.Helper()
	guard := time.NewTimer(streamWait)
	defer guard.Stop()
	for {
		w.mu.Lock()
		evs, err, changed := slices.Clone(w.events), w.err, w.changed
		w.mu.Unlock()
		if slices.ContainsFunc(evs, func(ev *ahv1.DisconnectionEvent) bool { return ev.GetAccountId() == account }) {
			return evs
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch ended: %v", err)
		}
		select {
		case <-changed:
		case <-guard.C:
			t.Fatalf("no event of %s within %v (%d events)", account, streamWait, len(evs))
		}
	}
}
