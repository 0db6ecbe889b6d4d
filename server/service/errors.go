package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/auth"
	"github.com/accounthealth/accounthealth/server/backfill"
	"github.com/accounthealth/accounthealth/server/deletion"
	"github.com/accounthealth/accounthealth/server/intake"
	"github.com/accounthealth/accounthealth/server/provider"
	"github.com/accounthealth/accounthealth/server/reconnect"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/stream"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// errorDomain names this service in google.rpc.ErrorInfo details.
const errorDomain = "accounthealth"

// Messages that replace an error's own text, which may name files or hosts.
const (
	storeUnavailableMessage = "temporarily unavailable (storage or shutdown); retry later"
	shuttingDownMessage     = "the server is shutting down; reconnect and resume after the last cursor you received"
	messageTooLargeMessage  = "a message between the REST gateway and the service exceeded gRPC's size limit, which retrying does not lift: " +
		"a request body must be smaller than --max-body-bytes; a response that large is a server bug, to report with the request"
)

// errorMapping is the one table from the domain's errors to what callers
// see: the gRPC code, the ErrorInfo reason, and over HTTP the status when
// the gateway's usual one for the code would mislead.
var errorMapping = []struct {
	target error
	code   codes.Code
	reason ahv1.ErrorReason
	// httpStatus, when not 0, replaces the gateway's status for code.
	httpStatus int
	// public, when set, replaces the error's text, which is logged.
	public string
}{
	{target: errBadField, code: codes.InvalidArgument, reason: ahv1.ErrorReason_INVALID_ARGUMENT},
	{target: store.ErrNotFound, code: codes.NotFound, reason: ahv1.ErrorReason_NOT_FOUND},
	{target: store.ErrInvalidArgument, code: codes.InvalidArgument, reason: ahv1.ErrorReason_INVALID_ARGUMENT},
	{target: store.ErrOutOfRange, code: codes.OutOfRange, reason: ahv1.ErrorReason_PRUNED},
	{target: auth.ErrUnauthenticated, code: codes.Unauthenticated, reason: ahv1.ErrorReason_UNAUTHENTICATED},
	{target: webhook.ErrMissingSignature, code: codes.Unauthenticated, reason: ahv1.ErrorReason_MISSING_SIGNATURE},
	{target: webhook.ErrInvalidSignature, code: codes.Unauthenticated, reason: ahv1.ErrorReason_INVALID_SIGNATURE},
	{target: webhook.ErrMalformed, code: codes.InvalidArgument, reason: ahv1.ErrorReason_MALFORMED_DELIVERY},
	// 413, not the gateway's 429: the sender must not retry it unchanged.
	{target: intake.ErrTooLarge, code: codes.ResourceExhausted, reason: ahv1.ErrorReason_DELIVERY_TOO_LARGE, httpStatus: http.StatusRequestEntityTooLarge},
	{target: errUnreadable, code: codes.InvalidArgument, reason: ahv1.ErrorReason_DELIVERY_UNREADABLE},
	{target: errSourceNotAllowed, code: codes.PermissionDenied, reason: ahv1.ErrorReason_SOURCE_NOT_ALLOWED},
	// 405, not the gateway's 501: the path exists, for other methods.
	{target: errMethodNotAllowed, code: codes.Unimplemented, reason: ahv1.ErrorReason_METHOD_NOT_ALLOWED, httpStatus: http.StatusMethodNotAllowed},
	{target: intake.ErrUnavailable, code: codes.Unavailable, reason: ahv1.ErrorReason_STORE_UNAVAILABLE, public: storeUnavailableMessage},
	{target: intake.ErrStopped, code: codes.Unavailable, reason: ahv1.ErrorReason_STORE_UNAVAILABLE, public: storeUnavailableMessage},
	{target: store.ErrUnavailable, code: codes.Unavailable, reason: ahv1.ErrorReason_STORE_UNAVAILABLE, public: storeUnavailableMessage},
	{target: store.ErrClosed, code: codes.Unavailable, reason: ahv1.ErrorReason_STORE_UNAVAILABLE, public: storeUnavailableMessage},
	{target: errNotReady, code: codes.Unavailable, reason: ahv1.ErrorReason_STORE_UNAVAILABLE},
	{target: errIntakeBusy, code: codes.Unavailable, reason: ahv1.ErrorReason_INTAKE_BUSY},
	{target: stream.ErrClosed, code: codes.Unavailable, reason: ahv1.ErrorReason_SHUTTING_DOWN, public: shuttingDownMessage},
	{target: errShuttingDown, code: codes.Unavailable, reason: ahv1.ErrorReason_SHUTTING_DOWN},
	{target: deletion.ErrNotDeletable, code: codes.FailedPrecondition, reason: ahv1.ErrorReason_ACCOUNT_NOT_DELETABLE},
	{target: deletion.ErrProviderAuth, code: codes.FailedPrecondition, reason: ahv1.ErrorReason_PROVIDER_AUTH_FAILED},
	{target: deletion.ErrProviderUnavailable, code: codes.Unavailable, reason: ahv1.ErrorReason_PROVIDER_UNAVAILABLE},
	{target: deletion.ErrNotRecorded, code: codes.Unavailable, reason: ahv1.ErrorReason_STORE_UNAVAILABLE},
	{target: reconnect.ErrNotReconnectable, code: codes.FailedPrecondition, reason: ahv1.ErrorReason_ACCOUNT_NOT_RECONNECTABLE},
	{target: reconnect.ErrNoInvite, code: codes.FailedPrecondition, reason: ahv1.ErrorReason_NO_INVITE},
	{target: reconnect.ErrInviteRevoked, code: codes.FailedPrecondition, reason: ahv1.ErrorReason_INVITE_REVOKED},
	{target: reconnect.ErrResentRecently, code: codes.ResourceExhausted, reason: ahv1.ErrorReason_INVITE_RESENT_RECENTLY},
	{target: backfill.ErrInProgress, code: codes.FailedPrecondition, reason: ahv1.ErrorReason_SYNC_IN_PROGRESS},
	// The provider's errors as its client gives them, for the calls that
	// pass them on with their own words (refresh, reconnect).
	{target: provider.ErrNotConfigured, code: codes.FailedPrecondition, reason: ahv1.ErrorReason_PROVIDER_NOT_CONFIGURED},
	{target: provider.ErrUnauthorized, code: codes.FailedPrecondition, reason: ahv1.ErrorReason_PROVIDER_AUTH_FAILED},
	{target: provider.ErrRateLimited, code: codes.Unavailable, reason: ahv1.ErrorReason_PROVIDER_UNAVAILABLE},
	{target: provider.ErrUnavailable, code: codes.Unavailable, reason: ahv1.ErrorReason_PROVIDER_UNAVAILABLE},
}

// Errors of the service's own front ends, mapped like the domain's.
var (
	// errBadField: a request field is wrong (see invalidArgument).
	errBadField = errors.New("invalid argument")
	// errUnreadable: the webhook route could not read the request body.
	errUnreadable = errors.New("could not read the request body")
	// errSourceNotAllowed: a delivery from an address not allowed.
	errSourceNotAllowed = errors.New("source not allowed")
	// errMethodNotAllowed: an HTTP path exists, but not for the method.
	errMethodNotAllowed = errors.New("method not allowed")
	// errIntakeBusy: the webhook route holds its budget of bodies.
	errIntakeBusy = errors.New("too many delivery bytes in flight")
	// errNotReady: the readiness probe's last check failed.
	errNotReady = errors.New("not ready")
	// errShuttingDown: the readiness probe's answer once shutdown began.
	errShuttingDown = errors.New("shutting down")
)

// invalidArgument reports a bad request field, naming it first.
func invalidArgument(field, problem string) error {
	return errorf(errBadField, "%s: %s", field, problem)
}

// toStatus translates err into a gRPC status error. Our own errors keep
// their message (they say what was wrong and what to do), unless the
// mapping gives a public one; anything else is logged in full and returned
// as a generic Internal error so no detail of the store leaks to callers.
func toStatus(ctx context.Context, logger *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	for _, m := range errorMapping {
		if !errors.Is(err, m.target) {
			continue
		}
		msg := err.Error()
		if m.public != "" {
			if m.code == codes.Unavailable && m.reason != ahv1.ErrorReason_SHUTTING_DOWN {
				logger.ErrorContext(ctx, "request failed: store unavailable", "error", err)
			}
			msg = m.public
		}
		st, derr := status.New(m.code, msg).WithDetails(&errdetails.ErrorInfo{Reason: m.reason.String(), Domain: errorDomain})
		if derr != nil {
			return status.Error(m.code, msg)
		}
		return st.Err()
	}
	logger.ErrorContext(ctx, "request failed: internal error", "error", err)
	return status.Error(codes.Internal, "internal error; the server log has the details")
}

// reasonOf returns the ErrorInfo reason of a status error, if any.
func reasonOf(err error) ahv1.ErrorReason {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == errorDomain {
			return ahv1.ErrorReason(ahv1.ErrorReason_value[info.GetReason()])
		}
	}
	return ahv1.ErrorReason_ERROR_REASON_UNSPECIFIED
}

// httpStatus is the HTTP status of a status error: the mapping's, or the
// gateway's usual one for its code.
func httpStatus(err error) int {
	reason := reasonOf(err)
	for _, m := range errorMapping {
		if m.reason == reason && m.httpStatus != 0 {
			return m.httpStatus
		}
	}
	return runtime.HTTPStatusFromCode(status.Code(err))
}

// httpErrorHandler is both gateway muxes' error handler: the gateway's
// usual answer with the mapping's HTTP status.
func httpErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if status.Code(err) == codes.ResourceExhausted && reasonOf(err) == ahv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		// Ours all carry a reason; one without is gRPC's message size
		// limit between the gateway and the service, which its usual 429
		// would have callers retry for ever.
		err = status.Error(codes.Internal, messageTooLargeMessage)
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, &runtime.HTTPStatusError{HTTPStatus: httpStatus(err), Err: err})
}

// writeError answers an HTTP request that fails before it reaches the
// gateway (authentication, source filter, probes) in the gateway's error
// shape, a google.rpc.Status as JSON, so every HTTP error reads the same.
func writeError(ctx context.Context, logger *slog.Logger, w http.ResponseWriter, err error) {
	err = toStatus(ctx, logger, err)
	body, merr := protojson.Marshal(status.Convert(err).Proto())
	if merr != nil {
		body, _ = json.Marshal(map[string]any{"code": codes.Internal, "message": "internal error"})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus(err))
	_, _ = w.Write(body)
}

// errorf words target for the caller: the message replaces target's own
// text (it says what was wrong and what to do) and errors.Is still finds
// target, so the mapping applies.
func errorf(target error, format string, args ...any) error {
	return &worded{target: target, msg: fmt.Sprintf(format, args...)}
}

type worded struct {
	target error
	msg    string
}

func (e *worded) Error() string { return e.msg }
func (e *worded) Unwrap() error { return e.target }
