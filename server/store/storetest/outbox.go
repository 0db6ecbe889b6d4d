package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/store"
)

// Outbound webhooks: endpoints, fan-in, claims and attempts (store.Outbox).

// outboxOf is s's Outbox; every driver must have one.
func outboxOf(t *testing.T, s store.Store) store.Outbox {
	t.Helper()
	o, ok := s.(store.Outbox)
	if !ok {
		t.Fatalf("%T does not implement store.Outbox", s)
	}
	return o
}

func newEndpoint(id string) store.Endpoint {
	return store.Endpoint{
		ID: id, URL: "https://example.test/" + id, Description: "d " + id, Filter: []byte(`{"k":1}`),
		RateLimit: 2.5, Concurrency: 3, Secrets: []store.Secret{{Key: "whsec_a"}, {Key: "whsec_b", ExpiresAt: t0.UTC()}},
		CreatedAt: t0.UTC(), UpdatedAt: t0.UTC(),
	}
}

func testOutboxEndpoints(t *testing.T, s store.Store) {
	o := outboxOf(t, s)
	ctx := t.Context()
	ingest(t, s, failed(accountID(1), userID(1), "invalid_mfa", t0))
	last, err := s.LastChangeSeq(ctx)
	if err != nil || last == 0 {
		t.Fatalf("LastChangeSeq = %d, %v", last, err)
	}
	want := newEndpoint("ep_b")
	got, err := o.CreateEndpoint(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	want.Cursor = last
	if d := diff(want, got); d != "" {
		t.Errorf("created endpoint differs (the cursor starts at the end of the log):\n%s", d)
	}
	if _, err := o.CreateEndpoint(ctx, newEndpoint("ep_a")); err != nil {
		t.Fatal(err)
	}
	read, err := o.GetEndpoint(ctx, "ep_b")
	if d := diff(want, read); err != nil || d != "" {
		t.Errorf("GetEndpoint: %v; differs:\n%s", err, d)
	}
	want.URL, want.Disabled, want.DisabledReason, want.Secrets = "https://other.test/", true, "gone", nil
	want.FailingSince, want.UpdatedAt = t0.Add(time.Hour).UTC(), t0.Add(time.Hour).UTC()
	update := want
	update.Cursor, update.CreatedAt = 99, t0.Add(time.Hour) // neither is updated
	if err := o.UpdateEndpoint(ctx, update); err != nil {
		t.Fatal(err)
	}
	all, err := o.ListEndpoints(ctx)
	if err != nil || len(all) != 2 || all[0].ID != "ep_a" {
		t.Fatalf("ListEndpoints = %+v, %v; want ep_a, ep_b", all, err)
	}
	want.Secrets = []store.Secret{} // a JSON round trip of nil
	if d := diff(want, all[1]); d != "" {
		t.Errorf("updated endpoint differs:\n%s", d)
	}
	if err := o.DeleteEndpoint(ctx, "ep_b"); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"get":    func() error { _, err := o.GetEndpoint(ctx, "ep_b"); return err }(),
		"update": o.UpdateEndpoint(ctx, newEndpoint("ep_b")),
		"delete": o.DeleteEndpoint(ctx, "ep_b"),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of a deleted endpoint: %v, want ErrNotFound", name, err)
		}
	}
}

// outboxMessages makes the messages of changes for endpoint id.
func outboxMessages(id string, changes []store.Change) []store.OutboxMessage {
	ms := make([]store.OutboxMessage, len(changes))
	for i, c := range changes {
		ms[i] = store.OutboxMessage{
			EndpointID: id, Seq: c.Seq, AccountID: c.AccountID, Type: "account.x", Body: fmt.Appendf(nil, `{"seq":%d}`, c.Seq),
			OccurredAt: c.OccurredAt.UTC(), MessageState: store.MessageState{Status: store.MessagePending, NextAt: t0.UTC()},
			CreatedAt: t0.UTC(),
		}
	}
	return ms
}

// fannedInEvents are what fannedIn ingests.
func fannedInEvents() []Event {
	return []Event{failed(accountID(1), userID(1), "invalid_mfa", t0), failed(accountID(2), userID(2), "invalid_mfa", t0.Add(time.Second)),
		connected(accountID(1), userID(1), t0.Add(2*time.Second)), connected(accountID(2), userID(2), t0.Add(3*time.Second))}
}

// fannedIn creates endpoint id and fans in a failure and a recovery of
// accounts 1 and 2 each (4 messages, interleaved), then returns them.
func fannedIn(t *testing.T, s store.Store, o store.Outbox, id string) []store.OutboxMessage {
	t.Helper()
	ctx := t.Context()
	ep, err := o.CreateEndpoint(ctx, newEndpoint(id))
	if err != nil {
		t.Fatal(err)
	}
	ingest(t, s, fannedInEvents()...)
	changes, err := s.ReadChanges(ctx, ep.Cursor, 0)
	if err != nil || len(changes) != 4 {
		t.Fatalf("ReadChanges = %d changes, %v; want 4", len(changes), err)
	}
	ms := outboxMessages(id, changes)
	to := changes[3].Seq
	// With a batch of an endpoint that is gone, which stores nothing.
	batches := []store.FanInBatch{{EndpointID: id, From: ep.Cursor, To: to, Messages: ms}, {EndpointID: "ep_gone", From: 0, To: to}}
	if moved, err := o.FanIn(ctx, batches); err != nil || !moved[0] || moved[1] {
		t.Fatalf("FanIn = %v, %v; want the first batch moved", moved, err)
	}
	// Another process that read the same cursor stores nothing.
	if moved, err := o.FanIn(ctx, batches[:1]); err != nil || moved[0] {
		t.Fatalf("second FanIn from the same cursor = %v, %v; want not moved", moved, err)
	}
	if got, _ := o.GetEndpoint(ctx, id); got.Cursor != to {
		t.Fatalf("cursor = %d, want %d", got.Cursor, to)
	}
	return ms
}

func claimMessages(t *testing.T, o store.Outbox, holder string, now time.Time) []int64 {
	t.Helper()
	ms, err := o.ClaimMessages(t.Context(), store.MessageClaim{Holder: holder, Now: now, LeaseFor: time.Minute,
		Endpoints: []store.EndpointLimit{{EndpointID: "ep", Limit: 10}, {EndpointID: "ep_other", Limit: 10}}})
	if err != nil {
		t.Fatalf("ClaimMessages(%s at t0%+v): %v", holder, now.Sub(t0), err)
	}
	seqs := make([]int64, len(ms))
	for i, m := range ms {
		seqs[i] = m.Seq
		if string(m.Body) != fmt.Sprintf(`{"seq":%d}`, m.Seq) {
			t.Errorf("claimed message %d has body %q", m.Seq, m.Body)
		}
	}
	return seqs
}

// record records one attempt.
func record(t *testing.T, o store.Outbox, holder string, a store.Attempt, next store.MessageState) store.AttemptResult {
	t.Helper()
	res, err := o.RecordAttempts(t.Context(), holder, []store.AttemptRecord{{Attempt: a, Next: next}})
	if err != nil || len(res) != 1 {
		t.Fatalf("RecordAttempts = %v, %v", res, err)
	}
	return res[0]
}

func testOutboxClaims(t *testing.T, s store.Store) {
	o := outboxOf(t, s)
	ctx := t.Context()
	ms := fannedIn(t, s, o, "ep")
	// ms[2], account 1's recovery, waits behind a1 throughout.
	a1, a2, r2 := ms[0].Seq, ms[1].Seq, ms[3].Seq
	want := func(what string, got []int64, want ...int64) {
		t.Helper()
		if d := diff(want, got); d != "" && (len(want) > 0 || len(got) > 0) {
			t.Errorf("%s: claimed %v, want %v", what, got, want)
		}
	}
	// Only the oldest pending message of each account.
	want("first claim", claimMessages(t, o, "r1", t0), a1, a2)
	want("all leased", claimMessages(t, o, "r2", t0))
	// Account 1's first fails and is due again in an hour; account 2's is delivered.
	failedAt := t0.Add(time.Second)
	res := record(t, o, "r1", store.Attempt{EndpointID: "ep", Seq: a1, N: 1, At: failedAt, StatusCode: 500, Latency: time.Millisecond, Response: "oops", Error: "HTTP 500"},
		store.MessageState{Status: store.MessagePending, Retries: 1, NextAt: t0.Add(time.Hour), LastError: "HTTP 500"})
	if !res.Recorded || !res.FailingSince.Equal(failedAt) {
		t.Fatalf("recording a failure = %+v; want failing since %v", res, failedAt)
	}
	if res := record(t, o, "r2", store.Attempt{EndpointID: "ep", Seq: a2, N: 1, At: failedAt}, store.MessageState{Status: store.MessageDelivered}); res.Recorded {
		t.Errorf("an attempt by a process not holding the lease was recorded")
	}
	res = record(t, o, "r1", store.Attempt{EndpointID: "ep", Seq: a2, N: 1, At: failedAt, StatusCode: 200}, store.MessageState{Status: store.MessageDelivered})
	if !res.Recorded || !res.FailingSince.IsZero() {
		t.Fatalf("recording a delivery = %+v; want not failing", res)
	}
	// Account 1 waits for its retry; account 2 moves on.
	want("after the attempts", claimMessages(t, o, "r2", t0.Add(time.Minute)), r2)
	want("r2 leased", claimMessages(t, o, "r3", t0.Add(time.Minute)))
	// r2's lease expired: another holder takes it over, and a1 once due.
	want("an expired lease, before the retry is due", claimMessages(t, o, "r3", t0.Add(time.Hour-time.Nanosecond)), r2)
	want("the retry", claimMessages(t, o, "r3", t0.Add(time.Hour)), a1)

	stats, err := o.OutboxStats(ctx)
	if err != nil || len(stats) != 1 || stats[0].Pending != 3 || stats[0].Retrying != 1 || !stats[0].OldestAt.Equal(t0) {
		t.Errorf("OutboxStats = %+v, %v; want 3 pending, 1 retrying, oldest at t0", stats, err)
	}
	testOutboxListings(t, o, ms)
}

// testOutboxListings continues testOutboxClaims: a1 failed once, a2 was
// delivered.
func testOutboxListings(t *testing.T, o store.Outbox, ms []store.OutboxMessage) {
	ctx := t.Context()
	page, err := o.ListMessages(ctx, store.MessageQuery{EndpointID: "ep", PageSize: 3})
	if err != nil || len(page.Messages) != 3 || page.Messages[0].Seq != ms[3].Seq || page.NextPageToken == "" {
		t.Fatalf("ListMessages = %+v, %v; want the 3 newest and a next page", page, err)
	}
	page, err = o.ListMessages(ctx, store.MessageQuery{EndpointID: "ep", PageSize: 3, PageToken: page.NextPageToken})
	if err != nil || len(page.Messages) != 1 || page.Messages[0].Seq != ms[0].Seq || page.NextPageToken != "" {
		t.Fatalf("ListMessages page 2 = %+v, %v; want the oldest alone", page, err)
	}
	if m := page.Messages[0]; m.Attempts != 1 || m.Retries != 1 || m.LastError != "HTTP 500" || m.Body != nil {
		t.Errorf("listed message = %+v; want 1 attempt, 1 retry, its error and no body", m)
	}
	delivered, err := o.ListMessages(ctx, store.MessageQuery{EndpointID: "ep", Statuses: []store.MessageStatus{store.MessageDelivered}})
	if err != nil || len(delivered.Messages) != 1 || delivered.Messages[0].Seq != ms[1].Seq {
		t.Errorf("delivered messages = %+v, %v; want a2", delivered, err)
	}
	attempts, err := o.ListAttempts(ctx, store.AttemptQuery{EndpointID: "ep", Seq: ms[0].Seq})
	if err != nil || len(attempts.Attempts) != 1 {
		t.Fatalf("ListAttempts of a1 = %+v, %v", attempts, err)
	}
	if a := attempts.Attempts[0]; a.StatusCode != 500 || a.Latency != time.Millisecond || a.Response != "oops" || a.N != 1 {
		t.Errorf("attempt = %+v", a)
	}
	later, err := o.ListAttempts(ctx, store.AttemptQuery{EndpointID: "ep", Range: store.TimeRange{Since: t0.Add(time.Minute)}})
	if err != nil || len(later.Attempts) != 0 {
		t.Errorf("attempts since t0+1m = %+v, %v; want none", later, err)
	}
	for _, q := range []store.MessageQuery{{EndpointID: "ep", PageToken: "x"}, {EndpointID: "ep", Statuses: []store.MessageStatus{9}}, {EndpointID: "ep", PageSize: -1}} {
		if _, err := o.ListMessages(ctx, q); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("ListMessages(%+v): %v, want ErrInvalidArgument", q, err)
		}
	}
	// Requeuing the delivered a2 makes it pending, and no other message.
	n, err := o.Requeue(ctx, store.RequeueQuery{EndpointID: "ep", Seq: ms[1].Seq, Now: t0})
	if err != nil || n != 1 {
		t.Fatalf("Requeue(a2) = %d, %v", n, err)
	}
	n, err = o.Requeue(ctx, store.RequeueQuery{EndpointID: "ep", Since: t0.Add(2 * time.Second), Now: t0})
	if err != nil || n != 2 {
		t.Errorf("Requeue(since the recoveries) = %d, %v; want 2", n, err)
	}
	all, _ := o.ListMessages(ctx, store.MessageQuery{EndpointID: "ep"})
	if len(all.Messages) != 4 {
		t.Fatalf("after requeues: %d messages, want the same 4", len(all.Messages))
	}
	for _, m := range all.Messages {
		if m.Status != store.MessagePending {
			t.Errorf("message %d after requeue: status %d, want pending", m.Seq, m.Status)
		}
	}
}

// testOutboxClaimsConcurrently: processes sharing the store claim at once
// and never lease one message twice.
func testOutboxClaimsConcurrently(t *testing.T, open Opener) {
	s := open(store.Options{})
	o := outboxOf(t, s)
	ctx := t.Context()
	ep, err := o.CreateEndpoint(ctx, newEndpoint("ep"))
	if err != nil {
		t.Fatal(err)
	}
	var events []Event
	for i := range 60 {
		events = append(events, failed(accountID(i), userID(i), "invalid_mfa", t0.Add(time.Duration(i)*time.Second)))
	}
	ingest(t, s, events...)
	changes := allChanges(t, s)
	if moved, err := o.FanIn(ctx, []store.FanInBatch{{EndpointID: "ep", From: ep.Cursor, To: changes[len(changes)-1].Seq, Messages: outboxMessages("ep", changes)}}); err != nil || !moved[0] {
		t.Fatalf("FanIn = %v, %v", moved, err)
	}
	var mu sync.Mutex
	claimed := map[int64]string{}
	var wg sync.WaitGroup
	for w := range 4 {
		other := outboxOf(t, open(store.Options{}))
		holder := fmt.Sprint("r", w)
		wg.Go(func() {
			for {
				ms, err := other.ClaimMessages(ctx, store.MessageClaim{Holder: holder, Now: t0, LeaseFor: time.Hour, Endpoints: []store.EndpointLimit{{EndpointID: "ep", Limit: 5}}})
				if err != nil {
					t.Error(err)
					return
				}
				if len(ms) == 0 {
					return
				}
				mu.Lock()
				for _, m := range ms {
					if prev, dup := claimed[m.Seq]; dup {
						t.Errorf("message %d leased to %s and %s", m.Seq, prev, holder)
					}
					claimed[m.Seq] = holder
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != len(changes) {
		t.Errorf("claimed %d messages, want %d", len(claimed), len(changes))
	}
}
