package client

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/proto/wire"
)

// Kind is the stable machine code of a failure, the same one the REST
// gateway puts in its "error" field. The Err constants below are the kinds
// this client knows; each is also an error, so that errors.Is(err,
// ErrInvalidState) matches every *Error of that kind, and a switch on
// Error.Kind reads the same names. A kind a newer service answers that is
// not listed here still arrives, by its code, in Error.Kind.
type Kind string

func (k Kind) Error() string { return "moreid: " + string(k) }

// The documented error codes (SPEC section 2).
const (
	// ErrInvalidRequest: a field is missing, too long or malformed.
	ErrInvalidRequest Kind = wire.ReasonInvalidRequest
	// ErrInvalidAPIKey: the API key is missing, unknown or revoked.
	ErrInvalidAPIKey Kind = wire.ReasonInvalidAPIKey
	// ErrInvalidCredentials: wrong user_id or password (the two are not told
	// apart, by design).
	ErrInvalidCredentials Kind = wire.ReasonInvalidCredentials
	// ErrUnauthenticated: the web session is missing or expired.
	ErrUnauthenticated Kind = wire.ReasonUnauthenticated
	// ErrInvalidToken: the access token is unknown, expired or revoked.
	ErrInvalidToken Kind = wire.ReasonInvalidToken
	// ErrAccountDisabled: the user is disabled (said only after a correct
	// password).
	ErrAccountDisabled Kind = wire.ReasonAccountDisabled
	// ErrCSRFFailed: the web session's CSRF token is missing or wrong.
	ErrCSRFFailed Kind = wire.ReasonCSRFFailed
	// ErrIPNotAllowed: the caller's IP is not in the key's whitelist.
	ErrIPNotAllowed Kind = wire.ReasonIPNotAllowed
	// ErrPasswordLoginDisabled: this API key allows only the safe login.
	ErrPasswordLoginDisabled Kind = wire.ReasonPasswordLoginDisabled
	// ErrForbidden: the caller may not do this.
	ErrForbidden Kind = wire.ReasonForbidden
	// ErrNotFound: no such user.
	ErrNotFound Kind = wire.ReasonNotFound
	// ErrMethodNotAllowed: a wrong HTTP method (REST only; listed so that
	// every documented code has its name).
	ErrMethodNotAllowed Kind = wire.ReasonMethodNotAllowed
	// ErrInvalidState: the state is unknown, expired, used, or another key's.
	ErrInvalidState Kind = wire.ReasonInvalidState
	// ErrInvalidCode: the authorization code, UCA or login code is unknown,
	// expired, used, or bound to another state or key.
	ErrInvalidCode Kind = wire.ReasonInvalidCode
	// ErrConflict: the record already exists.
	ErrConflict Kind = wire.ReasonConflict
	// ErrRateLimited: too many attempts; see Error.RetryAfter.
	ErrRateLimited Kind = wire.ReasonRateLimited
	// ErrInternal: the service failed unexpectedly, or answered with a
	// status no Moreid service makes.
	ErrInternal Kind = wire.ReasonInternal
	// ErrUnavailable: the service, or Redis or Postgres behind it, could not
	// be reached, or the call's deadline passed. Worth retrying later.
	ErrUnavailable Kind = wire.ReasonUnavailable
)

// Error is every failure of a call: what a Moreid service answered, or a
// transport failure (an unreachable service is ErrUnavailable). Match it
// with errors.Is against the Err kinds, or take it apart with errors.As.
// It also carries its gRPC status, so status.Code and status.FromError keep
// working on it.
type Error struct {
	// Kind is the failure's code.
	Kind Kind
	// Message is the service's human text (Chinese, as the API document
	// is); for a failure no Moreid service answered (the connection, the
	// deadline) it is gRPC's own description.
	Message string
	// Method is the gRPC method that failed, e.g.
	// "/moreid.auth.v1.AuthService/Login".
	Method string
	// RetryAfter is how long to wait before retrying, when the service said
	// (rate_limited); zero otherwise.
	RetryAfter time.Duration
	// Status is the gRPC status as received.
	Status *status.Status
}

func (e *Error) Error() string {
	return "moreid: " + e.Method + ": " + string(e.Kind) + ": " + e.Message
}

// Is makes errors.Is(err, ErrInvalidState) true for any Error of that kind.
// A deadline or cancellation also matches the context package's errors,
// since that is how callers usually test for them.
func (e *Error) Is(target error) bool {
	switch target {
	case context.DeadlineExceeded:
		return e.Status.Code() == codes.DeadlineExceeded
	case context.Canceled:
		return e.Status.Code() == codes.Canceled
	}
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

// GRPCStatus lets status.FromError and status.Code see the status.
func (e *Error) GRPCStatus() *status.Status { return e.Status }

// fromStatus reads a received status the way platform/apierr wrote it: a
// Moreid service's status carries an ErrorInfo of wire.ErrorDomain whose
// reason is the kind. Any other status was made by gRPC itself, on this
// side or a proxy's: the transport's codes are ErrUnavailable, the rest
// ErrInternal.
func fromStatus(method string, st *status.Status) *Error {
	e := &Error{Kind: ErrInternal, Message: st.Message(), Method: method, Status: st}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		e.Kind = ErrUnavailable
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != wire.ErrorDomain || info.GetReason() == "" {
			continue
		}
		e.Kind = Kind(info.GetReason())
		if s, err := strconv.Atoi(info.GetMetadata()[wire.RetryAfterMetadata]); err == nil && s > 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		break
	}
	return e
}
