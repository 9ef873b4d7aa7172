package e2e

import (
	"regexp"
	"strings"
	"testing"

	"github.com/moreline/moreid/e2e/harness"
)

const (
	alicePassword = "correct-horse-battery-1"
	unknownKey    = "ml_0000000000000000000000000000000000000000000000000000000000000000"
)

// flowSuite is a running suite with a user and a few keys of each kind.
type flowSuite struct {
	*harness.Suite
	app, other, revoked, whitelisted, safeOnly *apiClient
	noKey                                      *apiClient
}

func startFlowSuite(t *testing.T) *flowSuite {
	t.Helper()
	s := harness.Start(t, harness.Options{})
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	f := &flowSuite{Suite: s}
	f.app = newClient(s.BaseURL, s.CreateKey(t, "App"))
	f.other = newClient(s.BaseURL, s.CreateKey(t, "Other app"))
	f.whitelisted = newClient(s.BaseURL, s.CreateKey(t, "Office only", "--whitelist", "10.0.0.1,2001:db8::/32"))
	f.safeOnly = newClient(s.BaseURL, s.CreateKey(t, "Safe only", "--no-password-login"))
	revokedKey := s.CreateKey(t, "Revoked")
	f.revoked = newClient(s.BaseURL, revokedKey)
	s.MustCtl(t, "", "apikey", "revoke", keyID(t, s, "Revoked"))
	f.noKey = newClient(s.BaseURL, "")
	return f
}

// keyID finds a key's id by name in `moreidctl apikey list --json`.
func keyID(t *testing.T, s *harness.Suite, name string) string {
	t.Helper()
	for _, k := range listKeys(t, s) {
		if k["name"] == name {
			return jsonNumber(k["id"])
		}
	}
	t.Fatalf("no key named %q", name)
	return ""
}

func TestPasswordFlowAnswersAsDocumented(t *testing.T) {
	f := startFlowSuite(t)

	auth := f.app.do(t, "GET", "/api/oauth/authorize", nil)
	expectSuccess(t, auth, "授权初始化成功")
	state := auth.str("state")
	if !regexp.MustCompile(`^[A-Za-z0-9]{32}$`).MatchString(state) {
		t.Errorf("state %q", state)
	}

	login := f.app.do(t, "POST", "/api/oauth/login", map[string]string{"user_id": "alice", "password": alicePassword, "state": state})
	expectSuccess(t, login, "登录成功")
	if !regexp.MustCompile(`^code_[A-Za-z0-9]{32}$`).MatchString(login.str("code")) {
		t.Errorf("code %q", login.str("code"))
	}
	user, _ := login.Body["user"].(map[string]any)
	if id, ok := user["id"].(float64); !ok || id < 1 {
		t.Errorf("user.id = %#v, want a JSON number", user["id"])
	}
	for field, want := range map[string]string{"username": "Alice", "user_id": "alice", "email": "alice@example.com"} {
		if user[field] != want {
			t.Errorf("user.%s = %v, want %q", field, user[field], want)
		}
	}

	token := f.app.do(t, "POST", "/api/oauth/token", map[string]string{"code": login.str("code"), "state": state})
	expectSuccess(t, token, "获取访问令牌成功")
	if !regexp.MustCompile(`^token_[A-Za-z0-9]{56}$`).MatchString(token.str("access_token")) {
		t.Errorf("access_token %q", token.str("access_token"))
	}
	if token.Body["token_type"] != "Bearer" || token.Body["expires_in"] != float64(3600) {
		t.Errorf("token_type %v expires_in %#v, want Bearer and the JSON number 3600", token.Body["token_type"], token.Body["expires_in"])
	}
	// protojson varies its whitespace between builds on purpose; the value
	// must be a bare number either way.
	if !regexp.MustCompile(`"expires_in":\s*3600\s*[,}]`).MatchString(token.Raw) {
		t.Errorf("expires_in is not written as a number: %s", token.Raw)
	}

	info := f.app.do(t, "POST", "/api/oauth/user/info", map[string]string{"user_id": "alice"})
	expectSuccess(t, info, "获取用户信息成功")
	profile, _ := info.Body["user"].(map[string]any)
	if profile["username"] != "Alice" || !strings.HasPrefix(profile["avatar_url"].(string), "https://") {
		t.Errorf("user/info user = %v", profile)
	}
}

func expectSuccess(t *testing.T, a answer, message string) {
	t.Helper()
	if a.Status != 200 || a.Body["success"] != true || a.Body["message"] != message {
		t.Fatalf("want 200 success %q, got %d %s", message, a.Status, a.Raw)
	}
}

// TestErrorStatuses walks every status the password flow can produce.
func TestErrorStatuses(t *testing.T) {
	f := startFlowSuite(t)
	login := func(c *apiClient, userID, password, state string) answer {
		return c.do(t, "POST", "/api/oauth/login", map[string]string{"user_id": userID, "password": password, "state": state})
	}
	token := func(c *apiClient, code, state string) answer {
		return c.do(t, "POST", "/api/oauth/token", map[string]string{"code": code, "state": state})
	}
	usedState, usedCode := f.app.login(t, "alice", alicePassword)
	if a := token(f.app, usedCode, usedState); a.Status != 200 {
		t.Fatalf("first redemption: %d %s", a.Status, a.Raw)
	}
	otherState, otherCode := f.other.login(t, "alice", alicePassword)

	cases := []struct {
		name   string
		call   func() answer
		status int
		code   string
	}{
		{"missing field", func() answer {
			return f.app.do(t, "POST", "/api/oauth/login", map[string]string{"user_id": "alice", "state": f.app.authorize(t)})
		}, 400, "invalid_request"},
		{"empty field", func() answer { return login(f.app, "", alicePassword, f.app.authorize(t)) }, 400, "invalid_request"},
		{"malformed JSON", func() answer { return f.app.do(t, "POST", "/api/oauth/login", `{"user_id": "alice",`) }, 400, "invalid_request"},
		{"JSON array", func() answer { return f.app.do(t, "POST", "/api/oauth/token", `[{"code":"x","state":"y"}]`) }, 400, "invalid_request"},
		{"wrong type", func() answer {
			return f.app.do(t, "POST", "/api/oauth/user/info", `{"user_id": 12}`)
		}, 400, "invalid_request"},
		{"body over 64 KiB", func() answer {
			return f.app.do(t, "POST", "/api/oauth/user/info", `{"user_id":"alice","pad":"`+strings.Repeat("x", 64<<10)+`"}`)
		}, 400, "invalid_request"},
		{"no API key", func() answer { return f.noKey.do(t, "GET", "/api/oauth/authorize", nil) }, 401, "invalid_api_key"},
		{"unknown API key", func() answer { return newClient(f.BaseURL, unknownKey).do(t, "GET", "/api/oauth/authorize", nil) }, 401, "invalid_api_key"},
		{"malformed API key", func() answer { return newClient(f.BaseURL, "ml_short").do(t, "GET", "/api/oauth/authorize", nil) }, 401, "invalid_api_key"},
		{"revoked API key", func() answer { return f.revoked.do(t, "GET", "/api/oauth/authorize", nil) }, 401, "invalid_api_key"},
		{"wrong password", func() answer { return login(f.app, "alice", "wrong-password", f.app.authorize(t)) }, 401, "invalid_credentials"},
		{"unknown user", func() answer { return login(f.app, "nobody", alicePassword, f.app.authorize(t)) }, 401, "invalid_credentials"},
		{"IP outside whitelist", func() answer { return f.whitelisted.do(t, "GET", "/api/oauth/authorize", nil) }, 403, "ip_not_allowed"},
		{"whitelist with forged X-Forwarded-For", func() answer {
			return f.whitelisted.do(t, "GET", "/api/oauth/authorize", nil, "X-Forwarded-For", "10.0.0.1", "X-Real-Ip", "10.0.0.1", "Grpc-Metadata-X-Moreid-Client-Ip", "10.0.0.1")
		}, 403, "ip_not_allowed"},
		{"password login off for this key", func() answer { return login(f.safeOnly, "alice", alicePassword, f.safeOnly.authorize(t)) }, 403, "password_login_disabled"},
		{"unknown path", func() answer { return f.app.do(t, "GET", "/api/oauth/nope", nil) }, 404, "not_found"},
		{"unknown user on user/info", func() answer {
			return f.app.do(t, "POST", "/api/oauth/user/info", map[string]string{"user_id": "nobody"})
		}, 404, "not_found"},
		{"wrong method on authorize", func() answer { return f.app.do(t, "POST", "/api/oauth/authorize", `{}`) }, 405, "method_not_allowed"},
		{"wrong method on login", func() answer { return f.app.do(t, "GET", "/api/oauth/login", nil) }, 405, "method_not_allowed"},
		{"unknown state", func() answer { return login(f.app, "alice", alicePassword, "no-such-state") }, 408, "invalid_state"},
		{"used state", func() answer { return login(f.app, "alice", alicePassword, usedState) }, 408, "invalid_state"},
		{"another key's state", func() answer { return login(f.app, "alice", alicePassword, f.other.authorize(t)) }, 408, "invalid_state"},
		{"unknown code", func() answer { return token(f.app, "code_"+strings.Repeat("a", 32), usedState) }, 409, "invalid_code"},
		{"reused code", func() answer { return token(f.app, usedCode, usedState) }, 409, "invalid_code"},
		{"another key's code", func() answer { return token(f.app, otherCode, otherState) }, 409, "invalid_code"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { expectError(t, tc.call(), tc.status, tc.code) })
	}

	t.Run("unknown user answers exactly like a wrong password", func(t *testing.T) {
		wrong := login(f.app, "alice", "wrong-password", f.app.authorize(t))
		unknown := login(f.app, "nobody", "wrong-password", f.app.authorize(t))
		if wrong.Status != unknown.Status || wrong.Raw != unknown.Raw {
			t.Fatalf("wrong password: %d %s\nunknown user: %d %s", wrong.Status, wrong.Raw, unknown.Status, unknown.Raw)
		}
	})
	t.Run("another key's code stays redeemable by its own key", func(t *testing.T) {
		if a := token(f.other, otherCode, otherState); a.Status != 200 {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
	})
}

func TestConcurrentRedemptionGivesOneToken(t *testing.T) {
	f := startFlowSuite(t)
	state, code := f.app.login(t, "alice", alicePassword)
	const n = 64
	results := atOnce(n, func(int) answer {
		return f.app.do(t, "POST", "/api/oauth/token", map[string]string{"code": code, "state": state})
	})
	won := 0
	for _, a := range results {
		switch a.Status {
		case 200:
			won++
		case 409:
			expectError(t, a, 409, "invalid_code")
		default:
			t.Errorf("unexpected answer %d %s", a.Status, a.Raw)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent redemptions got a token, want exactly 1", won, n)
	}
}
