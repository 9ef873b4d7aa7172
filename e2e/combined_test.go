package e2e

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moreline/moreid/e2e/harness"
)

// TestAllRolesInOneProcess runs the suite as the one `moreid serve`
// process, whose internal calls go in-process: the flow, the API-key check (client IP as
// the gateway forwards it), the error mapping and the metrics must be those
// of the separate processes, and moreidctl reaches its admin listeners.
func TestAllRolesInOneProcess(t *testing.T) {
	s := harness.Start(t, harness.Options{Shape: harness.AllRoles})
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	app := newClient(s.BaseURL, s.CreateKey(t, "App"))
	whitelisted := newClient(s.BaseURL, s.CreateKey(t, "Office only", "--whitelist", "10.0.0.1"))
	open := newClient(s.BaseURL, s.CreateKey(t, "Loopback", "--whitelist", "127.0.0.1"))

	t.Run("password flow", func(t *testing.T) {
		state, code := app.login(t, "alice", alicePassword)
		token := app.do(t, "POST", "/api/oauth/token", map[string]string{"code": code, "state": state})
		expectSuccess(t, token, "获取访问令牌成功")
		info := app.do(t, "POST", "/api/oauth/user/info", map[string]string{"user_id": "alice"})
		expectSuccess(t, info, "获取用户信息成功")
		if u, _ := info.Body["user"].(map[string]any); u["username"] != "Alice" {
			t.Fatalf("user/info: %s", info.Raw)
		}
	})

	cases := []struct {
		name   string
		call   func() answer
		status int
		code   string
	}{
		{"unknown API key", func() answer { return newClient(s.BaseURL, unknownKey).do(t, "GET", "/api/oauth/authorize", nil) }, 401, "invalid_api_key"},
		{"wrong password", func() answer {
			return app.do(t, "POST", "/api/oauth/login", map[string]string{"user_id": "alice", "password": "wrong-password", "state": app.authorize(t)})
		}, 401, "invalid_credentials"},
		{"whitelist with forged X-Forwarded-For", func() answer {
			return whitelisted.do(t, "GET", "/api/oauth/authorize", nil, "X-Forwarded-For", "10.0.0.1", "X-Real-Ip", "10.0.0.1", "Grpc-Metadata-X-Moreid-Client-Ip", "10.0.0.1")
		}, 403, "ip_not_allowed"},
		{"unknown user on user/info", func() answer {
			return app.do(t, "POST", "/api/oauth/user/info", map[string]string{"user_id": "nobody"})
		}, 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { expectError(t, tc.call(), tc.status, tc.code) })
	}
	t.Run("whitelist holding the real client IP", func(t *testing.T) {
		expectSuccess(t, open.do(t, "GET", "/api/oauth/authorize", nil), "授权初始化成功")
	})

	t.Run("in-process calls are measured", func(t *testing.T) {
		resp, err := http.Get("http://" + s.Env["MOREID_METRICS_ADDR"] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, want := range []string{
			`method="/moreid.auth.v1.AuthService/Authorize"`,
			`method="/moreid.user.v1.UserService/VerifyPassword"`,
			`method="/moreid.apikey.v1.APIKeyService/ValidateKey"`,
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics has no %s", want)
			}
		}
	})

	t.Run("moreidctl reaches the admin listeners", func(t *testing.T) {
		// A key never used yet is in no cache: its revocation shows at once.
		unused := newClient(s.BaseURL, s.CreateKey(t, "Unused"))
		s.MustCtl(t, "", "apikey", "revoke", keyID(t, s, "Unused"))
		expectError(t, unused.do(t, "GET", "/api/oauth/authorize", nil), 401, "invalid_api_key")
	})

	t.Run("SIGTERM stops it cleanly", func(t *testing.T) {
		p := s.Proc("moreid", 0)
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := p.Wait(10 * time.Second); code != 0 {
			t.Fatalf("exit code %d; logs:\n%s", code, s.Logs())
		}
	})
}
