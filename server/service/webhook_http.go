package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/auth"
	"github.com/accounthealth/accounthealth/server/intake"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// WebhookPath is where the provider POSTs deliveries.
const WebhookPath = "/v1/webhooks/argyle"

// newWebhookMux serves the internet-facing listener: the webhook route and
// the probes. Everything else (metrics included) is the gateway mux's 404.
func newWebhookMux(client ahv1.WebhookServiceClient, pipeline *intake.Pipeline, sources *auth.SourceFilter, tr tracing, ready *readiness, logger *slog.Logger) (*runtime.ServeMux, error) {
	mux := runtime.NewServeMux()
	h := &webhookRoute{client: client, pipeline: pipeline, sources: sources, tracing: tr, logger: logger}
	if err := mux.HandlePath(http.MethodPost, WebhookPath, h.serve); err != nil {
		return nil, err
	}
	if err := handleProbes(mux, ready); err != nil {
		return nil, err
	}
	return mux, nil
}

// webhookRoute hands the exact bytes received and the signature header to
// ReceiveArgyleWebhook. It reads the body itself because the signature
// covers the raw bytes: a gateway-decoded, re-encoded body would not verify.
type webhookRoute struct {
	client ahv1.WebhookServiceClient
	// pipeline gives the body cap, and counts the deliveries this route
	// refuses before they reach it.
	pipeline *intake.Pipeline
	sources  *auth.SourceFilter // who may deliver; admits all when not active
	tracing  tracing
	logger   *slog.Logger
}

func (h *webhookRoute) serve(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	id := r.Header.Get(requestIDHeader)
	if !isRequestID(id) {
		id = newRequestID()
	}
	w.Header().Set(requestIDHeader, id)
	ctx, span := h.tracing.startWebhook(r)
	defer span.End()

	if src, ok := h.sources.Admit(r); !ok {
		h.pipeline.Refused(intake.ReasonSourceNotAllowed)
		h.logger.Warn("webhook refused: source not allowed", "source", src.String(), "request_id", id)
		writeError(w, http.StatusForbidden, codes.PermissionDenied,
			"deliveries are accepted only from the configured sources (--webhook-allow-sources); this one came from "+src.String())
		return
	}

	maxBody := h.pipeline.MaxBodyBytes()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(maxBody)))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.pipeline.Refused(intake.ReasonTooLarge)
			writeError(w, http.StatusRequestEntityTooLarge, codes.ResourceExhausted,
				fmt.Sprintf("delivery body too large: the limit is %d bytes", maxBody))
			return
		}
		h.pipeline.Refused(intake.ReasonUnreadable)
		writeError(w, http.StatusBadRequest, codes.InvalidArgument, "could not read the request body: "+err.Error())
		return
	}

	ctx = metadata.AppendToOutgoingContext(ctx, requestIDHeader, id, callerHeader, webhookCaller)
	resp, err := h.client.ReceiveArgyleWebhook(ctx, &ahv1.ReceiveArgyleWebhookRequest{
		Payload: body,
		// A proto string must be UTF-8: a header that is not would fail
		// to forward (500, which the sender retries), not verify (401).
		Signature: text(r.Header.Get(webhook.SignatureHeader)),
	})
	if err != nil {
		st := status.Convert(err)
		writeError(w, httpStatus(st.Code()), st.Code(), st.Message())
		return
	}
	out, err := protojson.Marshal(resp)
	if err != nil {
		h.logger.Error("cannot encode webhook response", "error", err)
		writeError(w, http.StatusInternalServerError, codes.Internal, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// isRequestID reports whether a caller's request id can be kept: short
// enough for the logs, and printable ASCII, as gRPC metadata must be.
func isRequestID(id string) bool {
	return id != "" && len(id) <= 64 && !strings.ContainsFunc(id, func(r rune) bool { return r < ' ' || r > '~' })
}

// httpStatus is the gateway's usual mapping, except that an oversized body
// is 413, not 429: the sender must not retry it unchanged.
func httpStatus(c codes.Code) int {
	if c == codes.ResourceExhausted {
		return http.StatusRequestEntityTooLarge
	}
	return runtime.HTTPStatusFromCode(c)
}

// writeError answers in the REST gateway's error shape (a google.rpc.Status
// as JSON), so every HTTP error of the service reads the same.
func writeError(w http.ResponseWriter, httpCode int, code codes.Code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpCode)
	_ = json.NewEncoder(w).Encode(struct {
		Code    codes.Code `json:"code"`
		Message string     `json:"message"`
	}{code, message})
}
