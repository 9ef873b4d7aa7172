package oidc

import (
	"encoding/json"
	"net/http"

	"github.com/moreline/moreid/platform/apierr"
)

// oauthError is the JSON error of the back-channel endpoints (RFC 6749
// section 5.2).
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if h.Get("Cache-Control") == "" {
		// Token answers must not be cached (RFC 6749 section 5.1); nor
		// anything else of the back channel.
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeOAuthError(w http.ResponseWriter, code int, errCode, desc string) {
	writeJSON(w, code, oauthError{Error: errCode, Description: desc})
}

// oauthKind is how an apierr kind from auth reads on the back channel: the
// OAuth error code and the HTTP status.
func oauthKind(k apierr.Kind) (string, int) {
	switch k {
	case apierr.InvalidClient, apierr.InvalidAPIKey, apierr.IPNotAllowed:
		// A whitelist refusal is a failed client authentication too.
		return "invalid_client", http.StatusUnauthorized
	case apierr.InvalidGrant, apierr.InvalidCode, apierr.InvalidState, apierr.InvalidToken:
		return "invalid_grant", http.StatusBadRequest
	case apierr.InvalidScope:
		return "invalid_scope", http.StatusBadRequest
	case apierr.UnauthorizedClient, apierr.PasswordLoginDisabled, apierr.Forbidden:
		return "unauthorized_client", http.StatusBadRequest
	case apierr.AuthorizationPending:
		return "authorization_pending", http.StatusBadRequest
	case apierr.SlowDown:
		return "slow_down", http.StatusBadRequest
	case apierr.ExpiredToken:
		return "expired_token", http.StatusBadRequest
	case apierr.AccessDenied:
		return "access_denied", http.StatusBadRequest
	case apierr.InvalidRequest, apierr.NotFound:
		return "invalid_request", http.StatusBadRequest
	case apierr.RateLimited:
		return "invalid_request", http.StatusTooManyRequests
	case apierr.Unavailable:
		return "temporarily_unavailable", http.StatusServiceUnavailable
	}
	return "server_error", http.StatusInternalServerError
}

// oauthDescriptions is the error_description of each OAuth error code the
// edge passes on from auth. It must be printable ASCII (RFC 6749 sections
// 4.1.2.1 and 5.2), so auth's messages, written for people in Chinese, are
// never sent on the OAuth channel; the pages keep them.
var oauthDescriptions = map[string]string{
	"invalid_request":         "the request is missing a parameter or is malformed",
	"invalid_client":          "client authentication failed",
	"invalid_grant":           "the grant is invalid, expired, revoked or was issued to another client",
	"invalid_scope":           "the requested scope is invalid or not allowed",
	"unauthorized_client":     "the client is not allowed to use this grant",
	"unsupported_grant_type":  "unsupported grant_type",
	"authorization_pending":   "the user has not completed the authorization yet",
	"slow_down":               "polling too often, slow down",
	"expired_token":           "the device code has expired",
	"access_denied":           "the request was denied",
	"invalid_token":           "the access token is not active",
	"login_required":          "the user must sign in",
	"consent_required":        "the user must consent",
	"interaction_required":    "the user must interact with the authorization server",
	"temporarily_unavailable": "the service is temporarily unavailable, retry later",
	"server_error":            "the server could not complete the request",
}

// oauthDescription is the fixed error_description of an error code sent
// with status (0 on a redirect); empty for a code without one.
func oauthDescription(code string, status int) string {
	if status == http.StatusTooManyRequests {
		return "too many requests, retry later"
	}
	return oauthDescriptions[code]
}

// descValue is a value from the request as it may appear inside an
// error_description: a short name of letters, digits and "_-.:", else a
// placeholder, so that nothing the client sent can make it non-ASCII or
// break out of the WWW-Authenticate quoting (RFC 6749 section 5.2).
func descValue(s string) string {
	if s == "" || len(s) > 40 {
		return "(value not shown)"
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return "(value not shown)"
		}
	}
	return s
}
