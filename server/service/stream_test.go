package service_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// watcher reads one StreamDisconnections stream, over gRPC or over the
// REST gateway's newline-delimited JSON.
type watcher struct {
	// opening is the heartbeat the stream opens with; the watcher returns
	// only once it came, so the subscription is in place before a test
	// ingests anything.
	opening *ahv1.Heartbeat
	msgs    chan *ahv1.StreamDisconnectionsResponse
	done    chan struct{}
	err     error // the stream's end: a status error, or nil for EOF
	cancel  context.CancelFunc
}

type streamTransport struct {
	name  string
	watch func(e *env, req *ahv1.StreamDisconnectionsRequest) *watcher
}

var streamTransports = []streamTransport{{"grpc", (*env).watchGRPC}, {"rest", (*env).watchREST}}

func newWatcher(parent context.Context) (*watcher, context.Context) {
	ctx, cancel := context.WithCancel(parent)
	return &watcher{msgs: make(chan *ahv1.StreamDisconnectionsResponse, 10000), done: make(chan struct{}), cancel: cancel}, ctx
}

func (e *env) watchGRPC(req *ahv1.StreamDisconnectionsRequest) *watcher {
	return e.watchGRPCInto(make(chan *ahv1.StreamDisconnectionsResponse, 10000), req)
}

func (e *env) watchREST(req *ahv1.StreamDisconnectionsRequest) *watcher {
	w, ctx := newWatcher(e.t.Context())
	q := url.Values{}
	for _, u := range req.GetUserIds() {
		q.Add("userIds", u)
	}
	for _, k := range req.GetKinds() {
		q.Add("kinds", k.String())
	}
	for _, c := range req.GetErrorCodes() {
		q.Add("errorCodes", c)
	}
	if req.GetIncludeRecoveries() {
		q.Set("includeRecoveries", "true")
	}
	if c := req.GetResumeAfter(); c != "" {
		q.Set("resumeAfter", c)
	}
	if s := req.GetSince(); s != nil {
		q.Set("since", s.AsTime().Format(time.RFC3339Nano))
	}
	hreq, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.addrs.API+"/v1/disconnections:stream?"+q.Encode(), nil)
	res, err := http.DefaultClient.Do(hreq)
	if err != nil {
		e.t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		w.err = fmt.Errorf("HTTP %d", res.StatusCode)
		close(w.done)
		return w
	}
	sc := bufio.NewScanner(res.Body)
	lines := make(chan *ahv1.StreamDisconnectionsResponse, 1)
	go func() {
		defer close(w.done)
		defer res.Body.Close()
		first := true
		for sc.Scan() {
			var line struct {
				Result json.RawMessage
				Error  *struct {
					Code    codes.Code
					Message string
				}
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				w.err = fmt.Errorf("bad line %q: %v", sc.Text(), err)
				return
			}
			if line.Error != nil {
				w.err = status.Error(line.Error.Code, line.Error.Message)
				return
			}
			msg := &ahv1.StreamDisconnectionsResponse{}
			if err := protojson.Unmarshal(line.Result, msg); err != nil {
				w.err = err
				return
			}
			if first {
				first = false
				lines <- msg
				continue
			}
			w.msgs <- msg
		}
	}()
	select {
	case m := <-lines:
		w.opening = m.GetHeartbeat()
	case <-w.done:
	}
	return w
}

// events waits for n events (skipping heartbeats) and returns them.
func (w *watcher) events(t *testing.T, n int) []*ahv1.DisconnectionEvent {
	t.Helper()
	var out []*ahv1.DisconnectionEvent
	timeout := time.After(15 * time.Second)
	for len(out) < n {
		select {
		case m := <-w.msgs:
			if ev := m.GetEvent(); ev != nil {
				out = append(out, ev)
			}
		case <-w.done:
			t.Fatalf("stream ended after %d of %d events: %v", len(out), n, w.err)
		case <-timeout:
			t.Fatalf("got %d of %d events in 15s", len(out), n)
		}
	}
	return out
}

// quiet checks that no event arrives for a short while.
func (w *watcher) quiet(t *testing.T) {
	t.Helper()
	deadline := time.After(300 * time.Millisecond)
	for {
		select {
		case m := <-w.msgs:
			if ev := m.GetEvent(); ev != nil {
				t.Fatalf("unexpected event %v", ev)
			}
		case <-deadline:
			return
		}
	}
}

func kinds(evs []*ahv1.DisconnectionEvent) string {
	var out []string
	for _, ev := range evs {
		out = append(out, strings.TrimPrefix(ev.GetKind().String(), "TRANSITION_KIND_")+":"+ev.GetAccountId())
	}
	return strings.Join(out, " ")
}

// story delivers, for each account, a disconnection, an expiry and a
// recovery, one second apart.
func story(e *env, accounts ...string) {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i, a := range accounts {
		user := "user-" + a
		e.deliver(updatedBody(a, user, "connected", "", at.Add(time.Duration(i)*time.Hour)))
		e.deliver(updatedBody(a, user, "error", "auth_required", at.Add(time.Duration(i)*time.Hour+time.Second)))
		e.deliver(updatedBody(a, user, "error", "expired_credentials", at.Add(time.Duration(i)*time.Hour+2*time.Second)))
		e.deliver(updatedBody(a, user, "connected", "", at.Add(time.Duration(i)*time.Hour+3*time.Second)))
	}
}

func TestStreamReplayFiltersAndResume(t *testing.T) {
	for _, st := range streamTransports {
		t.Run(st.name, func(t *testing.T) {
			e := start(t, nil)
			story(e, "a1", "a2")
			epoch := timestamppb.New(time.Unix(0, 0))
			cases := []struct {
				name string
				req  *ahv1.StreamDisconnectionsRequest
				want string
			}{
				{"all, no recoveries", &ahv1.StreamDisconnectionsRequest{Start: &ahv1.StreamDisconnectionsRequest_Since{Since: epoch}},
					"DISCONNECTED:a1 DISCONNECTED:a1 DISCONNECTED:a2 DISCONNECTED:a2"},
				{"with recoveries", &ahv1.StreamDisconnectionsRequest{IncludeRecoveries: true, Start: &ahv1.StreamDisconnectionsRequest_Since{Since: epoch}},
					"DISCONNECTED:a1 DISCONNECTED:a1 RECOVERED:a1 DISCONNECTED:a2 DISCONNECTED:a2 RECOVERED:a2"},
				{"one user", &ahv1.StreamDisconnectionsRequest{UserIds: []string{"user-a2"}, IncludeRecoveries: true, Start: &ahv1.StreamDisconnectionsRequest_Since{Since: epoch}},
					"DISCONNECTED:a2 DISCONNECTED:a2 RECOVERED:a2"},
				{"one code", &ahv1.StreamDisconnectionsRequest{ErrorCodes: []string{"expired_credentials"}, Start: &ahv1.StreamDisconnectionsRequest_Since{Since: epoch}},
					"DISCONNECTED:a1 DISCONNECTED:a2"},
				{"only recoveries", &ahv1.StreamDisconnectionsRequest{Kinds: []ahv1.TransitionKind{ahv1.TransitionKind_TRANSITION_KIND_RECOVERED}, Start: &ahv1.StreamDisconnectionsRequest_Since{Since: epoch}},
					"RECOVERED:a1 RECOVERED:a2"},
			}
			for _, c := range cases {
				w := st.watch(e, c.req)
				n := strings.Count(c.want, " ") + 1
				if got := kinds(w.events(t, n)); got != c.want {
					t.Errorf("%s: %s, want %s", c.name, got, c.want)
				}
				w.quiet(t)
				w.cancel()
			}

			// Resuming after the second event gives exactly the ones after it.
			all := st.watch(e, &ahv1.StreamDisconnectionsRequest{IncludeRecoveries: true, Start: &ahv1.StreamDisconnectionsRequest_Since{Since: epoch}})
			evs := all.events(t, 6)
			all.cancel()
			resumed := st.watch(e, &ahv1.StreamDisconnectionsRequest{IncludeRecoveries: true, Start: &ahv1.StreamDisconnectionsRequest_ResumeAfter{ResumeAfter: evs[1].GetCursor()}})
			if got, want := kinds(resumed.events(t, 4)), kinds(evs[2:]); got != want {
				t.Errorf("resumed: %s, want %s", got, want)
			}
			resumed.quiet(t)

			// The default start is "only new events": live ones arrive.
			live := st.watch(e, &ahv1.StreamDisconnectionsRequest{})
			live.quiet(t)
			story(e, "a3")
			if got := kinds(live.events(t, 2)); got != "DISCONNECTED:a3 DISCONNECTED:a3" {
				t.Errorf("live: %s", got)
			}
			ev := evs[1]
			if ev.GetUserId() != "user-a1" || ev.GetErrorCode() != "expired_credentials" || ev.GetRemedy().GetAction() != ahv1.RemedyAction_REMEDY_ACTION_UPDATE_CREDENTIALS ||
				ev.GetPreviousState() != ahv1.HealthState_HEALTH_STATE_DISCONNECTED || ev.GetState() != ahv1.HealthState_HEALTH_STATE_DISCONNECTED ||
				ev.GetOccurredAt() == nil || ev.GetDelivery().GetEventType() != "accounts.updated" || ev.GetDelivery().GetSequence() == 0 {
				t.Errorf("event fields: %v", ev)
			}
		})
	}
}

func TestStreamBadRequests(t *testing.T) {
	e := start(t, nil)
	for _, st := range streamTransports {
		for _, req := range []*ahv1.StreamDisconnectionsRequest{
			{Start: &ahv1.StreamDisconnectionsRequest_ResumeAfter{ResumeAfter: "not-a-cursor"}},
			{Kinds: []ahv1.TransitionKind{ahv1.TransitionKind_TRANSITION_KIND_UNSPECIFIED}},
		} {
			w := st.watch(e, req)
			select {
			case <-w.done:
				if !strings.Contains(fmt.Sprint(w.err), "InvalidArgument") && !strings.Contains(fmt.Sprint(w.err), "HTTP 400") {
					t.Errorf("%s %v: ended with %v, want INVALID_ARGUMENT", st.name, req, w.err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("%s %v: stream did not end", st.name, req)
			}
		}
	}
}

// Subscribers that start at different points while deliveries keep being
// committed each receive exactly the log after their start: no gap, no
// duplicate at the seam between replay and live.
func TestStreamSeamUnderConcurrentIngestion(t *testing.T) {
	e := start(t, nil)
	const total = 300
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	wg.Add(1)
	started := make(chan struct{})
	go func() {
		defer wg.Done()
		for i := range total {
			if i == total/3 {
				close(started)
			}
			// Alternating codes: every delivery is a transition.
			code := []string{"auth_required", "expired_credentials"}[i%2]
			body := updatedBody(fmt.Sprintf("acct-%d", i%7), "u", "error", code, at.Add(time.Duration(i)*time.Second))
			if r := e.postGRPC(body, webhook.Sign(fixtureSecret, body)); r.code != codes.OK {
				t.Errorf("delivery %d: %s", i, r.code)
				return
			}
		}
	}()
	<-started
	fromNow := e.watchGRPC(&ahv1.StreamDisconnectionsRequest{})
	fromNowREST := e.watchREST(&ahv1.StreamDisconnectionsRequest{})
	wg.Wait()

	epoch := timestamppb.New(time.Unix(0, 0))
	full := e.watchGRPC(&ahv1.StreamDisconnectionsRequest{Start: &ahv1.StreamDisconnectionsRequest_Since{Since: epoch}}).events(t, total)
	index := map[string]int{}
	for i, ev := range full {
		if _, dup := index[ev.GetCursor()]; dup {
			t.Fatalf("cursor %s twice in the log", ev.GetCursor())
		}
		index[ev.GetCursor()] = i
	}
	check := func(name string, w *watcher) {
		first := w.events(t, 1)[0]
		i, ok := index[first.GetCursor()]
		if !ok {
			t.Fatalf("%s: first event not in the log", name)
		}
		rest := w.events(t, total-i-1)
		got := append([]*ahv1.DisconnectionEvent{first}, rest...)
		for j, ev := range got {
			if ev.GetCursor() != full[i+j].GetCursor() {
				t.Fatalf("%s: event %d is %s, want %s", name, j, ev.GetCursor(), full[i+j].GetCursor())
			}
		}
		w.quiet(t)
	}
	check("grpc from now", fromNow)
	check("rest from now", fromNowREST)
	mid := full[total/2].GetCursor()
	check("resumed mid-way", e.watchGRPC(&ahv1.StreamDisconnectionsRequest{Start: &ahv1.StreamDisconnectionsRequest_ResumeAfter{ResumeAfter: mid}}))
}

// A subscriber that stops reading does not hold up ingestion or the others,
// and gets everything once it reads again.
func TestStreamStalledSubscriber(t *testing.T) {
	e := start(t, nil)
	// Unbuffered and unread: its reader blocks at once, then gRPC flow
	// control stops the server's sends.
	stalled := e.watchGRPCInto(make(chan *ahv1.StreamDisconnectionsResponse), &ahv1.StreamDisconnectionsRequest{})
	active := e.watchGRPC(&ahv1.StreamDisconnectionsRequest{})
	const total = 2000
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range total {
		code := []string{"auth_required", "expired_credentials"}[i%2]
		body := updatedBody("acct", "u", "error", code, at.Add(time.Duration(i)*time.Second))
		if r := e.postGRPC(body, webhook.Sign(fixtureSecret, body)); r.code != codes.OK {
			t.Fatalf("delivery %d: %s %s", i, r.code, r.message)
		}
	}
	want := active.events(t, total)
	// The stalled one now reads: everything, in the same order.
	got := stalled.events(t, total)
	for i := range got {
		if got[i].GetCursor() != want[i].GetCursor() {
			t.Fatalf("event %d: %s, want %s", i, got[i].GetCursor(), want[i].GetCursor())
		}
	}
}

// watchGRPCInto is watchGRPC with a caller-chosen channel, so a test can
// make the reader block.
func (e *env) watchGRPCInto(ch chan *ahv1.StreamDisconnectionsResponse, req *ahv1.StreamDisconnectionsRequest) *watcher {
	w, ctx := newWatcher(e.t.Context())
	w.msgs = ch
	stream, err := ahv1.NewAccountHealthServiceClient(e.conn).StreamDisconnections(ctx, req)
	if err != nil {
		e.t.Fatal(err)
	}
	if first, err := stream.Recv(); err == nil {
		w.opening = first.GetHeartbeat()
	} else {
		// A refused request: the stream ends at once, with its status.
		w.err = err
		close(w.done)
		return w
	}
	go func() {
		defer close(w.done)
		for {
			msg, err := stream.Recv()
			if err != nil {
				if status.Code(err) != codes.OK {
					w.err = err
				}
				return
			}
			select {
			case w.msgs <- msg:
			case <-ctx.Done():
				return
			}
		}
	}()
	return w
}

func TestStreamHeartbeats(t *testing.T) {
	e := start(t, nil, func(c *service.Config) { c.StreamHeartbeat = 100 * time.Millisecond })
	story(e, "a1")
	// Filtered out: only heartbeats come, and their cursor moves past the
	// unwanted events, so resuming from it skips them without a gap.
	w := e.watchGRPC(&ahv1.StreamDisconnectionsRequest{UserIds: []string{"someone-else"}, Start: &ahv1.StreamDisconnectionsRequest_Since{Since: timestamppb.New(time.Unix(0, 0))}})
	// The stream opens with a heartbeat at its start; the next ones come
	// after the interval, past the events filtered out.
	beats := []*ahv1.Heartbeat{w.opening}
	for len(beats) < 2 {
		select {
		case m := <-w.msgs:
			if m.GetEvent() != nil {
				t.Fatalf("filtered stream got an event: %v", m)
			}
			beats = append(beats, m.GetHeartbeat())
		case <-time.After(5 * time.Second):
			t.Fatalf("%d heartbeats within 5s, want 2", len(beats))
		}
	}
	hb := beats[1]
	if hb.GetCursor() == "" || hb.GetTime() == nil || hb.GetCursor() == beats[0].GetCursor() {
		t.Fatalf("heartbeats = %v", beats)
	}
	resumed := e.watchGRPC(&ahv1.StreamDisconnectionsRequest{IncludeRecoveries: true, Start: &ahv1.StreamDisconnectionsRequest_ResumeAfter{ResumeAfter: hb.GetCursor()}})
	resumed.quiet(t)
	story(e, "a2")
	if got := kinds(resumed.events(t, 3)); got != "DISCONNECTED:a2 DISCONNECTED:a2 RECOVERED:a2" {
		t.Errorf("after heartbeat cursor: %s", got)
	}
}

// On shutdown streams end promptly with UNAVAILABLE; a client resuming from
// its last cursor on the restarted server gets exactly what it missed.
func TestStreamShutdownAndResume(t *testing.T) {
	dir := t.TempDir()
	e := start(t, openStore(t, dir))
	w := e.watchGRPC(&ahv1.StreamDisconnectionsRequest{IncludeRecoveries: true})
	story(e, "a1")
	seen := w.events(t, 3)
	story(e, "a2") // the client misses these: it stops reading
	stopped := make(chan error, 1)
	go func() { stopped <- e.stop() }()
	select {
	case <-w.done:
		if status.Code(w.err) != codes.Unavailable || !strings.Contains(w.err.Error(), "resume") {
			t.Errorf("stream ended with %v, want UNAVAILABLE saying to resume", w.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end within 5s of shutdown")
	}
	if err := <-stopped; err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	again := start(t, openStore(t, dir))
	story(again, "a3")
	resumed := again.watchGRPC(&ahv1.StreamDisconnectionsRequest{IncludeRecoveries: true, Start: &ahv1.StreamDisconnectionsRequest_ResumeAfter{ResumeAfter: seen[2].GetCursor()}})
	if got := kinds(resumed.events(t, 6)); got != "DISCONNECTED:a2 DISCONNECTED:a2 RECOVERED:a2 DISCONNECTED:a3 DISCONNECTED:a3 RECOVERED:a3" {
		t.Errorf("resumed: %s", got)
	}
	resumed.quiet(t)
}

// REST takes enum values by their short names, as the CLI does, and names
// the values there are when one is none.
func TestRESTShortEnumNames(t *testing.T) {
	e := start(t, nil)
	e.deliver(leanBody("accounts.failed", "acct", "u"))
	for _, q := range []string{"states=AUTH_FAILED", "states=auth_failed", "states=HEALTH_STATE_AUTH_FAILED", "states=3"} {
		code, body := restGet(t, http.DefaultClient, "http://"+e.addrs.API+"/v1/accounts/health?"+q, "")
		if code != http.StatusOK || !strings.Contains(body, `"accountId":"acct"`) {
			t.Errorf("%s: %d %s", q, code, body)
		}
	}
	res, err := http.Get("http://" + e.addrs.API + "/v1/accounts/health?states=sick")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	code, msg, reason := e.restFailure(res.StatusCode, raw)
	if code != codes.InvalidArgument || reason != ahv1.ErrorReason_INVALID_ARGUMENT ||
		!strings.Contains(msg, `states: "sick" is not one of CONNECTING, HEALTHY, AUTH_FAILED`) {
		t.Errorf("states=sick: %s %s %q", code, reason, msg)
	}
	// The stream's kinds too: it opens with its heartbeat.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.addrs.API+"/v1/disconnections:stream?kinds=disconnected&kinds=Removed", nil)
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	line, _ := bufio.NewReader(stream.Body).ReadString('\n')
	if stream.StatusCode != http.StatusOK || !strings.Contains(line, "heartbeat") {
		t.Errorf("kinds=disconnected,Removed: %d %q", stream.StatusCode, line)
	}
}
