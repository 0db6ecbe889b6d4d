package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/accounthealth/accounthealth/server/buildinfo"
	"github.com/accounthealth/accounthealth/server/outbound"
	"github.com/accounthealth/accounthealth/server/store"
)

// Headers of Standard Webhooks.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// result is what came of one request.
type result struct {
	status     int
	latency    time.Duration
	response   string
	retryAfter time.Duration
	err        error // nil on a 2xx
}

// send posts one signed message to the endpoint and reads the start of
// the answer.
func (n *Notifier) send(ctx context.Context, client *http.Client, e *store.Endpoint, id string, body []byte) result {
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	now := n.opts.Now()
	ts := now.Unix()
	sig, err := Sign(e.Secrets, now, id, ts, body)
	if err != nil {
		return result{err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "accounthealth-webhooks/"+buildinfo.Get().Version)
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, sig)
	start := time.Now()
	resp, err := client.Do(req)
	r := result{latency: time.Since(start)}
	if err != nil {
		r.err = err
		if errors.Is(err, context.DeadlineExceeded) {
			r.err = fmt.Errorf("no answer within %v", n.opts.Timeout)
		}
		return r
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, store.AttemptResponseBytes))
	r.status, r.response = resp.StatusCode, strings.ToValidUTF8(string(snippet), "\uFFFD")
	r.latency = time.Since(start)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		r.err = fmt.Errorf("HTTP %d", resp.StatusCode)
		r.retryAfter = retryAfter(resp, now)
	}
	return r
}

// deliver sends a leased message once and records the attempt: a 2xx
// delivers it, a 410 disables the endpoint (the message waits for it to
// be enabled), anything else is retried on the schedule until it runs out
// and the message is a dead letter.
func (n *Notifier) deliver(ctx context.Context, e *store.Endpoint, m store.OutboxMessage, l *lane, client *http.Client) {
	started := n.now()
	r := n.send(ctx, client, e, outbound.IDOf(m.Seq), m.Body)
	stopping := ctx.Err() != nil
	n.answered(l, !stopping)
	if stopping {
		return // shutting down: the lease expires and the message is sent again
	}
	now := n.now()
	a := store.Attempt{EndpointID: e.ID, Seq: m.Seq, N: m.Attempts + 1, At: now, StatusCode: r.status, Latency: r.latency, Response: r.response}
	next := store.MessageState{Status: store.MessageDelivered, Retries: m.Retries, NextAt: now}
	gone := r.status == http.StatusGone
	if r.err != nil {
		a.Error, next.LastError = r.err.Error(), r.err.Error()
		next.Status, next.Retries = store.MessagePending, m.Retries+1
		delay, ok := nextDelay(n.opts.Schedule, next.Retries, r.retryAfter)
		switch {
		case gone:
			next.Retries = m.Retries
		case !ok:
			next.Status = store.MessageExhausted
		default:
			next.NextAt = now.Add(delay)
		}
	}
	res, err := n.recordAttempt(ctx, a, next)
	if err != nil || !res.Recorded {
		if err != nil && ctx.Err() == nil {
			n.opts.Logger.Warn("notify: recording an attempt failed; the message is sent again once its lease expires",
				"endpoint", e.ID, "message", outbound.IDOf(m.Seq), "error", err)
		}
		return
	}
	failingSince := res.FailingSince
	if o := n.opts.Observer.Attempted; o != nil {
		o(e.ID, r.err == nil, r.latency)
	}
	if next.Status == store.MessagePending && !gone {
		n.mu.Lock()
		n.wakeAtLocked(next.NextAt)
		n.mu.Unlock()
	}
	switch {
	case gone:
		n.disable(ctx, e.ID, "the endpoint answered 410 Gone", time.Time{}, started)
	case r.err != nil && !failingSince.IsZero() && now.Sub(failingSince) >= n.opts.DisableAfter:
		n.disable(ctx, e.ID, fmt.Sprintf("every attempt failed since %s (more than %v)", failingSince.Format(time.RFC3339), n.opts.DisableAfter), failingSince, started)
	}
}

// errSkipped: the endpoint changed meanwhile, and a disable no longer applies.
var errSkipped = errors.New("skipped")

// disable turns an endpoint off on the service's own decision, and says
// so: an operational event. With failingSince set, only while that run of
// failures goes on: an endpoint enabled meanwhile (which ends the run)
// stays enabled.
func (n *Notifier) disable(ctx context.Context, id, reason string, failingSince, attemptStarted time.Time) {
	_, err := n.modify(ctx, id, func(e *store.Endpoint) error {
		// An endpoint changed since the attempt began (an operator enabled
		// it again) is not disabled by that attempt's answer: a message
		// claimed before an enable may come back 410 after it.
		if e.Disabled || e.UpdatedAt.After(attemptStarted) || (!failingSince.IsZero() && !e.FailingSince.Equal(failingSince)) {
			return errSkipped
		}
		e.Disabled, e.DisabledReason = true, reason
		return nil
	})
	if errors.Is(err, errSkipped) {
		return
	}
	if err != nil {
		n.opts.Logger.Error("notify: disabling a failing endpoint failed", "endpoint", id, "reason", reason, "error", err)
		return
	}
	n.opts.Logger.Warn("notify: endpoint disabled; enable it once the receiver works again, nothing is lost meanwhile", "endpoint", id, "reason", reason)
	if o := n.opts.Observer.Disabled; o != nil {
		o(id)
	}
}

// TypeTest is the type of a test message (SendTest).
const TypeTest = "endpoint.test"

// SendTest sends the endpoint a signed test message now, outside its
// queue and limits, and returns how it went. The message has an id of its
// own ("msg_test_..."), never a change's.
func (n *Notifier) SendTest(ctx context.Context, id string) (a store.Attempt, messageID string, err error) {
	e, err := n.outbox.GetEndpoint(ctx, id)
	if err != nil {
		return store.Attempt{}, "", err
	}
	now := n.now()
	body, err := json.Marshal(map[string]any{"type": TypeTest, "timestamp": now, "data": map[string]string{"endpoint_id": e.ID}})
	if err != nil {
		return store.Attempt{}, "", err
	}
	messageID = outbound.IDPrefix + "test_" + strings.ToLower(rand.Text())
	n.mu.Lock()
	client := n.laneOf(&e).client
	n.mu.Unlock()
	r := n.send(ctx, client, &e, messageID, body)
	a = store.Attempt{EndpointID: e.ID, N: 1, At: now, StatusCode: r.status, Latency: r.latency, Response: r.response}
	if r.err != nil {
		a.Error = r.err.Error()
	}
	return a, messageID, nil
}

// Stats counts each endpoint's messages not yet delivered, for metrics.
func (n *Notifier) Stats(ctx context.Context) ([]store.EndpointStats, error) {
	return n.outbox.OutboxStats(ctx)
}
