package providerfake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/accounthealth/accounthealth/server/provider/accountobject"
	"github.com/accounthealth/accounthealth/server/webhook"
)

const (
	// deliveryName is the subscription name in deliveries to
	// Options.WebhookURL.
	deliveryName = "providerfake"
	// deliveryUserAgent is what the provider's sender was recorded with.
	deliveryUserAgent = "ReactorNetty/1.1.28"
	// deliveryTimeout is how long the provider reportedly waits for an
	// answer.
	deliveryTimeout = 10 * time.Second
)

// target is where deliveries go: Options.WebhookURL or a subscription.
type target struct {
	url, name, secret string
	includeResource   bool
	events            []string // "*" is every event
	subscription      string   // id; empty for Options.WebhookURL
}

func (t target) wants(event string) bool {
	return slices.Contains(t.events, "*") || slices.Contains(t.events, event)
}

// message is one delivery's body, signed as sent.
type message struct {
	event, account string
	body           []byte
}

type deliveryBody struct {
	Event string       `json:"event"`
	Name  string       `json:"name"`
	Data  deliveryData `json:"data"`
}

type deliveryData struct {
	Account string `json:"account"`
	User    string `json:"user"`
	// ErrorCode and ErrorMessage are sent with accounts.failed only.
	ErrorCode    string          `json:"error_code,omitempty"`
	ErrorMessage string          `json:"error_message,omitempty"`
	Resource     json.RawMessage `json:"resource,omitempty"`
}

// targets lists where deliveries go. f.mu is held.
func (f *Fake) targets() []target {
	var ts []target
	if f.opts.WebhookURL != "" {
		ts = append(ts, target{
			url: f.opts.WebhookURL, name: deliveryName, secret: f.opts.WebhookSecret,
			includeResource: f.opts.IncludeResource, events: []string{"*"},
		})
	}
	for _, s := range f.sortedSubscriptions() {
		t := target{url: s.URL, name: s.Name, includeResource: s.Config.IncludeResource, events: s.Events, subscription: s.ID}
		if s.Secret != nil {
			t.secret = *s.Secret
		}
		ts = append(ts, t)
	}
	return ts
}

// update is one event about an account and the account object it carries.
type update struct {
	event    string
	resource json.RawMessage
}

// notify sends events about a, in order, each with a as it is now.
func (f *Fake) notify(a AccountSeed, events ...string) {
	us := make([]update, len(events))
	resource := render(a)
	for i, ev := range events {
		us[i] = update{event: ev, resource: resource}
	}
	f.send(a, us)
}

// send sends updates about a, in order, to every target wanting them, in
// the background. f.mu is held, so the resources sent are the states the
// change went through, and Close cannot slip between its check and the
// start.
func (f *Fake) send(a AccountSeed, us []update) {
	if len(us) == 0 {
		return
	}
	if f.closed {
		var events []string
		for _, u := range us {
			events = append(events, u.event)
		}
		f.log.Warn("fake closed; deliveries dropped", "account", a.ID, "events", events)
		return
	}
	for _, t := range f.targets() {
		var msgs []message
		for _, u := range us {
			if !t.wants(u.event) {
				continue
			}
			data := deliveryData{Account: a.ID, User: a.User}
			if u.event == "accounts.failed" {
				data.ErrorCode, data.ErrorMessage = a.ErrorCode, a.ErrorMessage
			}
			// A removed account's data is gone: there is nothing to include.
			if t.includeResource && u.event != "accounts.removed" {
				data.Resource = u.resource
			}
			body, err := json.Marshal(deliveryBody{Event: u.event, Name: t.name, Data: data})
			if err != nil {
				panic(err) // strings and a valid RawMessage: cannot fail
			}
			msgs = append(msgs, message{event: u.event, account: a.ID, body: body})
		}
		if len(msgs) > 0 {
			f.pending++
			go f.deliver(t, msgs)
		}
	}
}

// deliver posts msgs in order, each retried once after RetryDelay when it
// fails, as the provider does.
func (f *Fake) deliver(t target, msgs []message) {
	defer func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.pending--; f.pending == 0 {
			f.idle.Broadcast()
		}
	}()
	for _, m := range msgs {
		for attempt := 1; f.ctx.Err() == nil; attempt++ {
			f.markSent(t.subscription)
			err := f.post(t, m.body)
			if err == nil {
				f.log.Info("webhook delivered", "event", m.event, "account", m.account, "url", t.url, "attempt", attempt)
				break
			}
			f.log.Warn("webhook delivery failed", "event", m.event, "account", m.account, "url", t.url, "attempt", attempt, "err", err)
			if attempt == 2 || !f.pause(f.ctx, f.opts.RetryDelay) {
				break
			}
		}
	}
}

// post sends one delivery, signed over the exact bytes sent.
func (f *Fake) post(t target, body []byte) error {
	ctx, cancel := context.WithTimeout(f.ctx, deliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", deliveryUserAgent)
	if t.secret != "" {
		req.Header.Set(webhook.SignatureHeader, webhook.Sign(t.secret, body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

// markSent stamps a subscription's last_sent_at.
func (f *Fake) markSent(id string) {
	if id == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.webhooks[id]; s != nil {
		s.LastSentAt = accountobject.Time(accountobject.Truncate(f.opts.Clock()))
	}
}

// sortedSubscriptions lists the subscriptions in the order they were made.
// f.mu is held.
func (f *Fake) sortedSubscriptions() []*subscription {
	return inOrder(f.webhooks, func(s *subscription) int64 { return s.seq }, func(*subscription) bool { return true })
}
