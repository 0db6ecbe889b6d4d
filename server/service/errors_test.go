package service

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/accounthealth/accounthealth/server/intake"
	"github.com/accounthealth/accounthealth/server/reconnect"
)

// TestHTTPErrorHandlerResourceExhausted: over REST, gRPC's own message size
// limit is 500 INTERNAL, never the 429 that has callers retry what cannot
// succeed; the service's RESOURCE_EXHAUSTED errors keep their statuses.
func TestHTTPErrorHandlerResourceExhausted(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		wantHTTP int
		wantCode codes.Code
	}{
		{"gRPC's receive limit", status.Error(codes.ResourceExhausted, "grpc: received message larger than max (5001126 vs. 4194304)"), http.StatusInternalServerError, codes.Internal},
		{"gRPC's send limit", status.Error(codes.ResourceExhausted, "grpc: trying to send message larger than max (5001126 vs. 4194304)"), http.StatusInternalServerError, codes.Internal},
		{"delivery too large", toStatus(context.Background(), nil, intake.ErrTooLarge), http.StatusRequestEntityTooLarge, codes.ResourceExhausted},
		{"invite resent too soon, a rate limit", toStatus(context.Background(), nil, reconnect.ErrResentRecently), http.StatusTooManyRequests, codes.ResourceExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, "/v1/accounts/health", nil)
			httpErrorHandler(t.Context(), runtime.NewServeMux(), &runtime.JSONPb{}, w, r, tc.err)
			var st statuspb.Status
			if err := protojson.Unmarshal(w.Body.Bytes(), &st); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if w.Code != tc.wantHTTP || codes.Code(st.GetCode()) != tc.wantCode {
				t.Errorf("HTTP %d, code %s (%q); want %d, %s", w.Code, codes.Code(st.GetCode()), st.GetMessage(), tc.wantHTTP, tc.wantCode)
			}
		})
	}
}
