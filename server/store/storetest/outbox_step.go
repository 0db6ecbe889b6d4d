package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/store"
)

// testOutboxStep: one step records attempts, fans in and claims, and the
// claim sees both: the next message of an account whose message was
// delivered, and a message fanned in by the same step. A message fanned in
// behind a pending one of its account waits for it, and a requeue of an
// older message makes that one its account's head again.
func testOutboxStep(t *testing.T, s store.Store) {
	o := outboxOf(t, s)
	ctx := t.Context()
	ms := fannedIn(t, s, o, "ep")
	a1, a2, r1 := ms[0].Seq, ms[1].Seq, ms[2].Seq
	if got := claimMessages(t, o, "r1", t0); len(got) != 2 {
		t.Fatalf("first claim: %v, want a1 and a2", got)
	}
	// Account 2 fails again and account 3 fails for the first time.
	ingest(t, s, failed(accountID(2), userID(2), "invalid_mfa", t0.Add(4*time.Second)), failed(accountID(3), userID(3), "invalid_mfa", t0.Add(5*time.Second)))
	ep, _ := o.GetEndpoint(ctx, "ep")
	changes, err := s.ReadChanges(ctx, ep.Cursor, 0)
	if err != nil || len(changes) != 2 {
		t.Fatalf("ReadChanges = %d changes, %v; want 2", len(changes), err)
	}
	at := t0.Add(time.Second)
	res, err := o.Step(ctx, store.OutboxStep{
		Records: []store.AttemptRecord{
			{Attempt: store.Attempt{EndpointID: "ep", Seq: a1, N: 1, At: at, StatusCode: 200}, Next: store.MessageState{Status: store.MessageDelivered}},
			{Attempt: store.Attempt{EndpointID: "ep", Seq: a2, N: 1, At: at, StatusCode: 500}, Next: store.MessageState{Status: store.MessagePending, Retries: 1, NextAt: t0.Add(time.Hour)}},
		},
		Batches: []store.FanInBatch{{EndpointID: "ep", From: ep.Cursor, To: changes[1].Seq, Messages: outboxMessages("ep", changes)}},
		Claim:   store.MessageClaim{Holder: "r1", Now: t0, LeaseFor: time.Minute, Endpoints: []store.EndpointLimit{{EndpointID: "ep", Limit: 10}}},
	})
	if err != nil || len(res.Results) != 2 || len(res.Moved) != 1 || !res.Moved[0] {
		t.Fatalf("Step = %+v, %v", res, err)
	}
	if !res.Results[0].Recorded || !res.Results[1].Recorded || !res.Results[1].FailingSince.Equal(at) {
		t.Errorf("Step's results = %+v; want both recorded, failing since %v after the second", res.Results, at)
	}
	var got []int64
	for _, m := range res.Messages {
		got = append(got, m.Seq)
	}
	// Account 1's recovery and account 3's failure; account 2's messages
	// wait for its retry.
	if d := diff([]int64{r1, changes[1].Seq}, got); d != "" {
		t.Errorf("Step claimed %v, want account 1's next and account 3's new message:\n%s", got, d)
	}
	// Once a2's retry is due the step's leases have expired too; account
	// 2's new message still waits behind a2.
	c3 := changes[1].Seq
	if got := claimMessages(t, o, "r2", t0.Add(2*time.Hour)); diff([]int64{a2, r1, c3}, got) != "" {
		t.Errorf("claim once a2's retry is due: %v, want a2, r1 and account 3's message", got)
	}
	// Requeuing the delivered a1, older than r1, makes it account 1's head:
	// once the leases expire, a1 is due and r1 waits.
	if n, err := o.Requeue(ctx, store.RequeueQuery{EndpointID: "ep", Seq: a1, Now: t0}); err != nil || n != 1 {
		t.Fatalf("Requeue(a1) = %d, %v", n, err)
	}
	if got := claimMessages(t, o, "r3", t0.Add(3*time.Hour)); diff([]int64{a1, a2, c3}, got) != "" {
		t.Errorf("claim after requeuing a1: %v, want a1, a2 and account 3's message", got)
	}
	if _, err := o.Step(ctx, store.OutboxStep{Records: make([]store.AttemptRecord, 1)}); err == nil {
		t.Errorf("a step with attempts and no holder: no error")
	}
}

// testOutboxStepRoom: a step's claim of the messages already stored comes
// first, oldest first, and a message it fans in takes only the room the
// endpoint's limit leaves; one left out is claimed later, as stored, with
// its body.
func testOutboxStepRoom(t *testing.T, s store.Store) {
	o := outboxOf(t, s)
	ctx := t.Context()
	ms := fannedIn(t, s, o, "ep")
	a1, a2 := ms[0].Seq, ms[1].Seq
	ingest(t, s, failed(accountID(3), userID(3), "invalid_mfa", t0.Add(4*time.Second)), failed(accountID(4), userID(4), "invalid_mfa", t0.Add(5*time.Second)))
	ep, _ := o.GetEndpoint(ctx, "ep")
	changes, err := s.ReadChanges(ctx, ep.Cursor, 0)
	if err != nil || len(changes) != 2 {
		t.Fatalf("ReadChanges = %d changes, %v; want 2", len(changes), err)
	}
	c3, c4 := changes[0].Seq, changes[1].Seq
	res, err := o.Step(ctx, store.OutboxStep{
		Batches: []store.FanInBatch{{EndpointID: "ep", From: ep.Cursor, To: c4, Messages: outboxMessages("ep", changes)}},
		Claim:   store.MessageClaim{Holder: "r1", Now: t0, LeaseFor: time.Minute, Endpoints: []store.EndpointLimit{{EndpointID: "ep", Limit: 3}}},
	})
	if err != nil || len(res.Moved) != 1 || !res.Moved[0] {
		t.Fatalf("Step = %+v, %v", res, err)
	}
	var got []int64
	for _, m := range res.Messages {
		got = append(got, m.Seq)
		if m.Status != store.MessagePending || string(m.Body) != fmt.Sprintf(`{"seq":%d}`, m.Seq) {
			t.Errorf("leased message %d: status %v, body %q", m.Seq, m.Status, m.Body)
		}
	}
	if d := diff([]int64{a1, a2, c3}, got); d != "" {
		t.Errorf("Step with room for 3 leased %v, want the stored heads a1 and a2, then account 3's new message:\n%s", got, d)
	}
	if got := claimMessages(t, o, "r2", t0); diff([]int64{c4}, got) != "" {
		t.Errorf("claim while the step's leases hold: %v, want account 4's message alone", got)
	}
	if got := claimMessages(t, o, "r3", t0.Add(2*time.Minute)); diff([]int64{a1, a2, c3, c4}, got) != "" {
		t.Errorf("claim once every lease expired: %v, want a1, a2 and accounts 3 and 4's messages again", got)
	}
}

// testOutboxClaimBudget: a claim leases at most its Max in all, and an
// endpoint listed first with nothing due leaves the budget to the next.
func testOutboxClaimBudget(t *testing.T, s store.Store) {
	o := outboxOf(t, s)
	ctx := t.Context()
	ms := fannedIn(t, s, o, "ep")
	if _, err := o.CreateEndpoint(ctx, newEndpoint("ep_idle")); err != nil {
		t.Fatal(err)
	}
	claim := func(holder string, max int) []int64 {
		t.Helper()
		got, err := o.ClaimMessages(ctx, store.MessageClaim{Holder: holder, Now: t0, LeaseFor: time.Minute, Max: max,
			Endpoints: []store.EndpointLimit{{EndpointID: "ep_idle", Limit: 5}, {EndpointID: "ep", Limit: 5}}})
		if err != nil {
			t.Fatalf("ClaimMessages(max %d): %v", max, err)
		}
		var seqs []int64
		for _, m := range got {
			seqs = append(seqs, m.Seq)
		}
		return seqs
	}
	if got := claim("r1", 1); diff([]int64{ms[0].Seq}, got) != "" {
		t.Errorf("claim of at most 1 behind an idle endpoint: %v, want a1", got)
	}
	if got := claim("r2", 0); diff([]int64{ms[1].Seq}, got) != "" {
		t.Errorf("claim without a Max: %v, want a2 (a1 is leased, the recoveries wait)", got)
	}
	for _, bad := range []store.MessageClaim{
		{Holder: "h", Now: t0, LeaseFor: time.Minute, Max: -1, Endpoints: []store.EndpointLimit{{EndpointID: "ep", Limit: 1}}},
		{Holder: "h", Now: t0, LeaseFor: time.Minute, Max: store.MaxClaimMessages + 1, Endpoints: []store.EndpointLimit{{EndpointID: "ep", Limit: 1}}},
		{Holder: "h", Now: t0, LeaseFor: time.Minute, Endpoints: []store.EndpointLimit{{EndpointID: "ep", Limit: store.MaxClaimMessages + 1}}},
	} {
		if _, err := o.ClaimMessages(ctx, bad); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("ClaimMessages(%+v) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}
