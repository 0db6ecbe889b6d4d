package service_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// errOutage is a driver's error for a database it cannot reach, naming a
// host that must not reach callers.
var errOutage = fmt.Errorf("postgres: get health: %w: failed to connect to `user=postgres database=prod host=db.internal`", store.ErrUnavailable)

// outage is a store whose reads fail as an unreachable database's do while
// down is set; with only set, only that read fails.
type outage struct {
	store.Store
	down atomic.Bool
	only string
}

func (o *outage) fail(method string) error {
	if !o.down.Load() || (o.only != "" && o.only != method) {
		return nil
	}
	return errOutage
}

func (o *outage) GetHealth(ctx context.Context, id string) (health.Record, error) {
	if err := o.fail("GetHealth"); err != nil {
		return health.Record{}, err
	}
	return o.Store.GetHealth(ctx, id)
}

func (o *outage) ListHealth(ctx context.Context, q store.HealthQuery) (store.HealthPage, error) {
	if err := o.fail("ListHealth"); err != nil {
		return store.HealthPage{}, err
	}
	return o.Store.ListHealth(ctx, q)
}

func (o *outage) Summary(ctx context.Context) (store.Summary, error) {
	if err := o.fail("Summary"); err != nil {
		return store.Summary{}, err
	}
	return o.Store.Summary(ctx)
}

func (o *outage) ListEntries(ctx context.Context, q store.EntryQuery) (store.EntryPage, error) {
	if err := o.fail("ListEntries"); err != nil {
		return store.EntryPage{}, err
	}
	return o.Store.ListEntries(ctx, q)
}

func (o *outage) ReadChanges(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	if err := o.fail("ReadChanges"); err != nil {
		return nil, err
	}
	return o.Store.ReadChanges(ctx, after, limit)
}

func (o *outage) LastChangeSeq(ctx context.Context) (int64, error) {
	if err := o.fail("LastChangeSeq"); err != nil {
		return 0, err
	}
	return o.Store.LastChangeSeq(ctx)
}

// readRPCs are the reads of the API, each with a request that succeeds
// while the store is up.
var readRPCs = []struct {
	method    string
	req, resp proto.Message
}{
	{"GetAccountHealth", &ahv1.GetAccountHealthRequest{AccountId: "a1"}, &ahv1.GetAccountHealthResponse{}},
	{"ListAccountHealth", &ahv1.ListAccountHealthRequest{}, &ahv1.ListAccountHealthResponse{}},
	{"GetHealthSummary", &ahv1.GetHealthSummaryRequest{}, &ahv1.GetHealthSummaryResponse{}},
	{"ListAccountEvents", &ahv1.ListAccountEventsRequest{AccountId: "a1"}, &ahv1.ListAccountEventsResponse{}},
}

// A store outage is UNAVAILABLE (HTTP 503) on every read, streams
// included, so that clients and proxies retry; its cause stays in our log.
func TestStoreOutageIsUnavailable(t *testing.T) {
	o := &outage{Store: openStore(t, t.TempDir())}
	e := start(t, o)
	e.deliver(leanBody("accounts.failed", "a1", "u1"))
	o.down.Store(true)

	for _, r := range readers {
		for _, rpc := range readRPCs {
			if code := r.call(e, rpc.method, rpc.req, proto.Clone(rpc.resp)); code != codes.Unavailable {
				t.Errorf("%s %s during the outage: %s, want UNAVAILABLE", r.name, rpc.method, code)
			}
		}
	}
	client := ahv1.NewAccountHealthServiceClient(e.conn)
	stream, err := client.StreamDisconnections(t.Context(), &ahv1.StreamDisconnectionsRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	wantUnavailable(t, "StreamDisconnections (its start)", err)
	purge, err := client.PurgeFailedAccounts(t.Context(), &ahv1.PurgeFailedAccountsRequest{OlderThan: durationpb.New(time.Hour), DryRun: true})
	if err == nil {
		for err == nil {
			_, err = purge.Recv()
		}
	}
	wantUnavailable(t, "PurgeFailedAccounts", err)

	res, err := http.Get("http://" + e.addrs.API + "/v1/disconnections:stream")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || strings.Contains(string(raw), "db.internal") {
		t.Errorf("REST stream during the outage: %d %s, want 503 without the store's error", res.StatusCode, raw)
	}
	if !strings.Contains(e.logs.String(), "db.internal") {
		t.Error("the store's error is not in the log")
	}

	o.down.Store(false)
	for _, r := range readers {
		for _, rpc := range readRPCs {
			if code := r.call(e, rpc.method, rpc.req, proto.Clone(rpc.resp)); code != codes.OK {
				t.Errorf("%s %s once the store is back: %s, want OK", r.name, rpc.method, code)
			}
		}
	}
}

// A stream whose catch-up read fails ends UNAVAILABLE, so that the client
// resumes from its cursor.
func TestStreamCatchUpOutageIsUnavailable(t *testing.T) {
	dir := t.TempDir()
	first := start(t, openStore(t, dir))
	first.deliver(leanBody("accounts.failed", "a1", "u1"))
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	// Restarted, the server's ring begins after the change above, so a
	// stream from before it reads the store.
	o := &outage{Store: openStore(t, dir), only: "ReadChanges"}
	e := start(t, o)
	o.down.Store(true)
	stream, err := ahv1.NewAccountHealthServiceClient(e.conn).StreamDisconnections(t.Context(), &ahv1.StreamDisconnectionsRequest{
		Start: &ahv1.StreamDisconnectionsRequest_Since{Since: timestamppb.New(time.Unix(0, 0))},
	})
	for err == nil {
		_, err = stream.Recv()
	}
	wantUnavailable(t, "StreamDisconnections (its catch-up)", err)
}

// A live stream whose tail cannot read the log ends UNAVAILABLE at its next
// heartbeat, rather than vouch for a cursor no one can check.
func TestStreamTailOutageIsUnavailable(t *testing.T) {
	o := &outage{Store: openStore(t, t.TempDir()), only: "ReadChanges"}
	e := start(t, o, func(c *service.Config) { c.StreamHeartbeat = 100 * time.Millisecond })
	stream, err := ahv1.NewAccountHealthServiceClient(e.conn).StreamDisconnections(t.Context(), &ahv1.StreamDisconnectionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("the stream's first heartbeat: %v", err)
	}
	o.down.Store(true)
	e.deliver(leanBody("accounts.failed", "a1", "u1"))
	for err == nil {
		_, err = stream.Recv()
	}
	wantUnavailable(t, "StreamDisconnections (live, its tail failing)", err)
}

func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || strings.Contains(st.Message(), "db.internal") {
		t.Errorf("%s during the outage: %v, want UNAVAILABLE without the store's error", what, err)
	}
}

// hangingReads is a store whose reads of health never answer: they wait
// for their ctx, as a query on a lost network path does.
type hangingReads struct{ store.Store }

func (hangingReads) GetHealth(ctx context.Context, _ string) (health.Record, error) {
	<-ctx.Done()
	return health.Record{}, fmt.Errorf("postgres: get health: %w", ctx.Err())
}

// A read of a store that does not answer ends UNAVAILABLE at the server's
// bound; a caller's own shorter deadline stays DEADLINE_EXCEEDED.
func TestHungStoreReadIsUnavailable(t *testing.T) {
	e := start(t, hangingReads{openStore(t, t.TempDir())})
	client := ahv1.NewAccountHealthServiceClient(e.conn)
	_, err := client.GetAccountHealth(t.Context(), &ahv1.GetAccountHealthRequest{AccountId: "a1"})
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(e.logs.String(), "did not answer within") {
		t.Errorf("GetAccountHealth of a hung store: %v, want UNAVAILABLE, and the bound in the log", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err = client.GetAccountHealth(ctx, &ahv1.GetAccountHealthRequest{AccountId: "a1"})
	if code := status.Code(err); code != codes.DeadlineExceeded {
		t.Errorf("GetAccountHealth with the caller's shorter deadline: %v, want DEADLINE_EXCEEDED", err)
	}
}

// fullStore fails commits, and Ping's heartbeat, as a full disk does,
// while full is set.
type fullStore struct {
	store.Store
	full atomic.Bool
}

var errFull = fmt.Errorf("sqlite: ingest: %w: database or disk is full (13)", store.ErrUnavailable)

func (f *fullStore) Ingest(ctx context.Context, ds []store.Delivery) ([]store.Result, error) {
	if f.full.Load() {
		return nil, errFull
	}
	return f.Store.Ingest(ctx, ds)
}

func (f *fullStore) Ping(ctx context.Context) error {
	if f.full.Load() {
		return errFull
	}
	return f.Store.Ping(ctx)
}

// A replica whose commits fail is not ready, says why, and is ready again
// once a check's heartbeat commits, with no delivery needed.
func TestReadinessFollowsCommits(t *testing.T) {
	f := &fullStore{Store: openStore(t, t.TempDir())}
	e := start(t, f, func(c *service.Config) { c.HealthCheckInterval = 50 * time.Millisecond })
	watch := watchHealth(t, e)
	watch.await(t, healthpb.HealthCheckResponse_SERVING)

	f.full.Store(true)
	body := leanBody("accounts.added", "a1", "u1")
	if got := e.postHTTP(body, webhook.Sign(fixtureSecret, body)); got.http != http.StatusServiceUnavailable {
		t.Errorf("a delivery to a full store: %d, want 503", got.http)
	}
	watch.await(t, healthpb.HealthCheckResponse_NOT_SERVING)
	code, text := restGet(t, http.DefaultClient, "http://"+e.addrs.Webhook+"/readyz", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(text, "not ready: ") || strings.Contains(text, "disk is full") {
		t.Errorf("/readyz with a full store: %d %s, want 503 with the reason and not the store's error", code, text)
	}

	f.full.Store(false)
	watch.await(t, healthpb.HealthCheckResponse_SERVING)
	if code, _ := restGet(t, http.DefaultClient, "http://"+e.addrs.Webhook+"/readyz", ""); code != http.StatusOK {
		t.Errorf("/readyz once the store commits again: %d, want 200", code)
	}
	e.deliver(body)
	if n := strings.Count(e.logs.String(), "not ready;"); n != 1 {
		t.Errorf("logged %d times that the server is not ready, want once for the one change", n)
	}
}

// A commit failure alone takes the replica out of rotation, before any
// check notices, and a successful commit brings it back.
func TestReadinessFollowsACommitAlone(t *testing.T) {
	f := &fullStore{Store: openStore(t, t.TempDir())}
	e := start(t, &commitsOnly{f}, func(c *service.Config) { c.HealthCheckInterval = time.Hour })
	watch := watchHealth(t, e)
	watch.await(t, healthpb.HealthCheckResponse_SERVING)
	f.full.Store(true)
	body := leanBody("accounts.added", "a1", "u1")
	e.postHTTP(body, webhook.Sign(fixtureSecret, body))
	watch.await(t, healthpb.HealthCheckResponse_NOT_SERVING)
	code, text := restGet(t, http.DefaultClient, "http://"+e.addrs.Webhook+"/readyz", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(text, "commits fail") {
		t.Errorf("/readyz after a failed commit: %d %s, want 503 saying commits fail", code, text)
	}
	f.full.Store(false)
	// The grpc path bypasses the load balancer, as a direct retry would.
	if got := e.postGRPC(body, webhook.Sign(fixtureSecret, body)); got.code != codes.OK {
		t.Fatalf("a delivery once the store has room: %v %s", got.code, got.message)
	}
	watch.await(t, healthpb.HealthCheckResponse_SERVING)
}

// commitsOnly hides fullStore's Ping, so only commits say the store is full.
type commitsOnly struct{ *fullStore }

func (c *commitsOnly) Ping(ctx context.Context) error { return c.fullStore.Store.Ping(ctx) }

// healthWatch follows grpc.health.v1's Watch for the whole server.
type healthWatch struct {
	updates chan healthpb.HealthCheckResponse_ServingStatus
}

func watchHealth(t *testing.T, e *env) *healthWatch {
	t.Helper()
	w, err := healthpb.NewHealthClient(e.conn).Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	h := &healthWatch{updates: make(chan healthpb.HealthCheckResponse_ServingStatus, 64)}
	go func() {
		defer close(h.updates)
		for {
			resp, err := w.Recv()
			if err != nil {
				return
			}
			h.updates <- resp.GetStatus()
		}
	}()
	return h
}

// await waits for the health status to be want.
func (h *healthWatch) await(t *testing.T, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	guard := time.After(15 * time.Second) // far above any wait: a hang fails, not stalls
	for {
		select {
		case got, ok := <-h.updates:
			if !ok {
				t.Fatalf("health watch ended before it said %s", want)
			}
			if got == want {
				return
			}
		case <-guard:
			t.Fatalf("health watch did not say %s within 15s", want)
		}
	}
}
