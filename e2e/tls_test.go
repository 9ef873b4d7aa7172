package e2e

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	moreid "github.com/moreline/moreid/client"
	"github.com/moreline/moreid/e2e/harness"
	"github.com/moreline/moreid/platform/grpcx/tlstest"
)

// TestTLSSuite runs the suite (in the shape of the run) with mutual TLS on every
// gRPC link (MOREID_TLS_*, MOREID_ADMIN_CLIENT_CA): moreidctl with an
// operator certificate works, the password flow works through the gateway
// and through the Go client, and every admin listener refuses a caller
// without a certificate, with a component's, or with a stranger's.
func TestTLSSuite(t *testing.T) {
	pki := tlstest.New(t)
	env := pki.ServerEnv()
	maps.Copy(env, pki.CtlEnv()) // what moreidctl run with the suite's environment uses
	s := harness.Start(t, harness.Options{Env: env})

	// moreidctl with the operator's certificate.
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	key := s.CreateKey(t, "TLS app")
	otherKey := s.CreateKey(t, "Another app")
	if out := s.MustCtl(t, "", "apikey", "list"); !strings.Contains(out, "TLS app") {
		t.Fatalf("apikey list: %s", out)
	}
	s.MustCtl(t, "", "audit", "list", "--since", "1h")

	t.Run("password flow through the gateway", func(t *testing.T) {
		app := newClient(s.BaseURL, key)
		auth := app.do(t, "GET", "/api/oauth/authorize", nil)
		expectSuccess(t, auth, "授权初始化成功")
		login := app.do(t, "POST", "/api/oauth/login", map[string]string{"user_id": "alice", "password": alicePassword, "state": auth.str("state")})
		expectSuccess(t, login, "登录成功")
		tok := app.do(t, "POST", "/api/oauth/token", map[string]string{"code": login.str("code"), "state": auth.str("state")})
		expectSuccess(t, tok, "获取访问令牌成功")
		info := app.do(t, "POST", "/api/oauth/user/info", map[string]string{"user_id": "alice"})
		expectSuccess(t, info, "获取用户信息成功")
	})

	t.Run("the Go client with a component certificate", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tlsOpt := moreid.WithTLSFiles(pki.Component.Cert, pki.Component.Key, pki.CA)
		dial := func(key string, opts ...moreid.Option) *moreid.Client {
			c, err := moreid.Dial(s.Env["MOREID_AUTH_ADDR"], key, opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			return c
		}
		c := dial(key, tlsOpt)
		tok, err := c.PasswordLogin(ctx, "alice", alicePassword)
		if err != nil {
			t.Fatalf("PasswordLogin over TLS: %v", err)
		}
		info, err := c.Introspect(ctx, tok.AccessToken)
		if err != nil || !info.GetActive() || info.GetApiKeyName() != "TLS app" {
			t.Fatalf("Introspect = %v, %v", info, err)
		}
		// Another app learns nothing about the token, and cannot end it.
		other := dial(otherKey, tlsOpt)
		if info, err := other.Introspect(ctx, tok.AccessToken); err != nil || info.GetActive() || info.GetUser() != nil {
			t.Fatalf("Introspect with another key = %v, %v; want inactive", info, err)
		}
		if err := other.RevokeToken(ctx, tok.AccessToken); err != nil {
			t.Fatalf("RevokeToken with another key: %v", err)
		}
		if info, err := c.Introspect(ctx, tok.AccessToken); err != nil || !info.GetActive() {
			t.Fatalf("after another key's RevokeToken: %v, %v; want still active", info, err)
		}
		// Without a certificate the listener is not reached at all.
		plain := dial(key)
		if _, err := plain.PasswordLogin(ctx, "alice", alicePassword); !errors.Is(err, moreid.ErrUnavailable) {
			t.Fatalf("PasswordLogin in plaintext: %v, want ErrUnavailable", err)
		}
	})

	t.Run("admin listeners refuse every non-operator", func(t *testing.T) {
		callers := []struct {
			name string
			env  map[string]string
		}{
			{"no certificate", map[string]string{"MOREID_CTL_CERT": "", "MOREID_CTL_KEY": "", "MOREID_CTL_CA": ""}},
			{"a component certificate", map[string]string{"MOREID_CTL_CERT": pki.Component.Cert, "MOREID_CTL_KEY": pki.Component.Key}},
			{"a certificate of another CA", map[string]string{"MOREID_CTL_CERT": pki.Stranger.Cert, "MOREID_CTL_KEY": pki.Stranger.Key}},
		}
		// One command per admin listener: user, apikey, auth.
		commands := [][]string{
			{"user", "disable", "alice"},
			{"apikey", "create", "--name", "minted by a stranger"},
			{"user", "revoke-tokens", "alice"},
			{"audit", "list"},
		}
		for _, c := range callers {
			for _, args := range commands {
				t.Run(c.name+" "+strings.Join(args[:2], " "), func(t *testing.T) {
					out, errOut, code := s.CtlWith(t, c.env, "", args...)
					if code != 1 || !strings.Contains(errOut, "cannot reach") {
						t.Fatalf("exit %d, want 1 and the connection refused\nstdout: %s\nstderr: %s", code, out, errOut)
					}
				})
			}
		}
		// Nothing above took effect.
		if out := s.MustCtl(t, "", "apikey", "list"); strings.Contains(out, "minted by a stranger") {
			t.Fatalf("a key was minted without an operator certificate:\n%s", out)
		}
		app := newClient(s.BaseURL, key)
		expectSuccess(t, app.do(t, "GET", "/api/oauth/authorize", nil), "授权初始化成功")
	})

	t.Run("plaintext gRPC is refused on every listener", func(t *testing.T) {
		for _, v := range []string{"MOREID_AUTH_ADDR", "MOREID_USER_ADDR", "MOREID_APIKEY_ADDR",
			"MOREID_AUTH_ADMIN_ADDR", "MOREID_USER_ADMIN_ADDR", "MOREID_APIKEY_ADMIN_ADDR"} {
			conn, err := grpc.NewClient(s.Env[v], grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			cancel()
			conn.Close()
			if err == nil {
				t.Errorf("%s answered a plaintext health check", v)
			}
		}
	})
}
