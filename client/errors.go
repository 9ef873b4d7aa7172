package moreid

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
)

// Error is every failure a Moreid service answers (and every transport
// failure: an unreachable service is ErrUnavailable). Match it with
// errors.Is against the sentinels below, or take it apart with errors.As.
// It also carries its gRPC status, so status.Code and status.FromError keep
// working on it.
type Error struct {
	// Kind is the stable machine code ("invalid_state", ...), the same one
	// the REST gateway puts in its "error" field.
	Kind apierr.Kind
	// Message is the service's human text (Chinese, as the API document is);
	// for internal and transport failures it is the documented generic text.
	Message string
	// Method is the gRPC method that failed, e.g.
	// "/moreid.auth.v1.AuthService/Login"; empty on the sentinels.
	Method string
	// RetryAfter is how long to wait before retrying, when the service said
	// (rate_limited); zero otherwise.
	RetryAfter time.Duration
	// Status is the gRPC status as received.
	Status *status.Status
}

func (e *Error) Error() string {
	s := "moreid: "
	if e.Method != "" {
		s += e.Method + ": "
	}
	return s + string(e.Kind) + ": " + e.Message
}

// Is makes errors.Is(err, moreid.ErrInvalidState) true for any Error of that
// kind. A deadline or cancellation also matches the context package's
// errors, since that is how callers usually test for them.
func (e *Error) Is(target error) bool {
	switch target {
	case context.DeadlineExceeded:
		return e.Status != nil && e.Status.Code() == codes.DeadlineExceeded
	case context.Canceled:
		return e.Status != nil && e.Status.Code() == codes.Canceled
	}
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind
}

// GRPCStatus lets status.FromError and status.Code see the status.
func (e *Error) GRPCStatus() *status.Status { return e.Status }

// The errors callers most often need to tell apart. Each matches, with
// errors.Is, every Error of its kind.
var (
	// ErrInvalidAPIKey: the API key is missing, unknown or revoked.
	ErrInvalidAPIKey = sentinel(apierr.InvalidAPIKey)
	// ErrIPNotAllowed: the caller's IP is not in the key's whitelist.
	ErrIPNotAllowed = sentinel(apierr.IPNotAllowed)
	// ErrInvalidCredentials: wrong user_id or password (the two are not told
	// apart, by design).
	ErrInvalidCredentials = sentinel(apierr.InvalidCredentials)
	// ErrInvalidState: the state is unknown, expired, used, or another key's.
	ErrInvalidState = sentinel(apierr.InvalidState)
	// ErrInvalidCode: the authorization code, UCA or login code is unknown,
	// expired, used, or bound to another state or key.
	ErrInvalidCode = sentinel(apierr.InvalidCode)
	// ErrInvalidToken: the access token is unknown, expired or revoked.
	ErrInvalidToken = sentinel(apierr.InvalidToken)
	// ErrNotFound: no such user.
	ErrNotFound = sentinel(apierr.NotFound)
	// ErrRateLimited: too many attempts; see Error.RetryAfter.
	ErrRateLimited = sentinel(apierr.RateLimited)
	// ErrUnavailable: the service, or Redis or Postgres behind it, could not
	// be reached, or the call's deadline passed. Worth retrying later.
	ErrUnavailable = sentinel(apierr.Unavailable)
	// ErrAccountDisabled: the user is disabled (said only after a correct
	// password).
	ErrAccountDisabled = sentinel(apierr.AccountDisabled)
	// ErrPasswordLoginDisabled: this API key allows only the safe login.
	ErrPasswordLoginDisabled = sentinel(apierr.PasswordLoginDisabled)
	// ErrInvalidRequest: a field is missing, too long or malformed.
	ErrInvalidRequest = sentinel(apierr.InvalidRequest)
	// ErrInternal: the service failed unexpectedly.
	ErrInternal = sentinel(apierr.Internal)
)

func sentinel(k apierr.Kind) *Error {
	return &Error{Kind: k, Message: apierr.DefaultMessage(k), Status: apierr.ToStatus(apierr.New(k))}
}

// fromStatus reads a received status into an Error, through apierr so that
// the client and the gateway agree on every kind.
func fromStatus(method string, st *status.Status) *Error {
	d := apierr.FromStatus(st)
	e := &Error{Kind: d.Kind, Message: d.Message, Method: method, Status: st}
	if s, err := strconv.Atoi(d.RetryAfter); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}
