package client

import (
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

// errorDomain is the ErrorInfo domain of the service's reasons.
const errorDomain = "accounthealth"

// Error is how every call of a Client fails. It keeps the status, so
// status.Code and status.FromError work on it too.
type Error struct {
	// Method is the RPC, e.g. "GetAccountHealth".
	Method string
	Code   codes.Code
	// Reason is the service's reason (google.rpc.ErrorInfo of its
	// domain), for branching on more than the code; ERROR_REASON_UNSPECIFIED
	// when the error did not come from the service (e.g. no connection).
	// A reason newer than this client is also ERROR_REASON_UNSPECIFIED.
	Reason ahv1.ErrorReason
	// Message is the server's (or gRPC's) message: what was wrong, and
	// for INVALID_ARGUMENT the field first ("page_size: must be ...").
	Message string
	status  *status.Status
}

func (e *Error) Error() string {
	return "accounthealth " + e.Method + ": " + e.Code.String() + ": " + e.Message
}

// GRPCStatus lets the status package see the original status.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// asError turns any error of a call of method (a full or short name) into
// an *Error.
func asError(method string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err) // Unknown unless err is a context error
	}
	e = &Error{Method: method[strings.LastIndex(method, "/")+1:], Code: st.Code(), Message: st.Message(), status: st}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == errorDomain {
			e.Reason = ahv1.ErrorReason(ahv1.ErrorReason_value[info.GetReason()])
		}
	}
	return e
}

// IsNotFound: the account is unknown (no delivery ever named it).
func IsNotFound(err error) bool { return status.Code(err) == codes.NotFound }

// IsInvalidArgument: the request was wrong; Error.Message names the field.
func IsInvalidArgument(err error) bool { return status.Code(err) == codes.InvalidArgument }

// IsFailedPrecondition: the call does not apply to the account as it is
// (e.g. deleting one that is not failed); Error.Message says why.
func IsFailedPrecondition(err error) bool { return status.Code(err) == codes.FailedPrecondition }

// IsUnavailable: the server could not be reached or could not serve;
// retry later.
func IsUnavailable(err error) bool { return status.Code(err) == codes.Unavailable }

// IsUnauthenticated: the server wants a (valid) token; see WithToken.
func IsUnauthenticated(err error) bool { return status.Code(err) == codes.Unauthenticated }
