package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/e2e/harness"
	"github.com/moreline/moreid/platform/grpcx"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

// A redeemed code replayed by another app, 64 times at once, is as if it
// did not exist: the owner's token keeps working. The owner's own replay
// revokes it (RFC 6749 4.1.2).
func TestCodeReplayByAnotherKey(t *testing.T) {
	f := startFlowSuite(t)
	state, code := f.app.login(t, "alice", alicePassword)
	tok := f.app.do(t, "POST", "/api/oauth/token", map[string]string{"code": code, "state": state})
	expectSuccess(t, tok, "获取访问令牌成功")
	bearer := "Bearer " + tok.str("access_token")

	const n = 64
	results := atOnce(n, func(int) answer {
		return f.other.do(t, "POST", "/api/oauth/token", map[string]string{"code": code, "state": state})
	})
	for _, a := range results {
		expectError(t, a, 409, "invalid_code")
	}
	if a := f.app.do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", bearer); a.Status != 200 {
		t.Fatalf("the owner's token after another key's replays: %d %s", a.Status, a.Raw)
	}

	expectError(t, f.app.do(t, "POST", "/api/oauth/token", map[string]string{"code": code, "state": state}), 409, "invalid_code")
	expectError(t, f.app.do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", bearer), 401, "invalid_token")
}

// Revoking a key with moreidctl ends its access tokens on every Bearer
// surface, through the gateway and on TokenService, within a second (the
// key cache's 500 ms), and leaves another key's tokens alone.
func TestRevokedKeyEndsItsTokens(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	app := newClient(s.BaseURL, s.CreateKey(t, "Revoked app"))
	other := newClient(s.BaseURL, s.CreateKey(t, "Other app"))
	token := func(c *apiClient) string {
		state, code := c.login(t, "alice", alicePassword)
		a := c.do(t, "POST", "/api/oauth/token", map[string]string{"code": code, "state": state})
		expectSuccess(t, a, "获取访问令牌成功")
		return a.str("access_token")
	}
	tok, otherTok := token(app), token(other)
	updateState := app.authorize(t)

	conn, err := grpcx.Dial(s.Env["MOREID_AUTH_ADDR"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	tokens := authv1.NewTokenServiceClient(conn)
	active := func(tok string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, wire.APIKey, app.key)
		r, err := tokens.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: tok})
		if status.Code(err) == codes.Unauthenticated {
			// Introspection answers only its caller's key: a revoked key
			// is refused itself, and its token is not active either.
			return false
		}
		if err != nil {
			t.Fatalf("IntrospectToken: %v", err)
		}
		return r.GetActive()
	}
	// surfaces are the Bearer calls, each with what a revoked key's token
	// gets: the ones that need the key too refuse the key.
	surfaces := []struct {
		name   string
		call   func(c *apiClient, tok string) answer
		status int
		kinds  []string
	}{
		{"userinfo", func(c *apiClient, tok string) answer {
			return c.do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", "Bearer "+tok)
		}, 401, []string{"invalid_token"}},
		{"token/user", func(c *apiClient, tok string) answer {
			return c.do(t, "GET", "/api/oauth/token/user", nil, "Authorization", "Bearer "+tok)
		}, 401, []string{"invalid_token", "invalid_api_key"}},
		// Not called before the revocation: it would use up the state.
		{"user/update with Bearer", func(c *apiClient, tok string) answer {
			return c.do(t, "POST", "/api/oauth/user/update", map[string]string{"user_id": "alice", "state": updateState, "bio": "x"}, "Authorization", "Bearer "+tok)
		}, 401, []string{"invalid_token", "invalid_api_key"}},
	}
	for _, sf := range surfaces[:2] {
		if a := sf.call(app, tok); a.Status != 200 {
			t.Fatalf("%s before the revocation: %d %s", sf.name, a.Status, a.Raw)
		}
	}
	if !active(tok) {
		t.Fatal("token inactive before the revocation")
	}

	s.MustCtl(t, "", "apikey", "revoke", keyID(t, s, "Revoked app"))
	revoked := time.Now()
	refused := func() bool {
		if active(tok) {
			return false
		}
		for _, sf := range surfaces {
			a := sf.call(app, tok)
			if a.Status != sf.status || !slices.Contains(sf.kinds, a.str("error")) {
				return false
			}
		}
		return true
	}
	for !refused() {
		// The bound is the key cache's 500 ms; the margin is for a
		// loaded machine, and the time taken is reported.
		if time.Since(revoked) > 3*time.Second {
			for _, sf := range surfaces {
				a := sf.call(app, tok)
				t.Logf("%s: %d %s", sf.name, a.Status, a.Raw)
			}
			t.Fatal("a revoked key's token still works 3 s after the revocation")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("a revoked key's token refused on every surface %v after moreidctl returned", time.Since(revoked).Round(time.Millisecond))

	if a := other.do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", "Bearer "+otherTok); a.Status != 200 {
		t.Fatalf("another key's token after the revocation: %d %s", a.Status, a.Raw)
	}
	if a := other.do(t, "GET", "/api/oauth/token/user", nil, "Authorization", "Bearer "+otherTok); a.Status != 200 {
		t.Fatalf("another key's token/user after the revocation: %d %s", a.Status, a.Raw)
	}
}

// login_safe while Postgres is down answers 503 and consumes nothing: once
// Postgres is back, the same state and login code sign in.
func TestLoginSafeDuringPostgresOutage(t *testing.T) {
	pg := harness.StartPostgres(t)
	// No profile cache: the user lookup must reach Postgres, not a profile
	// cached before the outage.
	s := harness.Start(t, harness.Options{PostgresServer: pg.URL, Env: map[string]string{"MOREID_USER_CACHE_SIZE": "0"}})
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	app := newClient(s.BaseURL, s.CreateKey(t, "Safe app"))
	state, loginCode := app.safeLoginCode(t, "alice", alicePassword)
	// The key was validated just now; auth serves that answer while the
	// key service cannot reach Postgres.
	app.authorize(t)

	pg.Kill(t)
	a := app.do(t, "POST", "/api/oauth/login_safe", map[string]string{"state": state, "login_code": loginCode})
	expectError(t, a, 503, "unavailable")
	pg.Restart(t)

	// Waiting for the user service's pool to reconnect is no assertion:
	// the bound is generous.
	var got answer
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got = app.do(t, "POST", "/api/oauth/login_safe", map[string]string{"state": state, "login_code": loginCode})
		if got.Status != 503 || time.Now().After(deadline) {
			break
		}
	}
	expectSuccess(t, got, "登录成功，授权码已生成")
	tok := app.do(t, "POST", "/api/oauth/token", map[string]string{"code": got.str("code"), "state": state})
	expectSuccess(t, tok, "获取访问令牌成功")
}
