package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"
)

// WebhookSpec is a webhook subscription to create.
type WebhookSpec struct {
	// Events lists the events delivered, e.g. accounts.updated; "*" is
	// every event.
	Events []string
	// Name comes back as "name" in every delivery.
	Name string
	// URL receives the deliveries.
	URL string
	// Secret keys the deliveries' signatures; without one the provider
	// signs nothing.
	Secret string
	// IncludeResource puts the full account object in account deliveries.
	// The provider refuses it for a "*" subscription.
	IncludeResource bool
	// Items lists the items of an items.updated subscription, at most
	// MaxItemsPerSubscription.
	Items []string
}

func (s WebhookSpec) validate() error {
	var errs []error
	if len(s.Events) == 0 {
		errs = append(errs, errors.New("no events"))
	}
	if s.Name == "" {
		errs = append(errs, errors.New("no name"))
	}
	if s.URL == "" {
		errs = append(errs, errors.New("no url"))
	}
	if s.IncludeResource && slices.Contains(s.Events, "*") {
		errs = append(errs, errors.New(`include_resource is not allowed with the "*" event; list the events`))
	}
	if len(s.Items) > MaxItemsPerSubscription {
		errs = append(errs, fmt.Errorf("%d items, over the %d a subscription may list", len(s.Items), MaxItemsPerSubscription))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("argyle: create webhook: %w", err)
	}
	return nil
}

// String prints the spec with the secret redacted.
func (s WebhookSpec) String() string {
	return fmt.Sprintf("provider.WebhookSpec{Events:%q Name:%q URL:%q Secret:%q IncludeResource:%t Items:%q}",
		s.Events, s.Name, s.URL, redacted(s.Secret), s.IncludeResource, s.Items)
}

// GoString covers %#v.
func (s WebhookSpec) GoString() string { return s.String() }

// LogValue logs the spec with the secret redacted.
func (s WebhookSpec) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("events", s.Events),
		slog.String("name", s.Name),
		slog.String("url", s.URL),
		slog.String("secret", redacted(s.Secret)),
		slog.Bool("include_resource", s.IncludeResource),
		slog.Int("items", len(s.Items)),
	)
}

// WebhookConfig is a subscription's options.
type WebhookConfig struct {
	IncludeResource bool     `json:"include_resource"`
	Items           []string `json:"items,omitempty"` // of an items.updated subscription
}

// Webhook is a subscription as the provider lists it. It can be printed
// and logged freely: its Secret never shows.
type Webhook struct {
	ID     string        `json:"id"`
	Name   string        `json:"name"`
	Events []string      `json:"events"`
	URL    string        `json:"url"`
	Config WebhookConfig `json:"config"`
	// Secret is kept to tell whether the deliveries are signed, and with
	// which secret (see CheckSubscriptions and MatchSubscriptions).
	Secret    WebhookSecret `json:"secret"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
	// LastSentAt is zero when nothing was delivered yet.
	LastSentAt time.Time `json:"last_sent_at"`
}

// CreateWebhook subscribes spec.URL to spec.Events. It is retried only
// when the provider surely created nothing (see creating).
func (c *Client) CreateWebhook(ctx context.Context, spec WebhookSpec) (Webhook, error) {
	var w Webhook
	if err := spec.validate(); err != nil {
		return w, err
	}
	body := struct {
		Events []string       `json:"events"`
		Name   string         `json:"name"`
		URL    string         `json:"url"`
		Secret string         `json:"secret,omitempty"`
		Config *WebhookConfig `json:"config,omitempty"`
	}{Events: spec.Events, Name: spec.Name, URL: spec.URL, Secret: spec.Secret}
	if spec.IncludeResource || len(spec.Items) > 0 {
		body.Config = &WebhookConfig{IncludeResource: spec.IncludeResource, Items: spec.Items}
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/webhooks", body: body, policy: creating}, &w)
	return w, err
}

// ListWebhooks returns every subscription, following the pages.
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	var all []Webhook
	pages := walk("webhooks", "", func(cursor string) (page[Webhook], string, error) {
		q, err := ListParams{Limit: MaxPageSize, Cursor: cursor}.query("webhooks")
		if err != nil {
			return page[Webhook]{}, "", err
		}
		return listPage[Webhook](ctx, c, "/webhooks", q)
	})
	for p, err := range pages {
		if err != nil {
			return nil, err
		}
		all = append(all, p.Results...)
	}
	return all, nil
}

// DeleteWebhook deletes a subscription. One already gone ends in an error
// matching ErrNotFound.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	p, err := segment("webhook", id)
	if err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodDelete, path: "/webhooks/" + p}, nil)
}
