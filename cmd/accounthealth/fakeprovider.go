package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"

	"github.com/accounthealth/accounthealth/server/provider/providerfake"
	"github.com/accounthealth/accounthealth/server/service"
)

// runFakeProvider serves a fake of the provider's v2 API, so the whole
// system runs locally with no provider account: serve points
// --argyle-api-url at it, and it sends its signed webhooks back to serve.
func runFakeProvider(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("fake-provider", "fake-provider [flags]", stderr)
	flagUsage := fs.Usage
	fs.Usage = func() {
		flagUsage()
		fmt.Fprintf(stderr, "\n%s\n", providerfake.ControlRoutes)
	}
	addr := fs.String("addr", "127.0.0.1:8090", "where the fake API listens")
	webhookURL := fs.String("webhook-url", "http://127.0.0.1:8080"+service.WebhookPath, "where the fake sends its webhook deliveries (serve's webhook route)")
	var secrets secretList
	fs.Var(&secrets, "webhook-secret", "secret to sign deliveries with, as given to serve (of a comma-separated list the last one signs)")
	keyID := fs.String("key-id", providerfake.DefaultKeyID, "API key id the fake accepts")
	keySecret := fs.String("key-secret", providerfake.DefaultKeySecret, "API key secret the fake accepts")
	includeResource := fs.Bool("include-resource", true, "put the account object in account deliveries")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	secret := ""
	if len(secrets) > 0 {
		secret = secrets[len(secrets)-1]
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	fake := providerfake.New(providerfake.Options{
		KeyID: *keyID, KeySecret: *keySecret, WebhookURL: *webhookURL, WebhookSecret: secret,
		IncludeResource: *includeResource, Logger: logger,
	})
	defer fake.Close()
	ln, err := net.Listen("tcp", *addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("addr: %s is in use (is another fake-provider running?): stop what holds it, or give --addr a free address", *addr)
	}
	if err != nil {
		return fmt.Errorf("addr: cannot listen on %s: %w", *addr, err)
	}
	fmt.Fprintf(stdout, "fake provider API on http://%s/v2 (key %s); webhooks to %s\n", ln.Addr(), *keyID, *webhookURL)
	fmt.Fprintf(stdout, "point serve at it: --argyle-api-url http://%s/v2 --argyle-api-key-id %s --argyle-api-key-secret %s\n", ln.Addr(), *keyID, *keySecret)
	if secret == "" {
		fmt.Fprintln(stdout, "deliveries are unsigned (no --webhook-secret): serve needs --allow-unsigned-webhooks")
	}
	return fake.Serve(ctx, ln)
}
