package service_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/service"
)

// received is one request a receiver got, verified.
type received struct {
	ID, Type, Account, Cursor string
	Signatures                string
	At                        time.Time
}

// receiver is a webhook receiver that checks each request with the
// Standard Webhooks reference library and answers as answer says.
type receiver struct {
	t   *testing.T
	srv *httptest.Server
	got chan received

	mu      sync.Mutex
	secrets []string
	answer  func(r received, attempt int) (code int, header http.Header)
	tries   map[string]int // attempts per webhook-id
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, got: make(chan received, 1000), tries: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setSecrets(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = secrets
}

func (r *receiver) setAnswer(answer func(received, int) (int, http.Header)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = answer
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	r.mu.Lock()
	secrets, answer := r.secrets, r.answer
	id := req.Header.Get("webhook-id")
	r.tries[id]++
	attempt := r.tries[id]
	r.mu.Unlock()
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			r.t.Errorf("reference library refuses the secret: %v", err)
			return
		}
		if err := wh.Verify(body, req.Header); err != nil {
			r.t.Errorf("message %s does not verify with secret %d: %v (signature %q)", id, len(secrets), err, req.Header.Get("webhook-signature"))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	}
	var msg struct {
		Type string `json:"type"`
		Data struct {
			AccountID string `json:"account_id"`
			Cursor    string `json:"cursor"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		r.t.Errorf("body %q: %v", body, err)
	}
	got := received{ID: id, Type: msg.Type, Account: msg.Data.AccountID, Cursor: msg.Data.Cursor,
		Signatures: req.Header.Get("webhook-signature"), At: time.Now()}
	code := http.StatusOK
	if answer != nil {
		var h http.Header
		code, h = answer(got, attempt)
		for k, v := range h {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(code)
	if code >= 200 && code < 300 {
		r.got <- got
	}
}

// next returns the next message the receiver accepted.
func (r *receiver) next(t *testing.T) received {
	t.Helper()
	select {
	case m := <-r.got:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no message came within 20 s")
		return received{}
	}
}

func (e *env) notifications() ahv1.NotificationServiceClient {
	return ahv1.NewNotificationServiceClient(e.conn)
}

// endpointFor creates an endpoint for rec that takes recoveries too.
func (e *env) endpointFor(t *testing.T, rec *receiver) *ahv1.Endpoint {
	t.Helper()
	res, err := e.notifications().CreateEndpoint(t.Context(), &ahv1.CreateEndpointRequest{
		Url: rec.srv.URL + "/hook", Description: "test", Filter: &ahv1.EndpointFilter{IncludeRecoveries: true},
	})
	if err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	rec.setSecrets(res.GetSecret())
	return res.GetEndpoint()
}

// fastRetries makes the retry schedule tiny, so tests never wait for it.
func fastRetries(c *service.Config) {
	c.Notify.Schedule = []time.Duration{0, time.Millisecond, time.Millisecond, time.Millisecond}
	c.Notify.Timeout = 2 * time.Second
}

var storyStart = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// storyTypes are the messages story sends for one account: a
// disconnection, another error code, a recovery.
var storyTypes = []string{"account.disconnected", "account.disconnected", "account.recovered"}

// waitAttempts waits until the endpoint's attempts with outcome
// (delivered, failed) number n: a receiver sees a message before the
// service records how the attempt went.
func (e *env) waitAttempts(ep *ahv1.Endpoint, outcome string, n int) {
	e.t.Helper()
	e.waitMetric(`accounthealth_webhook_endpoint_attempts_total{endpoint="`+ep.GetId()+`",outcome="`+outcome+`"}`, float64(n))
}

func TestNotifySignedInOrderPerAccount(t *testing.T) {
	e := start(t, nil, fastRetries)
	rec := newReceiver(t)
	ep := e.endpointFor(t, rec)
	accounts := []string{"acct-1", "acct-2", "acct-3"}
	story(e, accounts...)
	byAccount := map[string][]received{}
	for range len(accounts) * len(storyTypes) {
		m := rec.next(t)
		byAccount[m.Account] = append(byAccount[m.Account], m)
	}
	for _, a := range accounts {
		ms := byAccount[a]
		if len(ms) != len(storyTypes) {
			t.Fatalf("%s: %d messages, want %d", a, len(ms), len(storyTypes))
		}
		for i, m := range ms {
			if m.Type != storyTypes[i] || m.ID != "msg_"+m.Cursor {
				t.Errorf("%s message %d: %+v; want type %s and id msg_<cursor>", a, i, m, storyTypes[i])
			}
		}
	}
	e.waitAttempts(ep, "delivered", 9)
	page, err := e.notifications().ListMessages(t.Context(), &ahv1.ListMessagesRequest{EndpointId: ep.GetId()})
	if err != nil || len(page.GetMessages()) != 9 {
		t.Fatalf("ListMessages = %v, %v; want 9", page, err)
	}
	for _, m := range page.GetMessages() {
		if m.GetStatus() != ahv1.MessageStatus_MESSAGE_STATUS_DELIVERED || m.GetAttempts() != 1 {
			t.Errorf("message %s: %v after %d attempts, want delivered after 1", m.GetId(), m.GetStatus(), m.GetAttempts())
		}
	}
	attempts, err := e.notifications().ListAttempts(t.Context(), &ahv1.ListAttemptsRequest{EndpointId: ep.GetId(), MessageId: page.GetMessages()[0].GetId()})
	if err != nil || len(attempts.GetAttempts()) != 1 || attempts.GetAttempts()[0].GetStatusCode() != 200 {
		t.Errorf("ListAttempts = %v, %v; want one 200", attempts, err)
	}
}

func TestNotifyRetriesWithoutBlockingOtherAccounts(t *testing.T) {
	e := start(t, nil, fastRetries)
	rec := newReceiver(t)
	var retryAfterSent time.Time
	var mu sync.Mutex
	rec.setAnswer(func(r received, attempt int) (int, http.Header) {
		if r.Account != "acct-slow" {
			return http.StatusOK, nil
		}
		switch attempt {
		case 1:
			return http.StatusInternalServerError, nil
		case 2:
			mu.Lock()
			if retryAfterSent.IsZero() {
				retryAfterSent = time.Now()
			}
			mu.Unlock()
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}
		}
		return http.StatusOK, nil
	})
	e.endpointFor(t, rec)
	story(e, "acct-slow", "acct-fast")
	var order []string
	var slowFirstAt time.Time
	for range 2 * len(storyTypes) {
		m := rec.next(t)
		order = append(order, m.Account+" "+m.Type)
		if m.Account == "acct-slow" && slowFirstAt.IsZero() {
			slowFirstAt = m.At
		}
	}
	// acct-fast's two messages go out while acct-slow's first is retried;
	// acct-slow's keep their order.
	var want []string
	for _, a := range []string{"acct-fast", "acct-slow"} {
		for _, typ := range storyTypes {
			want = append(want, a+" "+typ)
		}
	}
	if !slices.Equal(order, want) {
		t.Errorf("received %v, want %v", order, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if wait := slowFirstAt.Sub(retryAfterSent); wait < time.Second {
		t.Errorf("the attempt after Retry-After: 1 came %v later", wait)
	}
}

func TestNotifyTimeoutIsRetried(t *testing.T) {
	e := start(t, nil, func(c *service.Config) {
		fastRetries(c)
		c.Notify.Timeout = 100 * time.Millisecond
	})
	rec := newReceiver(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rec.setAnswer(func(r received, attempt int) (int, http.Header) {
		if attempt == 1 {
			<-release // never answers in time
		}
		return http.StatusOK, nil
	})
	ep := e.endpointFor(t, rec)
	e.deliver(updatedBody("acct-1", "user-1", "error", "auth_required", storyStart))
	m := rec.next(t)
	e.waitAttempts(ep, "delivered", 1)
	attempts, err := e.notifications().ListAttempts(t.Context(), &ahv1.ListAttemptsRequest{EndpointId: ep.GetId(), MessageId: m.ID})
	if err != nil || len(attempts.GetAttempts()) != 2 {
		t.Fatalf("ListAttempts = %v, %v; want 2", attempts, err)
	}
	if first := attempts.GetAttempts()[1]; first.GetStatusCode() != 0 || first.GetError() == "" {
		t.Errorf("first attempt = %v; want no status and a timeout error", first)
	}
}

func TestNotifyGoneDisablesAndEnableResumes(t *testing.T) {
	e := start(t, nil, fastRetries)
	rec := newReceiver(t)
	rec.setAnswer(func(received, int) (int, http.Header) { return http.StatusGone, nil })
	ep := e.endpointFor(t, rec)
	e.deliver(updatedBody("acct-1", "user-1", "error", "auth_required", storyStart))
	e.waitLog(t, "endpoint disabled")
	got, err := e.notifications().GetEndpoint(t.Context(), &ahv1.GetEndpointRequest{Id: ep.GetId()})
	if err != nil || !got.GetEndpoint().GetDisabled() || got.GetEndpoint().GetDisabledReason() == "" {
		t.Fatalf("GetEndpoint = %v, %v; want disabled with a reason", got, err)
	}
	// Committed while disabled: kept, and sent once enabled.
	e.deliver(updatedBody("acct-1", "user-1", "connected", "", storyStart.Add(time.Second)))
	rec.setAnswer(nil)
	if _, err := e.notifications().EnableEndpoint(t.Context(), &ahv1.EnableEndpointRequest{Id: ep.GetId()}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"account.disconnected", "account.recovered"} {
		if m := rec.next(t); m.Type != want {
			t.Errorf("after enabling: %s, want %s", m.Type, want)
		}
	}
}

func TestNotifyFailingEndpointDisabledAndDeadLetters(t *testing.T) {
	e := start(t, nil, func(c *service.Config) {
		fastRetries(c)
		c.Notify.DisableAfter = time.Millisecond
	})
	rec := newReceiver(t)
	rec.setAnswer(func(received, int) (int, http.Header) { return http.StatusInternalServerError, nil })
	ep := e.endpointFor(t, rec)
	e.deliver(updatedBody("acct-1", "user-1", "error", "auth_required", storyStart))
	e.waitLog(t, "endpoint disabled")
	// Ran out of retries or was cut by the disable: either way not lost.
	page, err := e.notifications().ListMessages(t.Context(), &ahv1.ListMessagesRequest{EndpointId: ep.GetId()})
	if err != nil || len(page.GetMessages()) != 1 || page.GetMessages()[0].GetStatus() == ahv1.MessageStatus_MESSAGE_STATUS_DELIVERED {
		t.Fatalf("ListMessages = %v, %v; want one undelivered", page, err)
	}
	msgID := page.GetMessages()[0].GetId()
	rec.setAnswer(nil)
	if _, err := e.notifications().EnableEndpoint(t.Context(), &ahv1.EnableEndpointRequest{Id: ep.GetId()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.notifications().RetryMessage(t.Context(), &ahv1.RetryMessageRequest{EndpointId: ep.GetId(), MessageId: msgID}); err != nil {
		t.Fatal(err)
	}
	if m := rec.next(t); m.ID != msgID {
		t.Errorf("retried %s, want %s", m.ID, msgID)
	}
}

func TestNotifyDeadLetterView(t *testing.T) {
	e := start(t, nil, fastRetries)
	rec := newReceiver(t)
	rec.setAnswer(func(received, int) (int, http.Header) { return http.StatusBadRequest, nil })
	ep := e.endpointFor(t, rec)
	e.deliver(updatedBody("acct-1", "user-1", "error", "auth_required", storyStart))
	dead := &ahv1.ListMessagesRequest{EndpointId: ep.GetId(), Statuses: []ahv1.MessageStatus{ahv1.MessageStatus_MESSAGE_STATUS_EXHAUSTED}}
	e.waitAttempts(ep, "failed", 4)
	page, err := e.notifications().ListMessages(t.Context(), dead)
	if err != nil || len(page.GetMessages()) != 1 || page.GetMessages()[0].GetAttempts() != 4 {
		t.Fatalf("dead letters = %v, %v; want the message after 4 attempts", page, err)
	}
	got, err := e.notifications().GetEndpoint(t.Context(), &ahv1.GetEndpointRequest{Id: ep.GetId()})
	if b := got.GetEndpoint().GetBacklog(); err != nil || b.GetDeadLetters() != 1 || b.GetPending() != 0 || b.GetOldestPendingAt() != nil {
		t.Errorf("GetEndpoint backlog = %v, %v; want 1 dead letter, nothing pending", b, err)
	}
	list, err := e.notifications().ListEndpoints(t.Context(), &ahv1.ListEndpointsRequest{})
	if err != nil || len(list.GetEndpoints()) != 1 || list.GetEndpoints()[0].GetBacklog().GetDeadLetters() != 1 {
		t.Errorf("ListEndpoints = %v, %v; want the endpoint with 1 dead letter", list, err)
	}
}

func TestNotifyRotationOverlap(t *testing.T) {
	e := start(t, nil, fastRetries)
	rec := newReceiver(t)
	ep := e.endpointFor(t, rec)
	first := rec.secrets[0]
	rot, err := e.notifications().RotateEndpointSecret(t.Context(), &ahv1.RotateEndpointSecretRequest{Id: ep.GetId(), Overlap: durationpb.New(time.Hour)})
	if err != nil || rot.GetSecret() == first || rot.GetEndpoint().GetPreviousSecretExpiresAt() == nil {
		t.Fatalf("RotateEndpointSecret = %v, %v; want a new secret and the old one's expiry", rot, err)
	}
	// The receiver checks the message against each secret on its own.
	rec.setSecrets(first, rot.GetSecret())
	e.deliver(updatedBody("acct-1", "user-1", "error", "auth_required", storyStart))
	if m := rec.next(t); len(m.Signatures) < 2*len("v1,")+2*44 {
		t.Errorf("signature header %q: want two signatures", m.Signatures)
	}
	// Without overlap the old secret stops at once.
	if _, err := e.notifications().RotateEndpointSecret(t.Context(), &ahv1.RotateEndpointSecretRequest{Id: ep.GetId(), Overlap: durationpb.New(0)}); err != nil {
		t.Fatal(err)
	}
}

func TestNotifyReplayWithoutDuplicates(t *testing.T) {
	e := start(t, nil, fastRetries)
	rec := newReceiver(t)
	ep := e.endpointFor(t, rec)
	story(e, "acct-1", "acct-2")
	first := map[string]bool{}
	for range 2 * len(storyTypes) {
		first[rec.next(t).ID] = true
	}
	e.waitAttempts(ep, "delivered", 2*len(storyTypes))
	page, err := e.notifications().ListMessages(t.Context(), &ahv1.ListMessagesRequest{EndpointId: ep.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	var since *timestamppb.Timestamp // when acct-2's first transition occurred
	for _, m := range page.GetMessages() {
		if m.GetAccountId() == "acct-2" {
			since = m.GetOccurredAt()
		}
	}
	res, err := e.notifications().ReplayMessages(t.Context(), &ahv1.ReplayMessagesRequest{EndpointId: ep.GetId(), Since: since})
	if err != nil || int(res.GetRequeued()) != len(storyTypes) {
		t.Fatalf("ReplayMessages since acct-2's story = %v, %v; want %d", res, err, len(storyTypes))
	}
	again := map[string]bool{}
	for range len(storyTypes) {
		m := rec.next(t)
		if !first[m.ID] || again[m.ID] || m.Account != "acct-2" {
			t.Errorf("replayed %+v: want each of acct-2's first messages once", m)
		}
		again[m.ID] = true
	}
	// Nothing else comes: a test message is the next one the receiver sees.
	test, err := e.notifications().SendTestMessage(t.Context(), &ahv1.SendTestMessageRequest{Id: ep.GetId()})
	if err != nil || test.GetAttempt().GetStatusCode() != 200 {
		t.Fatalf("SendTestMessage = %v, %v", test, err)
	}
	if m := rec.next(t); m.Type != "endpoint.test" || m.ID != test.GetAttempt().GetMessageId() {
		t.Errorf("after the replay: %+v, want only the test message", m)
	}
}

func TestNotifyEndpointBadInput(t *testing.T) {
	e := start(t, nil)
	_, apiPort, _ := net.SplitHostPort(e.addrs.API)
	cases := []struct {
		name  string
		req   *ahv1.CreateEndpointRequest
		field string
	}{
		{"no url", &ahv1.CreateEndpointRequest{}, "url"},
		{"not a url", &ahv1.CreateEndpointRequest{Url: "https://exa mple.com/"}, "url"},
		{"ftp", &ahv1.CreateEndpointRequest{Url: "ftp://example.com/"}, "url"},
		{"plain http elsewhere", &ahv1.CreateEndpointRequest{Url: "http://example.com/hook"}, "url"},
		{"own webhook listener", &ahv1.CreateEndpointRequest{Url: "http://" + e.addrs.Webhook + "/v1/webhooks/argyle"}, "url"},
		{"own api listener", &ahv1.CreateEndpointRequest{Url: "http://localhost:" + apiPort + "/"}, "url"},
		{"unknown kind", &ahv1.CreateEndpointRequest{Url: "https://example.com/", Filter: &ahv1.EndpointFilter{Kinds: []ahv1.TransitionKind{99}}}, "kinds"},
		{"unknown error code", &ahv1.CreateEndpointRequest{Url: "https://example.com/", Filter: &ahv1.EndpointFilter{ErrorCodes: []string{"no_such_code"}}}, "error_codes"},
		{"concurrency", &ahv1.CreateEndpointRequest{Url: "https://example.com/", Concurrency: 1000}, "concurrency"},
		{"rate", &ahv1.CreateEndpointRequest{Url: "https://example.com/", RateLimit: -1}, "rate_limit"},
	}
	for _, c := range cases {
		_, err := e.notifications().CreateEndpoint(t.Context(), c.req)
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument || reasonOf(st.Details()) != ahv1.ErrorReason_INVALID_ARGUMENT || !strings.HasPrefix(st.Message(), c.field+":") {
			t.Errorf("%s: %v; want INVALID_ARGUMENT naming %s", c.name, err, c.field)
		}
	}
	if _, err := e.notifications().GetEndpoint(t.Context(), &ahv1.GetEndpointRequest{Id: "ep_nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetEndpoint of none: %v, want NOT_FOUND", err)
	}
}

func TestNotifyEndpointsOverREST(t *testing.T) {
	e := start(t, nil)
	base := "http://" + e.addrs.API + "/v1/endpoints"
	call := func(method, url, body string, wantStatus int) map[string]any {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode != wantStatus {
			t.Fatalf("%s %s: %d %s, want %d", method, url, res.StatusCode, raw, wantStatus)
		}
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		return out
	}
	created := call(http.MethodPost, base, `{"url":"https://receiver.example/hook","filter":{"kinds":["TRANSITION_KIND_AUTH_FAILED"]},"concurrency":2}`, http.StatusOK)
	secret, _ := created["secret"].(string)
	ep, _ := created["endpoint"].(map[string]any)
	id, _ := ep["id"].(string)
	if len(secret) < len("whsec_")+40 || secret[:6] != "whsec_" || id == "" {
		t.Fatalf("created %v; want an id and a whsec_ secret", created)
	}
	got := call(http.MethodGet, base+"/"+id, "", http.StatusOK)
	if _, leaked := got["secret"]; leaked {
		t.Errorf("GetEndpoint shows the secret: %v", got)
	}
	patched := call(http.MethodPatch, base+"/"+id, `{"description":"crm","rateLimit":5}`, http.StatusOK)
	if p, _ := patched["endpoint"].(map[string]any); p["description"] != "crm" || p["rateLimit"] != 5.0 || p["concurrency"] != 2.0 {
		t.Errorf("patched %v; want the description and rate changed, the concurrency kept", patched)
	}
	call(http.MethodPost, base, `{"url":"http://example.com/"}`, http.StatusBadRequest)
	list := call(http.MethodGet, base, "", http.StatusOK)
	if eps, _ := list["endpoints"].([]any); len(eps) != 1 {
		t.Errorf("list = %v", list)
	}
	call(http.MethodGet, base+"/"+id+"/messages?statuses=exhausted", "", http.StatusOK)
	call(http.MethodGet, base+"/"+id+"/messages?statuses=lost", "", http.StatusBadRequest)
	call(http.MethodDelete, base+"/"+id, "", http.StatusOK)
	call(http.MethodGet, base+"/"+id, "", http.StatusNotFound)
	call(http.MethodGet, base+"/"+id+"/messages?pageSize="+strconv.Itoa(1), "", http.StatusNotFound)
}

// TestNotifyFreshnessEvents: an endpoint that asks for freshness events
// gets a HEALTHY account's data going stale and fresh again as
// account.data_stale and account.data_fresh, and keeps its filter; one
// that does not ask gets neither.
func TestNotifyFreshnessEvents(t *testing.T) {
	e := start(t, nil, fastRetries)
	fresh, plain := newReceiver(t), newReceiver(t)
	res, err := e.notifications().CreateEndpoint(t.Context(), &ahv1.CreateEndpointRequest{
		Url: fresh.srv.URL + "/hook", Filter: &ahv1.EndpointFilter{IncludeFreshnessEvents: true},
	})
	if err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	fresh.setSecrets(res.GetSecret())
	if f := res.GetEndpoint().GetFilter(); !f.GetIncludeFreshnessEvents() || f.GetIncludeItemEvents() {
		t.Fatalf("filter %v, want freshness events only", f)
	}
	e.endpointFor(t, plain)
	now := time.Now()
	e.deliver(scannedBody("acc-f", now, "enabled", syncedPaystubs, now))
	e.deliver(scannedBody("acc-f", now, "enabled", `"paystubs":{"status":"sync_failed"}`, now.Add(time.Second)))
	e.deliver(scannedBody("acc-f", now.Add(time.Hour), "enabled", syncedPaystubs, now.Add(2*time.Second)))
	e.deliver(updatedBody("acc-f", "user-f", "error", "auth_required", now.Add(3*time.Second)))
	for _, want := range []string{"account.data_stale", "account.data_fresh", "account.disconnected"} {
		if m := fresh.next(t); m.Type != want || m.Account != "acc-f" {
			t.Fatalf("freshness endpoint got %+v, want %s of acc-f", m, want)
		}
	}
	if m := plain.next(t); m.Type != "account.disconnected" {
		t.Fatalf("the endpoint without freshness events got %+v first, want account.disconnected", m)
	}
}

// TestNotifyItemEvents: an endpoint that asks for item events gets a
// payroll platform's outage beginning and ending, naming no account.
func TestNotifyItemEvents(t *testing.T) {
	e := start(t, nil, fastRetries)
	rec := newReceiver(t)
	res, err := e.notifications().CreateEndpoint(t.Context(), &ahv1.CreateEndpointRequest{
		Url: rec.srv.URL + "/hook", Filter: &ahv1.EndpointFilter{IncludeItemEvents: true},
	})
	if err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	rec.setSecrets(res.GetSecret())
	e.deliver(onItem("item_x", "acc-x", "connected", "", time.Now()))
	e.deliver(itemsUpdatedBody("item_x", "unavailable"))
	if m := rec.next(t); m.Type != "item.outage_began" || m.Account != "" {
		t.Fatalf("got %+v, want item.outage_began naming no account", m)
	}
	e.deliver(itemsUpdatedBody("item_x", "healthy"))
	if m := rec.next(t); m.Type != "item.outage_ended" {
		t.Fatalf("got %+v, want item.outage_ended", m)
	}
}

// TestNotifyEveryEndpointServed: endpoints whose concurrency sums past
// what one claim leases all get their messages. The claim's budget used
// to be shared out in the endpoints' order, whether or not they had
// messages due, so the endpoints after the first thousand places never
// got any.
func TestNotifyEveryEndpointServed(t *testing.T) {
	e := start(t, nil, fastRetries)
	recs := make([]*receiver, 12)
	for i := range recs {
		recs[i] = newReceiver(t)
		res, err := e.notifications().CreateEndpoint(t.Context(), &ahv1.CreateEndpointRequest{
			Url: recs[i].srv.URL + "/hook", Filter: &ahv1.EndpointFilter{IncludeRecoveries: true}, Concurrency: 100,
		})
		if err != nil {
			t.Fatalf("CreateEndpoint: %v", err)
		}
		recs[i].setSecrets(res.GetSecret())
	}
	story(e, "acct-1")
	for i, rec := range recs {
		for j := range storyTypes {
			if m := rec.next(t); m.Type != storyTypes[j] {
				t.Errorf("endpoint %d, message %d: %s, want %s", i, j, m.Type, storyTypes[j])
			}
		}
	}
}
