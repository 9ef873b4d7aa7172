package oidc

import (
	"net/http"
	"testing"

	"github.com/moreline/moreid/platform/apierr"
)

// TestOAuthKind pins how every auth error kind reads on the back channel.
func TestOAuthKind(t *testing.T) {
	cases := []struct {
		kind   apierr.Kind
		code   string
		status int
	}{
		{apierr.InvalidClient, "invalid_client", 401},
		{apierr.InvalidAPIKey, "invalid_client", 401},
		{apierr.IPNotAllowed, "invalid_client", 401},
		{apierr.InvalidGrant, "invalid_grant", 400},
		{apierr.InvalidCode, "invalid_grant", 400},
		{apierr.InvalidScope, "invalid_scope", 400},
		{apierr.UnauthorizedClient, "unauthorized_client", 400},
		{apierr.AuthorizationPending, "authorization_pending", 400},
		{apierr.SlowDown, "slow_down", 400},
		{apierr.ExpiredToken, "expired_token", 400},
		{apierr.AccessDenied, "access_denied", 400},
		{apierr.InvalidRequest, "invalid_request", 400},
		{apierr.RateLimited, "invalid_request", http.StatusTooManyRequests},
		{apierr.Unavailable, "temporarily_unavailable", 503},
		{apierr.Internal, "server_error", 500},
	}
	for _, c := range cases {
		if code, status := oauthKind(c.kind); code != c.code || status != c.status {
			t.Errorf("%s → %s %d, want %s %d", c.kind, code, status, c.code, c.status)
		}
		// Every code auth's kinds map to has its fixed ASCII description.
		if code, status := oauthKind(c.kind); oauthDescription(code, status) == "" {
			t.Errorf("%s: no error_description for %s", c.kind, code)
		} else {
			checkDescription(t, oauthDescription(code, status))
		}
	}
}
