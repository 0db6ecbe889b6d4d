package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
)

// Two replicas share one PostgreSQL database. Deliveries are spread across
// both; a stream on each replica receives every event, in the same order,
// none lost or doubled, including those ingested by the other replica.
func TestTwoReplicasOneDatabase(t *testing.T) {
	url := pgtest.URL(t)
	a := serve(t, t.TempDir(), "ACCOUNTHEALTH_DATABASE_URL="+url)
	b := serve(t, t.TempDir(), "ACCOUNTHEALTH_DATABASE_URL="+url)

	type received struct {
		cursors []string
		at      map[string]time.Time
	}
	streams := make([]*received, 2)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const total = 200
	opened := make(chan struct{}, 2)
	for i, s := range []*server{a, b} {
		conn, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		st, err := ahv1.NewAccountHealthServiceClient(conn).StreamDisconnections(ctx, &ahv1.StreamDisconnectionsRequest{IncludeRecoveries: true})
		if err != nil {
			t.Fatal(err)
		}
		r := &received{at: map[string]time.Time{}}
		streams[i] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			for len(r.cursors) < total {
				msg, err := st.Recv()
				if err == io.EOF || ctx.Err() != nil {
					return
				}
				if err != nil {
					t.Errorf("stream on replica %d: %v", i, err)
					return
				}
				if msg.GetHeartbeat() != nil && len(r.cursors) == 0 && len(r.at) == 0 {
					r.at["open"] = time.Now()
					opened <- struct{}{}
				}
				if ev := msg.GetEvent(); ev != nil {
					r.cursors = append(r.cursors, ev.GetCursor())
					r.at[ev.GetCursor()] = time.Now()
				}
			}
		}()
	}
	<-opened
	<-opened

	// Two senders, one per replica, each delivering transitions of its own
	// accounts: every delivery commits one change.
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var send sync.WaitGroup
	for i, s := range []*server{a, b} {
		send.Add(1)
		go func() {
			defer send.Done()
			for n := range total / 2 {
				// Each account alternates disconnected, recovered, ...
				status := []string{"error", "connected"}[(n/5)%2]
				code := []string{"auth_required", ""}[(n/5)%2]
				body := updatedJSON(fmt.Sprintf("replica%d-acct%d", i, n%5), "u", status, code, start.Add(time.Duration(n)*time.Second))
				if got := s.post(t, body); got != 200 {
					t.Errorf("replica %d delivery %d: %d", i, n, got)
					return
				}
			}
		}()
	}
	send.Wait()

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("streams got %d and %d of %d events within 30s", len(streams[0].cursors), len(streams[1].cursors), total)
	}
	seen := map[string]bool{}
	for i := range total {
		if streams[0].cursors[i] != streams[1].cursors[i] {
			t.Fatalf("event %d differs between the replicas' streams: %s vs %s", i, streams[0].cursors[i], streams[1].cursors[i])
		}
		if seen[streams[0].cursors[i]] {
			t.Fatalf("event %s twice", streams[0].cursors[i])
		}
		seen[streams[0].cursors[i]] = true
	}
	var worst time.Duration
	for _, c := range streams[0].cursors {
		worst = max(worst, streams[0].at[c].Sub(streams[1].at[c]).Abs())
	}
	t.Logf("%d events on both replicas in the same order; largest gap between the two streams receiving one event: %s", total, worst)
}

// updatedJSON is an accounts.updated delivery with the account object.
func updatedJSON(account, user, status, code string, at time.Time) []byte {
	errCode := "null"
	if code != "" {
		errCode = `"` + code + `"`
	}
	ts := at.UTC().Format(time.RFC3339Nano)
	return fmt.Appendf(nil, `{"event":"accounts.updated","name":"replicas","data":{"account":%q,"user":%q,"resource":{"id":%q,"user":%q,"updated_at":%q,"scanned_at":%q,"connection":{"status":%q,"error_code":%s,"error_message":null,"updated_at":%q}}}}`,
		account, user, account, user, ts, ts, status, errCode, ts)
}
