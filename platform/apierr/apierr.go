// Package apierr is Moreid's one error vocabulary. Domain code returns an
// *Error of a Kind; the gRPC interceptor in this package turns it into a gRPC
// status carrying a google.rpc.ErrorInfo whose reason is the Kind, and the
// gateway turns that status back into the documented HTTP status and JSON
// body. The table below is the only place those mappings live.
package apierr

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/proto/wire"
)

// Kind is the stable machine code that clients see in the "error" field.
type Kind string

// The documented error codes (SPEC section 2, "Errors"), named once in
// proto/wire so that the Go client, which may not import platform, reads the
// same reasons.
const (
	InvalidRequest        Kind = wire.ReasonInvalidRequest
	InvalidAPIKey         Kind = wire.ReasonInvalidAPIKey
	InvalidCredentials    Kind = wire.ReasonInvalidCredentials
	Unauthenticated       Kind = wire.ReasonUnauthenticated
	InvalidToken          Kind = wire.ReasonInvalidToken
	AccountDisabled       Kind = wire.ReasonAccountDisabled
	CSRFFailed            Kind = wire.ReasonCSRFFailed
	IPNotAllowed          Kind = wire.ReasonIPNotAllowed
	PasswordLoginDisabled Kind = wire.ReasonPasswordLoginDisabled
	Forbidden             Kind = wire.ReasonForbidden
	NotFound              Kind = wire.ReasonNotFound
	MethodNotAllowed      Kind = wire.ReasonMethodNotAllowed
	InvalidState          Kind = wire.ReasonInvalidState
	InvalidCode           Kind = wire.ReasonInvalidCode
	Conflict              Kind = wire.ReasonConflict
	RateLimited           Kind = wire.ReasonRateLimited
	Internal              Kind = wire.ReasonInternal
	Unavailable           Kind = wire.ReasonUnavailable
)

// The OAuth 2.0 / OpenID Connect codes of the OIDC endpoints (SPEC section 8).
const (
	InvalidClient        Kind = wire.ReasonInvalidClient
	InvalidGrant         Kind = wire.ReasonInvalidGrant
	InvalidScope         Kind = wire.ReasonInvalidScope
	UnauthorizedClient   Kind = wire.ReasonUnauthorizedClient
	AuthorizationPending Kind = wire.ReasonAuthorizationPending
	SlowDown             Kind = wire.ReasonSlowDown
	ExpiredToken         Kind = wire.ReasonExpiredToken
	AccessDenied         Kind = wire.ReasonAccessDenied
)

// Domain is the ErrorInfo domain of every Moreid error.
const Domain = wire.ErrorDomain

type spec struct {
	code    codes.Code
	http    int
	message string // default human text, Chinese as the API document is
}

var table = map[Kind]spec{
	InvalidRequest:        {codes.InvalidArgument, http.StatusBadRequest, "请求参数错误"},
	InvalidAPIKey:         {codes.Unauthenticated, http.StatusUnauthorized, "缺少API密钥或API密钥无效"},
	InvalidCredentials:    {codes.Unauthenticated, http.StatusUnauthorized, "用户ID或密码错误"},
	Unauthenticated:       {codes.Unauthenticated, http.StatusUnauthorized, "未登录或登录已过期"},
	InvalidToken:          {codes.Unauthenticated, http.StatusUnauthorized, "访问令牌无效或已过期"},
	AccountDisabled:       {codes.PermissionDenied, http.StatusForbidden, "账号已停用"},
	CSRFFailed:            {codes.PermissionDenied, http.StatusForbidden, "页面已过期，请刷新后重试"},
	IPNotAllowed:          {codes.PermissionDenied, http.StatusForbidden, "请求来源不匹配已注册的白名单IP"},
	PasswordLoginDisabled: {codes.PermissionDenied, http.StatusForbidden, "该API密钥不允许密码登录，请使用安全登录"},
	Forbidden:             {codes.PermissionDenied, http.StatusForbidden, "无权执行此操作"},
	NotFound:              {codes.NotFound, http.StatusNotFound, "请求的资源不存在"},
	MethodNotAllowed:      {codes.Unimplemented, http.StatusMethodNotAllowed, "请求方法不允许"},
	InvalidState:          {codes.FailedPrecondition, http.StatusRequestTimeout, "state值过期或无效"},
	InvalidCode:           {codes.Aborted, http.StatusConflict, "授权码无效或已过期"},
	Conflict:              {codes.AlreadyExists, http.StatusConflict, "资源已存在"},
	RateLimited:           {codes.ResourceExhausted, http.StatusTooManyRequests, "尝试次数过多，请稍后再试"},
	Internal:              {codes.Internal, http.StatusInternalServerError, "服务器内部错误"},
	Unavailable:           {codes.Unavailable, http.StatusServiceUnavailable, "服务暂时不可用，请稍后再试"},
	// RFC 6749 section 5.2: 401 for a failed client authentication, 400
	// for every other token endpoint error (RFC 8628 section 3.5 too).
	InvalidClient:        {codes.Unauthenticated, http.StatusUnauthorized, "客户端认证失败"},
	InvalidGrant:         {codes.InvalidArgument, http.StatusBadRequest, "授权许可无效、已过期或已被使用"},
	InvalidScope:         {codes.InvalidArgument, http.StatusBadRequest, "请求的权限范围无效"},
	UnauthorizedClient:   {codes.PermissionDenied, http.StatusBadRequest, "该客户端无权使用此授权方式"},
	AuthorizationPending: {codes.FailedPrecondition, http.StatusBadRequest, "用户尚未完成授权"},
	SlowDown:             {codes.ResourceExhausted, http.StatusBadRequest, "轮询过于频繁，请放慢"},
	ExpiredToken:         {codes.FailedPrecondition, http.StatusBadRequest, "设备码已过期"},
	AccessDenied:         {codes.PermissionDenied, http.StatusBadRequest, "用户拒绝了授权"},
}

// byCode is the fallback for statuses that carry no ErrorInfo (errors made by
// gRPC or grpc-gateway themselves, such as a malformed request body).
var byCode = map[codes.Code]Kind{
	codes.InvalidArgument:    InvalidRequest,
	codes.OutOfRange:         InvalidRequest,
	codes.Unauthenticated:    InvalidAPIKey,
	codes.PermissionDenied:   Forbidden,
	codes.NotFound:           NotFound,
	codes.AlreadyExists:      Conflict,
	codes.Aborted:            InvalidCode,
	codes.FailedPrecondition: InvalidRequest,
	codes.ResourceExhausted:  RateLimited,
	codes.Unavailable:        Unavailable,
	codes.DeadlineExceeded:   Unavailable,
	codes.Canceled:           Unavailable,
	codes.Unimplemented:      NotFound,
}

// Error is a domain error: a Kind, an optional human message that replaces
// the Kind's default, and an optional cause that is logged but never shown.
type Error struct {
	Kind    Kind
	Message string
	Err     error
	// RetryAfterSeconds, when positive, is sent as a Retry-After header.
	RetryAfterSeconds int
}

func (e *Error) Error() string {
	msg := string(e.Kind)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind k with the kind's default message.
func New(k Kind) *Error { return &Error{Kind: k} }

// Newf returns an error of kind k whose human message is the given text. The
// text reaches clients: never put a secret or an internal detail in it.
func Newf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of kind k caused by err. err is logged, never shown.
func Wrap(k Kind, err error) *Error { return &Error{Kind: k, Err: err} }

// KindOf returns the Kind of err: the Kind of an *Error in its chain, the
// Kind carried by a gRPC status, or Internal.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	if st, ok := status.FromError(err); ok {
		return kindOfStatus(st)
	}
	return Internal
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// HTTPStatus is the documented HTTP status of kind k.
func HTTPStatus(k Kind) int {
	if s, ok := table[k]; ok {
		return s.http
	}
	return http.StatusInternalServerError
}

// DefaultMessage is the human text of kind k.
func DefaultMessage(k Kind) string {
	if s, ok := table[k]; ok {
		return s.message
	}
	return table[Internal].message
}

// ToStatus converts any error to the gRPC status a client should see.
// Errors that are not an *Error nor already a status become Internal, with
// the default message: internals never leak.
func ToStatus(err error) *status.Status {
	var e *Error
	if !errors.As(err, &e) {
		if st, ok := status.FromError(err); ok {
			return st
		}
		switch {
		case errors.Is(err, context.Canceled):
			e = Wrap(Unavailable, err)
		case errors.Is(err, context.DeadlineExceeded):
			e = Wrap(Unavailable, err)
		default:
			e = Wrap(Internal, err)
		}
	}
	sp, ok := table[e.Kind]
	if !ok {
		sp = table[Internal]
	}
	msg := e.Message
	if msg == "" {
		msg = sp.message
	}
	st := status.New(sp.code, msg)
	info := &errdetails.ErrorInfo{Reason: string(e.Kind), Domain: Domain}
	if e.RetryAfterSeconds > 0 {
		info.Metadata = map[string]string{wire.RetryAfterMetadata: fmt.Sprint(e.RetryAfterSeconds)}
	}
	if withInfo, err := st.WithDetails(info); err == nil {
		return withInfo
	}
	return st
}

// Details is what a status says in the documented vocabulary.
type Details struct {
	Kind       Kind
	Message    string
	HTTPStatus int
	RetryAfter string
}

// FromStatus reads a status produced by ToStatus (or by gRPC itself) back
// into the documented vocabulary.
func FromStatus(st *status.Status) Details {
	k := kindOfStatus(st)
	d := Details{Kind: k, Message: st.Message(), HTTPStatus: HTTPStatus(k)}
	if info := errorInfo(st); info != nil {
		d.RetryAfter = info.GetMetadata()[wire.RetryAfterMetadata]
	} else {
		// A status without our ErrorInfo was made outside our services
		// (transport, decoding): its text may be English or technical, so the
		// client gets the kind's documented message instead.
		d.Message = DefaultMessage(k)
	}
	if k == Internal || k == Unavailable {
		d.Message = DefaultMessage(k)
	}
	return d
}

func errorInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == Domain {
			return info
		}
	}
	return nil
}

func kindOfStatus(st *status.Status) Kind {
	if info := errorInfo(st); info != nil {
		if _, known := table[Kind(info.GetReason())]; known {
			return Kind(info.GetReason())
		}
	}
	if k, ok := byCode[st.Code()]; ok {
		return k
	}
	return Internal
}

// Reason is the Kind a Moreid service put in st, and whether st was made by
// one (it carries Moreid's ErrorInfo). A status without it was made by gRPC
// or grpc-gateway (the service was not reached or not understood).
func Reason(st *status.Status) (Kind, bool) {
	if st == nil {
		return "", false
	}
	if info := errorInfo(st); info != nil {
		return Kind(info.GetReason()), true
	}
	return "", false
}

// FromTransport is the error of a call to another Moreid service, as its
// caller returns it: a Moreid status passes through unchanged (its message
// and retry hint reach the client, and its origin has logged it), anything
// else (connection refused, deadline, a foreign status) becomes Unavailable
// or Internal here, with err as the logged cause.
func FromTransport(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return Wrap(Internal, err)
	}
	if _, moreid := Reason(st); moreid {
		return err
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return Wrap(Unavailable, err)
	default:
		return Wrap(Internal, err)
	}
}

// IsFault reports whether err is a fault of Moreid (Internal, Unavailable)
// rather than a refusal of the caller's request.
func IsFault(err error) bool {
	k := KindOf(err)
	return k == Internal || k == Unavailable
}

// OriginatedHere reports whether err is a fault of the component that holds
// it, not one a downstream Moreid service already answered (and logged):
// an *Error, or any error that is not a Moreid status. It decides which one
// component logs a fault at ERROR, so one failure is one ERROR line across
// the suite.
func OriginatedHere(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return true
	}
	if st, ok := status.FromError(err); ok {
		_, moreid := Reason(st)
		return !moreid
	}
	return true
}

// byHTTP is the Kind of the answers grpc-gateway makes itself from an HTTP
// status alone (routing errors, unparsable requests).
var byHTTP = map[int]Kind{
	http.StatusBadRequest:       InvalidRequest,
	http.StatusNotFound:         NotFound,
	http.StatusMethodNotAllowed: MethodNotAllowed,
}

// KindOfHTTP is the Kind of an answer known only by its HTTP status;
// Internal for a status Moreid does not answer that way.
func KindOfHTTP(httpStatus int) Kind {
	if k, ok := byHTTP[httpStatus]; ok {
		return k
	}
	return Internal
}
