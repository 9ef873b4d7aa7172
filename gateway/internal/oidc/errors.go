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
