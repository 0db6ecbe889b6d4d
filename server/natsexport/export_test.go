package natsexport

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/accounthealth/accounthealth/server/outbound"
	"github.com/accounthealth/accounthealth/server/store"
)

// checkExported checks that msgs are exactly the log's changes, in order:
// each on its subject, with its message id and outbound's body.
func checkExported(t *testing.T, prefix string, log []store.Change, msgs []jetstream.Msg) {
	t.Helper()
	if len(msgs) != len(log) {
		t.Fatalf("%d messages for %d changes", len(msgs), len(log))
	}
	for i, c := range log {
		want, err := outbound.New(c)
		if err != nil {
			t.Fatal(err)
		}
		m := msgs[i]
		if got := m.Headers().Get(nats.MsgIdHdr); got != want.ID {
			t.Fatalf("message %d: id %q, want %q (change %d)", i, got, want.ID, c.Seq)
		}
		if m.Subject() != Subject(prefix, want) {
			t.Errorf("message %d: subject %q, want %q", i, m.Subject(), Subject(prefix, want))
		}
		if !bytes.Equal(m.Data(), want.Body) {
			t.Errorf("message %d: body %s, want %s", i, m.Data(), want.Body)
		}
	}
}

func TestExportsEveryTransitionInOrder(t *testing.T) {
	e := newEnv(t)
	e.ingest(story(0, 5)...) // before the export starts: it exports the log from its start
	x := e.export(e.broker, Options{SubjectPrefix: "ah.test"})
	e.ingest(story(5, 5)...)
	js := e.js()
	log := e.changes()
	if len(log) != 20 {
		t.Fatalf("%d changes, want 20", len(log))
	}
	msgs := receive(t, js, DefaultStream, len(log))
	checkExported(t, "ah.test", log, msgs)
	if !strings.HasPrefix(msgs[0].Subject(), "ah.test.account.auth_failed.") || !strings.HasPrefix(msgs[19].Subject(), "ah.test.account.recovered.") {
		t.Errorf("subjects %q ... %q", msgs[0].Subject(), msgs[19].Subject())
	}
	x.stop()
	if st := x.Status(); st.Exported != 20 || st.LastSeq != log[19].Seq || st.Paused {
		t.Errorf("status %+v", st)
	}
	if st := streamState(t, js, DefaultStream); st.Msgs != 20 || st.LastSeq != 20 {
		t.Errorf("stream holds %d messages up to %d, want 20 up to 20", st.Msgs, st.LastSeq)
	}
}

// A restarted export reads where the stream ends: it appends nothing
// twice, not even within the deduplication window's reach.
func TestResumesWhereTheStreamEnds(t *testing.T) {
	e := newEnv(t)
	js := e.js()
	first := e.export(e.broker, Options{})
	e.ingest(story(0, 4)...)
	receive(t, js, DefaultStream, 8)
	first.stop()
	e.ingest(story(4, 4)...)
	second := e.export(e.broker, Options{})
	msgs := receive(t, js, DefaultStream, 16)
	second.stop()
	checkExported(t, DefaultSubjectPrefix, e.changes(), msgs)
	if st := streamState(t, js, DefaultStream); st.Msgs != 16 {
		t.Errorf("stream holds %d messages, want 16", st.Msgs)
	}
	if got := second.Status().Exported; got != 8 {
		t.Errorf("the second export appended %d, want 8", got)
	}
}

// A broker outage pauses the export; intake goes on; once the broker is
// back the export resumes where the stream ends, nothing skipped.
func TestPausesAndResumesAcrossBrokerRestart(t *testing.T) {
	e := newEnv(t)
	x := e.export(e.broker, Options{})
	e.ingest(story(0, 3)...)
	receive(t, e.js(), DefaultStream, 6)

	e.nats.Stop()
	e.ingest(story(3, 3)...) // commits while the broker is down
	e.logs.wait(t, "JetStream export paused; intake goes on, and the export resumes where the stream ends")
	if !x.Status().Paused {
		t.Error("status not paused during the outage")
	}
	e.nats.Restart()
	e.logs.wait(t, "JetStream export resumed")
	e.ingest(story(6, 1)...)
	msgs := receive(t, e.js(), DefaultStream, 14)
	x.stop()
	checkExported(t, DefaultSubjectPrefix, e.changes(), msgs)
	if st := x.Status(); st.Paused || st.Failures == 0 {
		t.Errorf("status %+v", st)
	}
}

// The service starts while the broker is down: the export waits for it,
// then exports what was committed meanwhile.
func TestStartsWhileTheBrokerIsDown(t *testing.T) {
	e := newEnv(t)
	e.nats.Stop()
	x := e.export(e.broker, Options{})
	e.ingest(story(0, 2)...)
	e.logs.wait(t, "JetStream export paused; intake goes on, and the export resumes where the stream ends")
	e.nats.Restart()
	msgs := receive(t, e.js(), DefaultStream, 4)
	x.stop()
	checkExported(t, DefaultSubjectPrefix, e.changes(), msgs)
}

// Two replicas, each with its own broker over the shared store, export to
// one stream at once: it holds every change once, in the log's order.
func TestTwoReplicasExportEachChangeOnce(t *testing.T) {
	e := newEnv(t)
	other := e.runBroker()
	a := e.export(e.broker, Options{})
	b := e.export(other, Options{})
	for i := range 10 {
		e.ingest(story(i*5, 5)...)
		other.Notify()
	}
	log := e.changes()
	js := e.js()
	msgs := receive(t, js, DefaultStream, len(log))
	a.stop()
	b.stop()
	checkExported(t, DefaultSubjectPrefix, log, msgs)
	if st := streamState(t, js, DefaultStream); st.Msgs != uint64(len(log)) {
		t.Errorf("stream holds %d messages for %d changes", st.Msgs, len(log))
	}
	if sum := a.Status().Exported + b.Status().Exported; sum != uint64(len(log)) {
		t.Errorf("replicas appended %d messages for %d changes", sum, len(log))
	}
}

// A change too large for the broker's max_payload is exported with its
// error message cut and marked so; it does not stall the export.
func TestLargeChangeIsCutToFit(t *testing.T) {
	const maxPayload = 8 << 10
	e := newEnv(t)
	e.nats.SetMaxPayload(maxPayload)
	e.nats.Restart()
	big := failed(0, 0)
	// Capped at health.MaxMessageBytes in the change, then nearly doubled
	// by JSON's escapes of '<' and '>'.
	big.ErrorMessage = strings.Repeat("<too long> ", 1<<10)
	e.ingest(big, failed(1, time.Second))
	x := e.export(e.broker, Options{})
	msgs := receive(t, e.js(), DefaultStream, 2)
	x.stop()
	if got := msgs[0].Headers().Get(TruncatedHeader); got != "error_message" {
		t.Errorf("%s = %q, want error_message", TruncatedHeader, got)
	}
	if n := len(msgs[0].Data()); n > maxPayload || n < maxPayload/2 {
		t.Errorf("cut body is %d bytes; want it near the %d bytes of max_payload", n, maxPayload)
	}
	if msgs[1].Headers().Get(TruncatedHeader) != "" {
		t.Error("a small change was marked truncated")
	}
	log := e.changes()
	if id := msgs[0].Headers().Get(nats.MsgIdHdr); id != outbound.IDOf(log[0].Seq) {
		t.Errorf("cut message id %q", id)
	}
}

// A deleted stream says nothing of where the export stood: the export
// creates it again and fills it with the whole log.
func TestRecreatedStreamGetsTheWholeLog(t *testing.T) {
	e := newEnv(t)
	js := e.js()
	x := e.export(e.broker, Options{})
	e.ingest(story(0, 2)...)
	receive(t, js, DefaultStream, 4)
	x.stop()
	if err := js.DeleteStream(t.Context(), DefaultStream); err != nil {
		t.Fatal(err)
	}
	e.ingest(story(2, 1)...)
	e.logs.forget("created the JetStream stream")
	x = e.export(e.broker, Options{})
	e.logs.wait(t, "created the JetStream stream")
	msgs := receive(t, js, DefaultStream, 6)
	x.stop()
	checkExported(t, DefaultSubjectPrefix, e.changes(), msgs)
}

// After a purge, JetStream still remembers the ids of its deduplication
// window and takes them as delivered: the export moves past them, without
// spinning, and appends what comes next.
func TestPurgedStreamWithinTheWindow(t *testing.T) {
	e := newEnv(t)
	js := e.js()
	x := e.export(e.broker, Options{})
	e.ingest(story(0, 2)...)
	receive(t, js, DefaultStream, 4)
	x.stop()
	st, err := js.Stream(t.Context(), DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(t.Context()); err != nil {
		t.Fatal(err)
	}
	x = e.export(e.broker, Options{})
	e.logs.wait(t, "the JetStream stream holds no exported transition; exporting the whole change log to it")
	e.ingest(story(2, 1)...)
	msgs := receive(t, js, DefaultStream, 2)
	x.stop()
	checkExported(t, DefaultSubjectPrefix, e.changes()[4:], msgs)
	if got := x.Status().Exported; got != 2 {
		t.Errorf("appended %d after the purge, want 2", got)
	}
}

// A stream whose last export message names a change beyond the store's log
// holds another database's export: the export refuses to append to it.
func TestRefusesAnotherDatabasesStream(t *testing.T) {
	e := newEnv(t)
	js := e.js()
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: DefaultStream, Subjects: []string{"accounthealth.>"}}); err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg("accounthealth.account.disconnected.u.a")
	msg.Header.Set(nats.MsgIdHdr, outbound.IDOf(1000))
	if _, err := js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	e.ingest(story(0, 1)...)
	x := e.export(e.broker, Options{})
	e.logs.wait(t, "JetStream export paused; intake goes on, and the export resumes where the stream ends")
	x.stop()
	if st := streamState(t, js, DefaultStream); st.Msgs != 1 {
		t.Errorf("stream holds %d messages, want only the foreign one", st.Msgs)
	}
}

// A stream whose last message the export did not publish cannot say where
// the export stands: the export appends nothing to it, and says why.
func TestRefusesAStreamItDoesNotOwn(t *testing.T) {
	e := newEnv(t)
	js := e.js()
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: DefaultStream, Subjects: []string{"accounthealth.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "accounthealth.other", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	e.ingest(story(0, 1)...)
	x := e.export(e.broker, Options{})
	e.logs.wait(t, "JetStream export paused; intake goes on, and the export resumes where the stream ends")
	x.stop()
	if st := streamState(t, js, DefaultStream); st.Msgs != 1 {
		t.Errorf("stream holds %d messages, want only the foreign one", st.Msgs)
	}
	e.logs.mu.Lock()
	defer e.logs.mu.Unlock()
	if log := strings.Join(e.logs.lines, "\n"); !strings.Contains(log, "the export needs a stream of its own") {
		t.Errorf("the log does not say why:\n%s", log)
	}
}

func TestRedacted(t *testing.T) {
	got := redacted("nats://user:secret@a:4222, nats://b:4222,tls://token@c:4222")
	if strings.Contains(got, "secret") || strings.Contains(got, "token") || !strings.Contains(got, "nats://user:xxxxx@a:4222") ||
		!strings.Contains(got, "nats://b:4222") || !strings.Contains(got, "tls://xxxxx@c:4222") {
		t.Errorf("redacted = %q", got)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string // in the error; "" for none
	}{
		{Options{URL: "nats://127.0.0.1:4222"}, ""},
		{Options{URL: "nats://a:1", Stream: "S1", SubjectPrefix: "a.b-c"}, ""},
		{Options{}, "nats-url: required"},
		{Options{URL: "127.0.0.1:4222,nats://b:4222"}, ""},
		{Options{URL: "http://a:1"}, "scheme"},
		{Options{URL: "nats://:4222"}, "no host"},
		{Options{URL: "nats://a:1", Stream: "a.b"}, "nats-stream"},
		{Options{URL: "nats://a:1", SubjectPrefix: "a..b"}, "nats-subject-prefix"},
		{Options{URL: "nats://a:1", SubjectPrefix: "a.*"}, "nats-subject-prefix"},
		{Options{URL: "nats://a:1", SubjectPrefix: "a.>"}, "nats-subject-prefix"},
		{Options{URL: "nats://a:1", AckTimeout: -time.Second}, "negative"},
	} {
		err := tc.opts.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.opts, err, tc.want)
		}
	}
}
