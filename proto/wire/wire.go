// Package wire is Moreid's wire contract beside the generated code: the gRPC
// metadata keys, the error reasons, the web session cookie and the CSRF
// derivation that the gateway, the auth service, the Go client and the tests
// must agree on. It
// lives in the proto module (hand-written, outside gen/, which is
// regenerated) because the Go client may depend on proto alone.
package wire

import (
	"crypto/sha256"
	"encoding/hex"
)

// gRPC metadata keys (lower case, as gRPC carries them).
const (
	// APIKey carries the calling app's API key.
	APIKey = "x-api-key"
	// ClientIP carries the client address the gateway computed (SPEC
	// section 5). AuthService believes it only from gateway peers.
	ClientIP = "x-moreid-client-ip"
	// Session carries the web session secret, read by the gateway from
	// SessionCookie.
	Session = "x-moreid-session"
	// CSRF carries the session's CSRF token (the X-CSRF-Token header).
	CSRF = "x-csrf-token"
	// Authorization carries "Bearer <access token>".
	Authorization = "authorization"
	// OIDCClientID carries the OAuth client_id of a public client's
	// back-channel call, which has no secret to send in APIKey.
	OIDCClientID = "x-oidc-client-id"
)

// A failure of a Moreid service is a gRPC status carrying a
// google.rpc.ErrorInfo whose Domain is ErrorDomain and whose Reason is one of
// the documented error codes below (the REST body's "error" field, SPEC
// section 2). platform/apierr encodes them and the Go client decodes them;
// the mapping to gRPC codes and HTTP statuses is apierr's alone.
const (
	ErrorDomain = "moreid"
	// RetryAfterMetadata is the ErrorInfo metadata key of a rate_limited
	// answer's wait, in whole seconds (the REST Retry-After header).
	RetryAfterMetadata = "retry_after"
)

// The documented error codes, as ErrorInfo reasons.
const (
	ReasonInvalidRequest        = "invalid_request"
	ReasonInvalidAPIKey         = "invalid_api_key"
	ReasonInvalidCredentials    = "invalid_credentials"
	ReasonUnauthenticated       = "unauthenticated"
	ReasonInvalidToken          = "invalid_token"
	ReasonAccountDisabled       = "account_disabled"
	ReasonCSRFFailed            = "csrf_failed"
	ReasonIPNotAllowed          = "ip_not_allowed"
	ReasonPasswordLoginDisabled = "password_login_disabled"
	ReasonForbidden             = "forbidden"
	ReasonNotFound              = "not_found"
	ReasonMethodNotAllowed      = "method_not_allowed"
	ReasonInvalidState          = "invalid_state"
	ReasonInvalidCode           = "invalid_code"
	ReasonConflict              = "conflict"
	ReasonRateLimited           = "rate_limited"
	ReasonInternal              = "internal"
	ReasonUnavailable           = "unavailable"
)

// The OAuth 2.0 and OpenID Connect error codes of the OIDC endpoints (RFC
// 6749 section 5.2, RFC 8628 section 3.5, OpenID Connect Core 3.1.2.6), as
// ErrorInfo reasons; the gateway answers them in the RFCs' JSON form.
const (
	ReasonInvalidClient        = "invalid_client"
	ReasonInvalidGrant         = "invalid_grant"
	ReasonInvalidScope         = "invalid_scope"
	ReasonUnauthorizedClient   = "unauthorized_client"
	ReasonAuthorizationPending = "authorization_pending"
	ReasonSlowDown             = "slow_down"
	ReasonExpiredToken         = "expired_token"
	ReasonAccessDenied         = "access_denied"
)

// SessionCookie is the name of the web session cookie (ARCHITECTURE "Web
// sessions").
const SessionCookie = "moreid_session"

// CSRFToken is the CSRF token of a web session: derived from the session
// secret, so it needs no storage and only the session's holder can know it.
// Auth issues and checks it; the gateway's and the suite's tests use this
// function rather than a copy, so a change here cannot leave a fake behind.
func CSRFToken(session string) string {
	sum := sha256.Sum256([]byte("moreid-csrf:" + session))
	return hex.EncodeToString(sum[:])[:32]
}
