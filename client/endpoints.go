package client

import (
	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

// Endpoints returns the client of the outbound webhook endpoints
// (NotificationService), on the same connection, with the same timeout,
// typed errors and retries: its reads (GetEndpoint, ListEndpoints,
// ListMessages, ListAttempts) are retried on UNAVAILABLE; calls that
// change an endpoint are not.
func (c *Client) Endpoints() ahv1.NotificationServiceClient { return c.notify }
