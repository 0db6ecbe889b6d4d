package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/accounthealth/accounthealth/server/health"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
)

// TestListPlans: lists filtered by a state other than HEALTHY, or by an
// error code, can read the partial indexes that hold only such records
// (migration 0016), as lists by a freshness problem read theirs (0015):
// their queries state the indexes' conditions. HEALTHY ones read the
// primary key.
func TestListPlans(t *testing.T) {
	s := openURL(t, pgtest.URL(t))
	tx := planTx(t, s)
	for _, tc := range []struct {
		q    store.HealthQuery
		want string
	}{
		{store.HealthQuery{States: []health.State{health.StateAuthFailed}}, "Index Scan using records_state on records"},
		{store.HealthQuery{States: []health.State{health.StateAuthFailed}, Order: store.ByStateSinceAsc}, "Index Scan using records_state_since on records"},
		{store.HealthQuery{ErrorCodes: []string{"auth_required"}}, "Index Scan using records_error_code on records"},
		{store.HealthQuery{Freshness: []health.Freshness{health.FreshnessStale}}, "Index Scan using records_freshness on records"},
		{store.HealthQuery{States: []health.State{health.StateHealthy}}, "Index Scan using records_pkey on records"},
	} {
		query, args := readSQL.ListHealthSQL(tc.q, 50)
		if p := explainGeneric(t, tx, query, args); !strings.Contains(p, tc.want) {
			t.Errorf("%+v: plan\n%s\nwant %q", tc.q, p, tc.want)
		}
	}
}

// planTx is a transaction whose planner takes an index where one serves:
// on tables this small the plans that beat an index are off (at a million
// records the planner picks the index unaided).
func planTx(t *testing.T, s *Store) pgx.Tx {
	t.Helper()
	tx, err := s.pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	for _, off := range []string{"seqscan", "bitmapscan", "sort"} {
		if _, err := tx.Exec(t.Context(), "SET LOCAL enable_"+off+" = off"); err != nil {
			t.Fatal(err)
		}
	}
	return tx
}

// explain is PostgreSQL's plan of query, a line a step.
func explain(t *testing.T, tx pgx.Tx, query string, args []any) string {
	t.Helper()
	rows, err := tx.Query(t.Context(), "EXPLAIN "+query, args...)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", query, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("EXPLAIN %s: %v", query, err)
	}
	return strings.Join(plan, "\n")
}

// explainGeneric is the plan of query for no arguments in particular, as
// a statement the pool has prepared may get after some runs (EXPLAIN of
// a query with arguments plans for those).
func explainGeneric(t *testing.T, tx pgx.Tx, query string, args []any) string {
	t.Helper()
	if _, err := tx.Exec(t.Context(), "SET LOCAL plan_cache_mode = force_generic_plan"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), "PREPARE plan_of AS "+query); err != nil {
		t.Fatalf("PREPARE %s: %v", query, err)
	}
	literals := make([]string, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			literals[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		default:
			literals[i] = fmt.Sprint(v)
		}
	}
	plan := explain(t, tx, "EXECUTE plan_of("+strings.Join(literals, ", ")+")", nil)
	if _, err := tx.Exec(t.Context(), "DEALLOCATE plan_of"); err != nil {
		t.Fatal(err)
	}
	return plan
}

// TestOutboxClaimPlan: the claim finds the rows it leases by their ctid,
// whatever the planner guesses of a table never analyzed. Joined on the
// key, it was planned as a nested loop over every pair of heads and rows
// selected, and a claim of 700 messages took 300 ms.
func TestOutboxClaimPlan(t *testing.T) {
	s := openURL(t, pgtest.URL(t))
	ctx := t.Context()
	ep, err := s.CreateEndpoint(ctx, store.Endpoint{ID: "ep", URL: "https://example.test/", Concurrency: 100, Filter: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0).UTC()
	ms := make([]store.OutboxMessage, 2000)
	for i := range ms {
		ms[i] = store.OutboxMessage{EndpointID: ep.ID, Seq: ep.Cursor + int64(i) + 1, AccountID: fmt.Sprintf("acc_%d", i%500),
			Type: "account.disconnected", Body: []byte(`{}`), OccurredAt: now, CreatedAt: now,
			MessageState: store.MessageState{Status: store.MessagePending, NextAt: now}}
	}
	if moved, err := s.FanIn(ctx, []store.FanInBatch{{EndpointID: ep.ID, From: ep.Cursor, To: ep.Cursor + 2000, Messages: ms}}); err != nil || !moved[0] {
		t.Fatalf("FanIn = %v, %v", moved, err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	q := store.MessageClaim{Holder: "h", Now: now, LeaseFor: time.Minute, Endpoints: []store.EndpointLimit{{EndpointID: ep.ID, Limit: 100}}}
	query, args := outboxSQL.ClaimSQL(&q, q.Endpoints, q.Budget())
	p := explain(t, tx, query, args)
	if !strings.Contains(p, "Tid Scan on notify_messages") || strings.Contains(p, "Nested Loop") {
		t.Errorf("claim's plan\n%s\nwant a Tid Scan on notify_messages and no nested loop", p)
	}
}

// TestIngestPrefetchPlans: an ingest's prefetch reads its indexes even as
// PostgreSQL plans it once for good on tables still empty and never
// analyzed, where a sequential scan would otherwise be the plan kept
// while the tables grow.
func TestIngestPrefetchPlans(t *testing.T) {
	s := openURL(t, pgtest.URL(t))
	for _, tc := range []struct{ query, want string }{
		{prefetchRecordsSQL, "on records_pkey"},
		{prefetchHashesSQL, "on entries_body_sha256"},
	} {
		plan := func(settings ...string) string {
			tx, err := s.pool.Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(context.Background())
			for _, set := range append(settings, "SET LOCAL plan_cache_mode = force_generic_plan") {
				if _, err := tx.Exec(t.Context(), set); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := tx.Exec(t.Context(), "PREPARE plan_of AS "+tc.query); err != nil {
				t.Fatalf("PREPARE %s: %v", tc.query, err)
			}
			p := explain(t, tx, "EXECUTE plan_of(NULL)", nil)
			if _, err := tx.Exec(t.Context(), "DEALLOCATE plan_of"); err != nil {
				t.Fatal(err)
			}
			return p
		}
		if p := plan(); !strings.Contains(p, "Seq Scan") {
			t.Logf("without the setting PostgreSQL plans an index here anyway:\n%s", p)
		}
		if p := plan(ingestPlansSQL); !strings.Contains(p, tc.want) {
			t.Errorf("plan of %s\n%s\nwant %q", tc.query, p, tc.want)
		}
	}
}
