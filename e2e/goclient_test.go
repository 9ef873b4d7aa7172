package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	moreid "github.com/moreline/moreid/client"
	"github.com/moreline/moreid/e2e/harness"
)

// TestGoClient uses the Go client (module client) as an internal service
// would, against the real suite.
func TestGoClient(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	key := s.CreateKey(t, "Go service")
	addr := s.Env["MOREID_AUTH_ADDR"]
	dial := func(t *testing.T, key string) *moreid.Client {
		t.Helper()
		c, err := moreid.Dial(addr, key)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dial(t, key)
	rest := newClient(s.BaseURL, "")

	t.Run("password login, introspection, revocation", func(t *testing.T) {
		tok, err := c.PasswordLogin(ctx, "alice", alicePassword)
		if err != nil {
			t.Fatalf("PasswordLogin: %v", err)
		}
		if !strings.HasPrefix(tok.AccessToken, "token_") || tok.TokenType != "Bearer" || tok.ExpiresIn != time.Hour {
			t.Errorf("token type %q, expires in %s", tok.TokenType, tok.ExpiresIn)
		}
		if u := tok.User; u.GetUserId() != "alice" || u.GetUsername() != "Alice" || u.GetEmail() != "alice@example.com" || u.GetId() < 1 {
			t.Errorf("user %v", u)
		}
		if strings.Contains(tok.String(), tok.AccessToken) {
			t.Errorf("Token.String() shows the secret")
		}

		info, err := c.Introspect(ctx, tok.AccessToken)
		if err != nil || !info.GetActive() || info.GetUser().GetUserId() != "alice" || info.GetApiKeyName() != "Go service" {
			t.Fatalf("Introspect = %v, %v; want alice's active token of \"Go service\"", info, err)
		}
		// The token works on the REST surface as well.
		if a := rest.do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", "Bearer "+tok.AccessToken); a.Status != 200 {
			t.Fatalf("userinfo with the client's token: %d %s", a.Status, a.Raw)
		}

		if err := c.RevokeToken(ctx, tok.AccessToken); err != nil {
			t.Fatalf("RevokeToken: %v", err)
		}
		info, err = c.Introspect(ctx, tok.AccessToken)
		if err != nil || info.GetActive() {
			t.Fatalf("Introspect after RevokeToken = %v, %v; want inactive", info, err)
		}
		expectBearerRefused(t, rest.do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", "Bearer "+tok.AccessToken))
	})

	for _, tc := range []struct {
		name, key, userID, password string
		want                        error
	}{
		{"wrong password", key, "alice", "wrong-password-9", moreid.ErrInvalidCredentials},
		{"unknown user", key, "nobody", alicePassword, moreid.ErrInvalidCredentials},
		{"unknown API key", unknownKey, "alice", alicePassword, moreid.ErrInvalidAPIKey},
		{"malformed API key", "ml_short", "alice", alicePassword, moreid.ErrInvalidAPIKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := dial(t, tc.key).PasswordLogin(ctx, tc.userID, tc.password)
			if tok != nil || !errors.Is(err, tc.want) {
				t.Fatalf("PasswordLogin = %v, %v; want %v", tok, err, tc.want)
			}
			for _, other := range []error{moreid.ErrInvalidCredentials, moreid.ErrInvalidAPIKey, moreid.ErrUnavailable} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("%v also matches %v", err, other)
				}
			}
			if strings.Contains(err.Error(), tc.password) || strings.Contains(err.Error(), tc.key) {
				t.Errorf("the error repeats a secret: %v", err)
			}
		})
	}
}
