package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/accounthealth/accounthealth/client"
	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

// The examples call a server seeded with four accounts: acct-1 and acct-4
// failed their first login, acct-2 connected, and acct-3 connected after a
// failed login.

func ExampleNew() {
	// Plaintext, since the target is loopback; any other target gets TLS
	// with the system's roots unless told otherwise.
	c, err := client.New(exampleTarget,
		client.WithTimeout(5*time.Second),
		client.WithRetries(2),
		client.WithUserAgent("billing-sync/1.4"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	h, err := c.Health(context.Background(), "acct-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(h.GetState(), h.GetErrorCode())
	fmt.Println(h.GetRemedy().GetAction(), "-", h.GetRemedy().GetMessage())
	// Output:
	// HEALTH_STATE_AUTH_FAILED invalid_mfa
	// REMEDY_ACTION_RETRY_MFA - The multi-factor authentication answer was wrong; retry in Link and enter the correct code.
}

func ExampleIsNotFound() {
	c, err := client.New(exampleTarget)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	_, err = c.Health(context.Background(), "no-such-account")
	fmt.Println(client.IsNotFound(err))
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code, e.Reason)
		fmt.Println(e.Message)
	}
	// Output:
	// true
	// NotFound NOT_FOUND
	// account "no-such-account" not found: no delivery naming it was ever accepted
}

func ExampleClient_AllHealth() {
	c, err := client.New(exampleTarget)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Every failed account, however many pages that takes.
	opts := client.ListOptions{States: []ahv1.HealthState{ahv1.HealthState_HEALTH_STATE_AUTH_FAILED}, PageSize: 1}
	for h, err := range c.AllHealth(context.Background(), opts) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(h.GetAccountId(), h.GetUserId(), h.GetErrorCode())
	}
	// Output:
	// acct-1 user-1 invalid_mfa
	// acct-4 user-2 invalid_credentials
}

func ExampleClient_Summary() {
	c, err := client.New(exampleTarget)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	sum, err := c.Summary(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("total", sum.GetTotal())
	for _, s := range sum.GetByState() {
		if s.GetCount() > 0 {
			fmt.Println(s.GetState(), s.GetCount())
		}
	}
	// Output:
	// total 4
	// HEALTH_STATE_HEALTHY 2
	// HEALTH_STATE_AUTH_FAILED 2
}

func ExampleClient_AllEvents() {
	c, err := client.New(exampleTarget)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for ev, err := range c.AllEvents(context.Background(), "acct-3", client.PageOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		t := ev.GetTransition()
		fmt.Println(ev.GetEventType(), ev.GetOutcome(), t.GetPreviousState(), "->", t.GetState())
	}
	// Output:
	// accounts.failed DELIVERY_OUTCOME_APPLIED HEALTH_STATE_UNSPECIFIED -> HEALTH_STATE_AUTH_FAILED
	// accounts.connected DELIVERY_OUTCOME_APPLIED HEALTH_STATE_AUTH_FAILED -> HEALTH_STATE_HEALTHY
}

func ExampleClient_DeleteFailed() {
	c, err := client.New(exampleTarget)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// A dry run checks the account qualifies and deletes nothing.
	resp, err := c.DeleteFailed(context.Background(), "acct-1", client.DeleteOptions{DryRun: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.GetOutcome(), resp.GetAccountHealth().GetState())

	// A connected account is never deleted.
	_, err = c.DeleteFailed(context.Background(), "acct-2", client.DeleteOptions{DryRun: true})
	fmt.Println(client.IsFailedPrecondition(err))
	// Output:
	// DELETION_OUTCOME_WOULD_DELETE HEALTH_STATE_AUTH_FAILED
	// true
}

func ExampleClient_Watch() {
	c, err := client.New(exampleTarget)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var last string
	opts := client.WatchOptions{Since: time.Now().Add(-time.Hour), IncludeRecoveries: true}
	err = c.Watch(ctx, opts, func(ctx context.Context, ev *ahv1.DisconnectionEvent) error {
		fmt.Println(ev.GetAccountId(), ev.GetKind(), ev.GetState())
		// Keep the cursor (in a file, a database) to resume right after
		// this event next time, with WatchOptions.ResumeAfter.
		last = ev.GetCursor()
		if ev.GetAccountId() == "acct-4" {
			cancel() // seen enough
		}
		return nil
	})
	fmt.Println(errors.Is(err, context.Canceled), last != "")
	// Output:
	// acct-1 TRANSITION_KIND_AUTH_FAILED HEALTH_STATE_AUTH_FAILED
	// acct-3 TRANSITION_KIND_AUTH_FAILED HEALTH_STATE_AUTH_FAILED
	// acct-3 TRANSITION_KIND_RECOVERED HEALTH_STATE_HEALTHY
	// acct-4 TRANSITION_KIND_AUTH_FAILED HEALTH_STATE_AUTH_FAILED
	// true true
}
