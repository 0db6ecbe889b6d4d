package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/provider/simulate"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// benchSecret signs the tool's deliveries; the service is started with it.
const benchSecret = "accounthealth-bench-secret"

// failedEvery: one account in failedEvery is in error (auth_required), the
// rest healthy, so that filtering by state selects a part of the store.
const failedEvery = 5

// bodies makes the deliveries: a simulated account's accounts.updated
// (compact JSON, about 1.1 KB, with the account object), its account id
// replaced by each delivery's own. Every delivery is a new account, so the
// store grows by one account per delivery acknowledged.
type bodies struct {
	healthy, failed [][]byte // a template split around its account id
	run             uint32   // keeps one run's ids apart from another's
}

func newBodies() (*bodies, error) {
	g := simulate.NewGenerator(simulate.Options{Seed: 17})
	template := func(ds []simulate.Delivery) ([][]byte, error) {
		d := ds[len(ds)-1]
		var compact bytes.Buffer
		if err := json.Compact(&compact, d.Body); err != nil {
			return nil, err
		}
		parts := bytes.Split(compact.Bytes(), []byte(d.Account))
		if len(parts) < 2 {
			return nil, errors.New("the simulated delivery does not name its account")
		}
		return parts, nil
	}
	a := g.NewAccount()
	a.Add()
	a.Connect()
	healthy, err := template(a.Rescan())
	if err != nil {
		return nil, err
	}
	failed, err := template(a.Disconnect("auth_required"))
	if err != nil {
		return nil, err
	}
	return &bodies{healthy: healthy, failed: failed, run: uint32(time.Now().UnixNano())}, nil
}

// accountID is delivery n's account: UUID-shaped, as the provider's are.
func (b *bodies) accountID(n int64) string {
	return fmt.Sprintf("%08x-0000-7000-8000-%012x", b.run, n)
}

// body is delivery n's: in error, and so an event for a subscriber, when
// n is a multiple of every.
func (b *bodies) body(n, every int64) []byte {
	t := b.healthy
	if n%every == 0 {
		t = b.failed
	}
	return bytes.Join(t, []byte(b.accountID(n)))
}

// ledger accounts for every delivery sent: each is acknowledged (200),
// refused (any other status, which the sender would send again) or lost
// (no answer). A run is void unless nothing is lost and every acknowledged
// delivery is found afterwards.
type ledger struct {
	next              atomic.Int64 // the last delivery number handed out
	sent, acked, lost atomic.Int64
	refused           atomic.Int64
	ackedBytes        atomic.Int64
	mu                sync.Mutex
	ackedIDs          []int64
	refusedBy         map[int]int64 // status -> count
}

func (l *ledger) balance() error {
	sent, acked, refused, lost := l.sent.Load(), l.acked.Load(), l.refused.Load(), l.lost.Load()
	if lost > 0 || sent != acked+refused {
		return fmt.Errorf("the ledger does not balance: sent %d, acknowledged %d, refused %d, no answer %d", sent, acked, refused, lost)
	}
	return nil
}

// sender posts signed deliveries to the service's webhook route, each
// counted in the ledger.
type sender struct {
	url    string
	client *http.Client
	bodies *bodies
	ledger *ledger
	// every: one delivery in every is in error (failedEvery unless set).
	every int64
	// acked collects per worker the deliveries acknowledged.
	acked [][]int64
}

func newSender(url string, concurrency int, b *bodies, l *ledger) *sender {
	return &sender{url: url, bodies: b, ledger: l, acked: make([][]int64, concurrency), every: failedEvery,
		client: &http.Client{Timeout: readTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}}
}

// errRefused is a delivery answered with a status other than 200.
var errRefused = errors.New("refused")

func (s *sender) send(ctx context.Context, worker int) error {
	n := s.ledger.next.Add(1)
	body := s.bodies.body(n, s.every)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(benchSecret, body))
	s.ledger.sent.Add(1)
	res, err := s.client.Do(req)
	if err != nil {
		s.ledger.lost.Add(1)
		return err
	}
	// Read to the end, or the transport closes the connection instead of
	// keeping it for the next delivery.
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err != nil {
		s.ledger.lost.Add(1)
		return err
	}
	if res.StatusCode != http.StatusOK {
		s.ledger.refused.Add(1)
		s.ledger.mu.Lock()
		s.ledger.refusedBy[res.StatusCode]++
		s.ledger.mu.Unlock()
		return fmt.Errorf("%w: %d", errRefused, res.StatusCode)
	}
	s.ledger.acked.Add(1)
	s.ledger.ackedBytes.Add(int64(len(body)))
	s.acked[worker] = append(s.acked[worker], n)
	return nil
}

// collect moves the acknowledged deliveries into the ledger.
func (s *sender) collect() {
	s.ledger.mu.Lock()
	defer s.ledger.mu.Unlock()
	for w, ids := range s.acked {
		s.ledger.ackedIDs = append(s.ledger.ackedIDs, ids...)
		s.acked[w] = nil
	}
}

// webhookURL is the service's (or the no-op's) webhook route.
func webhookURL(addr string) string { return "http://" + addr + service.WebhookPath }

// findAcknowledged checks through the API that every acknowledged
// delivery's account is there, and returns how many are not.
func findAcknowledged(ctx context.Context, api ahv1.AccountHealthServiceClient, b *bodies, l *ledger, concurrency int) (missing int64, err error) {
	var next atomic.Int64
	var missed atomic.Int64
	ids := l.ackedIDs
	// No process's CPU to measure (pid 0): this is a check, not a row.
	r := load(ctx, 0, concurrency, func() bool { return next.Load() >= int64(len(ids)) }, func(ctx context.Context, _ int) error {
		i := next.Add(1) - 1
		if i >= int64(len(ids)) {
			return nil
		}
		_, err := api.GetAccountHealth(ctx, &ahv1.GetAccountHealthRequest{AccountId: b.accountID(ids[i])})
		if status.Code(err) == codes.NotFound {
			missed.Add(1)
			return nil
		}
		return err
	})
	if r.errs > 0 {
		return missed.Load(), fmt.Errorf("%d lookups failed, the first: %w", r.errs, r.firstErr)
	}
	return missed.Load(), nil
}
