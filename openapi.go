// Package accounthealth holds what the module ships beside its packages:
// the OpenAPI document generated from proto/ (gen/openapi), which the
// server serves at /openapi.json on its internal API listener.
package accounthealth

import _ "embed"

// OpenAPI is the API's OpenAPI (Swagger 2.0) document: every REST route of
// the internal API and the webhook route, with their messages and the
// ErrorReason enum.
//
//go:embed gen/openapi/accounthealth.swagger.json
var OpenAPI []byte
