package webhook_test

import (
	"fmt"
	"time"

	"github.com/accounthealth/accounthealth/server/webhook"
)

// The intake pipeline: verify the exact bytes received, then decode them.
func Example() {
	body := []byte(`{"event": "accounts.failed", "name": "health", "data": {"account": "a1", "user": "u1", "error_code": "mfa_timeout"}}`)
	signature := webhook.Sign("subscription secret", body) // what the provider sends in webhook.SignatureHeader

	v, err := webhook.NewVerifier("subscription secret")
	if err != nil {
		panic(err)
	}
	if err := v.Verify(body, signature); err != nil {
		fmt.Println("refused:", err) // 401
		return
	}
	env, err := webhook.Decode(body, time.Date(2026, 11, 12, 5, 0, 0, 0, time.UTC))
	if err != nil {
		fmt.Println("refused:", err) // 400
		return
	}
	fmt.Println(env.Event, env.Delivery.AccountID, env.Delivery.ErrorCode)
	fmt.Println(v.Verify(body[1:], signature))
	// Output:
	// accounts.failed a1 mfa_timeout
	// invalid signature: does not match the body; sign the exact bytes sent with the subscription's secret
}
