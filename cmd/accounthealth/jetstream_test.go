package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/accounthealth/accounthealth/internal/eventually"
	"github.com/accounthealth/accounthealth/internal/natstest"
	"github.com/accounthealth/accounthealth/server/outbound"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
)

// jetstreamWait bounds each wait for the export: far above what it needs.
const jetstreamWait = 30 * time.Second

// jsAccount's deliveries: a failed login, then the account's removal, so
// each account makes two transitions, in that order.
func jsFailed(i int) []byte {
	return fmt.Appendf(nil, `{"event":"accounts.failed","name":"js","data":{"account":"js-acc-%d","user":"js-user-%d","error_code":"invalid_mfa","error_message":"Wrong MFA code."}}`, i, i%4)
}

func jsRemoved(i int) []byte {
	return fmt.Appendf(nil, `{"event":"accounts.removed","name":"js","data":{"account":"js-acc-%d","user":"js-user-%d"}}`, i, i%4)
}

// postAll posts the deliveries of accounts from..to-1, each acknowledged.
func postAll(t *testing.T, s *server, from, to int, delivery func(int) []byte) {
	t.Helper()
	for i := from; i < to; i++ {
		if code := s.post(t, delivery(i)); code != http.StatusOK {
			t.Fatalf("POST for account %d: %d\n%s", i, code, s.stderr)
		}
	}
}

// The built binary exports every transition to JetStream exactly once and
// in order, across a SIGKILL in the middle of exporting and a restart of
// the NATS server, while intake goes on answering 200.
func TestServeExportsToJetStream(t *testing.T) {
	ns := natstest.Start(t)
	dataDir := t.TempDir()
	env := []string{"ACCOUNTHEALTH_NATS_URL=" + ns.URL(), "ACCOUNTHEALTH_NATS_STREAM=TRANSITIONS"}
	webhookAddr, grpcAddr, restAddr := freePort(t), freePort(t), freePort(t)
	s := serveOn(t, webhookAddr, grpcAddr, restAddr, dataDir, env...)
	postAll(t, s, 0, 20, jsFailed)
	// Killed with its export likely in flight: nothing was flushed.
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Wait()

	s = serveOn(t, webhookAddr, grpcAddr, restAddr, dataDir, env...)
	postAll(t, s, 0, 10, jsRemoved)
	s.waitMetric(t, "accounthealth_jetstream_export_lag_seconds 0") // the stream exists
	consumer := newStreamReader(t, ns.URL(), "TRANSITIONS")
	consumer.read(t, 30)

	ns.Stop()
	postAll(t, s, 10, 20, jsRemoved) // intake does not wait for the broker
	s.waitMetric(t, "accounthealth_jetstream_export_paused 1")
	ns.Restart()
	consumer.read(t, 40)
	s.waitMetric(t, "accounthealth_jetstream_export_lag_seconds 0")
	s.stop(t)

	if !strings.Contains(s.stderr.String(), "JetStream export paused") || !strings.Contains(s.stderr.String(), "JetStream export resumed") {
		t.Errorf("the log does not say the export paused and resumed:\n%s", s.stderr)
	}
	consumer.check(t, 20)
}

// Two replicas on one PostgreSQL database both export to one stream, and
// deliveries reach both: the stream holds each transition once, in order,
// and the replicas' counts of what they appended add up to it.
func TestTwoReplicasExportToJetStream(t *testing.T) {
	ns := natstest.Start(t)
	env := []string{"ACCOUNTHEALTH_DATABASE_URL=" + pgtest.URL(t), "ACCOUNTHEALTH_NATS_URL=" + ns.URL()}
	replicas := []*server{serve(t, t.TempDir(), env...), serve(t, t.TempDir(), env...)}
	const accounts = 20
	for i := range accounts {
		postAll(t, replicas[i%2], i, i+1, jsFailed)
	}
	for i := range accounts {
		postAll(t, replicas[(i+1)%2], i, i+1, jsRemoved)
	}
	consumer := newStreamReader(t, ns.URL(), "ACCOUNTHEALTH")
	for _, s := range replicas {
		s.waitMetric(t, "accounthealth_jetstream_export_lag_seconds 0") // the stream exists
	}
	consumer.read(t, 2*accounts)
	appended := 0
	for _, s := range replicas {
		s.waitMetric(t, fmt.Sprintf("accounthealth_jetstream_export_last_seq %d", consumer.lastSeq(t)))
		appended += s.metric(t, "accounthealth_jetstream_export_messages_total")
		s.stop(t)
	}
	consumer.check(t, accounts)
	if appended != 2*accounts {
		t.Errorf("the replicas appended %d messages for %d transitions", appended, 2*accounts)
	}
}

// streamReader reads a stream from its start with an ordered consumer.
type streamReader struct {
	js   jetstream.JetStream
	name string
	cons jetstream.Consumer
	msgs []jetstream.Msg
}

func newStreamReader(t *testing.T, url, name string) *streamReader {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &streamReader{js: js, name: name}
}

// read waits until n messages have arrived in all.
func (r *streamReader) read(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), jetstreamWait)
	defer cancel()
	for len(r.msgs) < n {
		if r.cons == nil {
			cons, err := r.js.OrderedConsumer(ctx, r.name, jetstream.OrderedConsumerConfig{})
			if err != nil {
				t.Fatalf("OrderedConsumer: %v", err)
			}
			r.cons = cons
		}
		m, err := r.cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(r.msgs), n, err)
		}
		r.msgs = append(r.msgs, m)
	}
}

// check checks that the stream holds exactly what was read, and that it is
// every transition of the accounts once, in the log's order: their
// message ids in increasing order, each account failed before removed.
func (r *streamReader) check(t *testing.T, accounts int) {
	t.Helper()
	info, err := r.js.Stream(t.Context(), r.name)
	if err != nil {
		t.Fatal(err)
	}
	st, err := info.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.State.Msgs != uint64(2*accounts) || len(r.msgs) != 2*accounts {
		t.Fatalf("stream holds %d messages, read %d; want %d, each transition once", st.State.Msgs, len(r.msgs), 2*accounts)
	}
	var last int64
	seen := map[string]string{} // account token -> the type last seen
	for i, m := range r.msgs {
		seq, err := outbound.SeqOf(m.Headers().Get(nats.MsgIdHdr))
		if err != nil || seq <= last {
			t.Fatalf("message %d: id %q (seq %d after %d): %v", i, m.Headers().Get(nats.MsgIdHdr), seq, last, err)
		}
		last = seq
		tokens := strings.Split(m.Subject(), ".")
		if len(tokens) != 5 || tokens[0] != "accounthealth" || tokens[1] != "account" {
			t.Fatalf("message %d: subject %q", i, m.Subject())
		}
		account, kind := tokens[4], tokens[2]
		want := map[string]string{"": "auth_failed", "auth_failed": "removed"}[seen[account]]
		if kind != want {
			t.Errorf("message %d: %s for %s after %q, want %s", i, kind, account, seen[account], want)
		}
		seen[account] = kind
	}
	if len(seen) != accounts {
		t.Errorf("messages for %d accounts, want %d", len(seen), accounts)
	}
}

// lastSeq is the change the last message read carries.
func (r *streamReader) lastSeq(t *testing.T) int64 {
	t.Helper()
	seq, err := outbound.SeqOf(r.msgs[len(r.msgs)-1].Headers().Get(nats.MsgIdHdr))
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// metric is the value of an unlabelled integer metric on /metrics.
func (s *server) metric(t *testing.T, name string) int {
	t.Helper()
	_, body := s.restGet(t, "/metrics")
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// waitMetric waits until /metrics shows the line.
func (s *server) waitMetric(t *testing.T, line string) {
	t.Helper()
	eventually.Until(t, jetstreamWait, fmt.Sprintf("/metrics shows %q", line), func() (bool, string) {
		_, body := s.restGet(t, "/metrics")
		return strings.Contains(body, "\n"+line+"\n"), body + "\n" + s.stderr.String()
	})
}
