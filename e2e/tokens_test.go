package e2e

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moreline/moreid/e2e/harness"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/secret"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
)

const bobPassword = "staple-battery-horse-2"

// tokenSuite is a running suite with two users, two keys, and auth's
// TokenService as an internal service reaches it (with the key of the app
// whose tokens it asks about).
type tokenSuite struct {
	*harness.Suite
	app, other *apiClient
	bearer     *apiClient // no API key: GET /api/oauth/userinfo needs none
	tokens     authv1.TokenServiceClient
}

func startTokenSuite(t *testing.T, opts harness.Options) *tokenSuite {
	t.Helper()
	s := harness.Start(t, opts)
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	s.CreateUser(t, "bob", "Bob", "bob@example.com", bobPassword)
	conn, err := grpcx.Dial(s.Env["MOREID_AUTH_ADDR"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &tokenSuite{
		Suite:  s,
		app:    newClient(s.BaseURL, s.CreateKey(t, "Token app")),
		other:  newClient(s.BaseURL, s.CreateKey(t, "Other app")),
		bearer: newClient(s.BaseURL, ""),
		tokens: authv1.NewTokenServiceClient(conn),
	}
}

// issue runs the password flow and returns the token answer.
func (c *apiClient) issue(t testing.TB, userID, password string) answer {
	t.Helper()
	state, code := c.login(t, userID, password)
	a := c.do(t, "POST", "/api/oauth/token", map[string]string{"code": code, "state": state})
	if a.Status != 200 || a.str("access_token") == "" {
		t.Fatalf("token: %d %s", a.Status, a.Raw)
	}
	return a
}

func (c *apiClient) token(t testing.TB, userID, password string) string {
	t.Helper()
	return c.issue(t, userID, password).str("access_token")
}

// introspect asks about a token of s.app.
func (s *tokenSuite) introspect(t testing.TB, token string) *authv1.IntrospectTokenResponse {
	t.Helper()
	return s.introspectAs(t, s.app, token)
}

// introspectAs asks with the key of c, the app the token was issued to.
func (s *tokenSuite) introspectAs(t testing.TB, c *apiClient, token string) *authv1.IntrospectTokenResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := s.tokens.IntrospectToken(c.grpcContext(ctx), &authv1.IntrospectTokenRequest{Token: token})
	if err != nil {
		t.Fatalf("IntrospectToken: %v", err)
	}
	return res
}

func (s *tokenSuite) userinfo(t testing.TB, token string) answer {
	t.Helper()
	return s.bearer.do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", "Bearer "+token)
}

// expectBearerRefused asserts the 401 of a missing or bad Bearer token,
// with the challenge RFC 6750 asks for.
func expectBearerRefused(t testing.TB, a answer) {
	t.Helper()
	expectError(t, a, 401, "invalid_token")
	if h := a.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
		t.Errorf("WWW-Authenticate %q, want a Bearer challenge", h)
	}
}

// expectProfile asserts userinfo's documented user object for alice.
func expectProfile(t testing.TB, a answer) map[string]any {
	t.Helper()
	if a.Status != 200 || a.Body["success"] != true || a.Body["message"] != "获取用户信息成功" {
		t.Fatalf("want 200 success 获取用户信息成功, got %d %s", a.Status, a.Raw)
	}
	user, _ := a.Body["user"].(map[string]any)
	if id, ok := user["id"].(float64); !ok || id < 1 {
		t.Errorf("user.id = %#v, want a JSON number", user["id"])
	}
	for field, want := range map[string]string{"username": "Alice", "user_id": "alice", "email": "alice@example.com"} {
		if user[field] != want {
			t.Errorf("user.%s = %v, want %q", field, user[field], want)
		}
	}
	if _, ok := user["bio"].(string); !ok {
		t.Errorf("user.bio = %#v, want a string (empty when unset)", user["bio"])
	}
	if u, _ := user["avatar_url"].(string); !strings.HasPrefix(u, "https://") {
		t.Errorf("user.avatar_url = %q, want an absolute URL", u)
	}
	return user
}

// TestBearerTokens covers SPEC section 6's token surfaces: userinfo and
// token/user over REST, IntrospectToken and RevokeToken over gRPC.
func TestBearerTokens(t *testing.T) {
	s := startTokenSuite(t, harness.Options{})
	issued := time.Now()
	tok := s.app.token(t, "alice", alicePassword)

	var profile map[string]any
	t.Run("userinfo with a Bearer token", func(t *testing.T) {
		profile = expectProfile(t, s.userinfo(t, tok))
	})
	t.Run("userinfo refuses a missing or bad token", func(t *testing.T) {
		for name, headers := range map[string][]string{
			"no Authorization":   nil,
			"unknown token":      {"Authorization", "Bearer token_" + strings.Repeat("x", 56)},
			"malformed token":    {"Authorization", "Bearer nonsense"},
			"not a Bearer token": {"Authorization", "Basic " + tok},
		} {
			t.Run(name, func(t *testing.T) {
				expectBearerRefused(t, s.bearer.do(t, "GET", "/api/oauth/userinfo", nil, headers...))
			})
		}
	})
	t.Run("token/user answers the same data for the key's own token", func(t *testing.T) {
		user := expectProfile(t, s.app.do(t, "GET", "/api/oauth/token/user", nil, "Authorization", "Bearer "+tok))
		if profile != nil && !reflect.DeepEqual(user, profile) {
			t.Errorf("token/user %v, userinfo %v", user, profile)
		}
	})
	t.Run("token/user refuses another key's token", func(t *testing.T) {
		expectBearerRefused(t, s.other.do(t, "GET", "/api/oauth/token/user", nil, "Authorization", "Bearer "+tok))
	})
	t.Run("introspection of an active token", func(t *testing.T) {
		res := s.introspect(t, tok)
		if !res.GetActive() {
			t.Fatalf("IntrospectToken = %v, want active", res)
		}
		if u := res.GetUser(); u.GetUserId() != "alice" || u.GetUsername() != "Alice" || u.GetEmail() != "alice@example.com" || u.GetId() < 1 {
			t.Errorf("user %v", u)
		}
		if id := keyID(t, s.Suite, "Token app"); res.GetApiKeyName() != "Token app" || jsonNumber(float64(res.GetApiKeyId())) != id {
			t.Errorf("api key %d %q, want %s \"Token app\"", res.GetApiKeyId(), res.GetApiKeyName(), id)
		}
		iat, exp := res.GetIssuedAt().AsTime(), res.GetExpiresAt().AsTime()
		if d := iat.Sub(issued); d < -2*time.Second || d > 10*time.Second {
			t.Errorf("issued_at %s, the token was issued at about %s", iat, issued)
		}
		if life := exp.Sub(iat); life < 3590*time.Second || life > 3601*time.Second {
			t.Errorf("expires_at - issued_at = %s, want about 3600 s", life)
		}
	})
	t.Run("an unknown token is inactive", func(t *testing.T) {
		for _, unknown := range []string{"token_" + strings.Repeat("x", 56), "", "nonsense"} {
			if res := s.introspect(t, unknown); res.GetActive() || res.GetUser() != nil || res.GetApiKeyId() != 0 {
				t.Errorf("IntrospectToken(%q) = %v, want inactive and nothing else", unknown, res)
			}
		}
	})
	t.Run("a revoked token is inactive and refused", func(t *testing.T) {
		doomed := s.app.token(t, "alice", alicePassword)
		if !s.introspect(t, doomed).GetActive() {
			t.Fatal("fresh token inactive")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = s.app.grpcContext(ctx)
		if _, err := s.tokens.RevokeToken(ctx, &authv1.RevokeTokenRequest{Token: doomed}); err != nil {
			t.Fatalf("RevokeToken: %v", err)
		}
		if s.introspect(t, doomed).GetActive() {
			t.Error("revoked token still active")
		}
		expectBearerRefused(t, s.userinfo(t, doomed))
		// Revoking again, or an unknown token, succeeds (RFC 7009).
		if _, err := s.tokens.RevokeToken(ctx, &authv1.RevokeTokenRequest{Token: doomed}); err != nil {
			t.Errorf("RevokeToken again: %v", err)
		}
		// The other token of the same user is untouched.
		if !s.introspect(t, tok).GetActive() {
			t.Error("revoking one token ended another")
		}
	})
}

// TestDisabledUser disables and re-enables a user with moreidctl and
// watches both sign-in flows and her token.
func TestDisabledUser(t *testing.T) {
	s := startTokenSuite(t, harness.Options{})
	tok := s.app.token(t, "alice", alicePassword)
	bobTok := s.app.token(t, "bob", bobPassword)

	s.MustCtl(t, "", "user", "disable", "alice")
	t.Run("her token stops working at once", func(t *testing.T) {
		expectBearerRefused(t, s.userinfo(t, tok))
		if res := s.introspect(t, tok); res.GetActive() {
			t.Errorf("IntrospectToken = %v, want inactive", res)
		}
		expectBearerRefused(t, s.app.do(t, "GET", "/api/oauth/token/user", nil, "Authorization", "Bearer "+tok))
	})
	t.Run("password login is refused", func(t *testing.T) {
		expectError(t, s.app.do(t, "POST", "/api/oauth/login", map[string]string{
			"user_id": "alice", "password": alicePassword, "state": s.app.authorize(t)}), 403, "account_disabled")
	})
	t.Run("a wrong password does not reveal that she is disabled", func(t *testing.T) {
		expectError(t, s.app.do(t, "POST", "/api/oauth/login", map[string]string{
			"user_id": "alice", "password": "wrong-password", "state": s.app.authorize(t)}), 401, "invalid_credentials")
	})
	t.Run("page sign-in is refused", func(t *testing.T) {
		_, uca := s.app.startSafeLogin(t)
		p := newPageClient(t, s.BaseURL).signIn(t, uca, "alice", alicePassword)
		if p.Status != 403 || p.byID("confirm") != nil || p.byID("login") == nil {
			t.Fatalf("sign-in of a disabled user: status %d, want 403 and the sign-in form again:\n%s", p.Status, p.Body)
		}
	})
	t.Run("other users are not affected", func(t *testing.T) {
		if a := s.userinfo(t, bobTok); a.Status != 200 {
			t.Errorf("bob's token: %d %s", a.Status, a.Raw)
		}
		s.app.token(t, "bob", bobPassword)
	})

	s.MustCtl(t, "", "user", "enable", "alice")
	t.Run("after enable she signs in again by both flows", func(t *testing.T) {
		fresh := s.app.token(t, "alice", alicePassword)
		expectProfile(t, s.userinfo(t, fresh))
		state, loginCode := s.app.safeLoginCode(t, "alice", alicePassword)
		expectSuccess(t, s.app.do(t, "POST", "/api/oauth/login_safe", map[string]string{"state": state, "login_code": loginCode}), "登录成功，授权码已生成")
	})
}

// TestRevokeUserTokens ends every token of one user and none of another's.
func TestRevokeUserTokens(t *testing.T) {
	s := startTokenSuite(t, harness.Options{})
	hers := map[string]*apiClient{s.app.token(t, "alice", alicePassword): s.app, s.other.token(t, "alice", alicePassword): s.other}
	his := s.app.token(t, "bob", bobPassword)

	s.MustCtl(t, "", "user", "revoke-tokens", "alice")
	for tok, app := range hers {
		if res := s.introspectAs(t, app, tok); res.GetActive() {
			t.Errorf("alice's token still active (introspected with the key it was issued to)")
		}
		expectBearerRefused(t, s.userinfo(t, tok))
	}
	if res := s.introspect(t, his); !res.GetActive() || res.GetUser().GetUserId() != "bob" {
		t.Errorf("bob's token: %v, want active", res)
	}
	// She can still sign in and get a new token.
	expectProfile(t, s.userinfo(t, s.app.token(t, "alice", alicePassword)))
}

// TestAccessTokenLifetime sets MOREID_ACCESS_TOKEN_TTL and expects every
// surface to report the real lifetime.
func TestAccessTokenLifetime(t *testing.T) {
	s := startTokenSuite(t, harness.Options{Env: map[string]string{"MOREID_ACCESS_TOKEN_TTL": "7200"}})
	a := s.app.issue(t, "alice", alicePassword)
	if a.Body["expires_in"] != float64(7200) {
		t.Errorf("expires_in = %#v, want the JSON number 7200; body %s", a.Body["expires_in"], a.Raw)
	}
	res := s.introspect(t, a.str("access_token"))
	if life := res.GetExpiresAt().AsTime().Sub(res.GetIssuedAt().AsTime()); life < 7190*time.Second || life > 7201*time.Second {
		t.Errorf("expires_at - issued_at = %s, want about 7200 s", life)
	}
	if ttl, err := s.Redis.TTL(context.Background(), s.RedisPrefix+"token:"+secret.Hash(a.str("access_token"))).Result(); err != nil || ttl < 7190*time.Second || ttl > 7200*time.Second {
		t.Errorf("the token record's Redis TTL is %s (%v), want about 7200 s", ttl, err)
	}
}
