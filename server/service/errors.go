package service

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/accounthealth/accounthealth/server/intake"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/stream"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// errorDomain names this service in google.rpc.ErrorInfo details.
const errorDomain = "accounthealth"

// Reasons in ErrorInfo, for callers that branch on more than the code.
const (
	ReasonNotFound         = "NOT_FOUND"
	ReasonInvalidArgument  = "INVALID_ARGUMENT"
	ReasonMissingSignature = "MISSING_SIGNATURE"
	ReasonInvalidSignature = "INVALID_SIGNATURE"
	ReasonMalformed        = "MALFORMED_DELIVERY"
	ReasonTooLarge         = "DELIVERY_TOO_LARGE"
	ReasonStoreUnavailable = "STORE_UNAVAILABLE"
	ReasonShuttingDown     = "SHUTTING_DOWN"
)

// errorMapping is the one table from our errors to gRPC status codes.
var errorMapping = []struct {
	target error
	code   codes.Code
	reason string
}{
	{store.ErrNotFound, codes.NotFound, ReasonNotFound},
	{store.ErrInvalidArgument, codes.InvalidArgument, ReasonInvalidArgument},
	{webhook.ErrMissingSignature, codes.Unauthenticated, ReasonMissingSignature},
	{webhook.ErrInvalidSignature, codes.Unauthenticated, ReasonInvalidSignature},
	{webhook.ErrMalformed, codes.InvalidArgument, ReasonMalformed},
	{intake.ErrTooLarge, codes.ResourceExhausted, ReasonTooLarge},
	{intake.ErrUnavailable, codes.Unavailable, ReasonStoreUnavailable},
	{intake.ErrStopped, codes.Unavailable, ReasonStoreUnavailable},
	{store.ErrClosed, codes.Unavailable, ReasonStoreUnavailable},
	{stream.ErrClosed, codes.Unavailable, ReasonShuttingDown},
}

// toStatus translates err into a gRPC status error. Our own errors keep
// their message (they say what was wrong and what to do); anything else is
// logged in full and returned as a generic Internal error so no detail of
// the store leaks to callers.
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
		if errors.Is(err, m.target) {
			msg := err.Error()
			if m.reason == ReasonShuttingDown {
				msg = "the server is shutting down; reconnect and resume after the last cursor you received"
			} else if m.code == codes.Unavailable {
				// The cause may name files or hosts; log it, tell the caller
				// only what to do.
				logger.ErrorContext(ctx, "request failed: store unavailable", "error", err)
				msg = "temporarily unavailable (storage or shutdown); retry later"
			}
			return withReason(m.code, m.reason, msg)
		}
	}
	logger.ErrorContext(ctx, "request failed: internal error", "error", err)
	return status.Error(codes.Internal, "internal error; the server log has the details")
}

func withReason(code codes.Code, reason, msg string) error {
	st, err := status.New(code, msg).WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain})
	if err != nil {
		return status.Error(code, msg)
	}
	return st.Err()
}

// invalidArgument reports a bad request field, naming it.
func invalidArgument(field, problem string) error {
	return withReason(codes.InvalidArgument, ReasonInvalidArgument, field+": "+problem)
}
