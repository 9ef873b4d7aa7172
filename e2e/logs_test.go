package e2e

import (
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moreline/moreid/e2e/harness"
	"github.com/moreline/moreid/proto/wire"
)

// TestLogsHoldNoSecrets runs both sign-in flows and the calls around them
// against a suite that logs at debug level (the harness's setting, the most
// verbose there is), stops it so that every line is written, and looks for
// each secret the run handled in everything the suite logged (SPEC section 5:
// keys, tokens, codes, passwords, cookies never appear in logs).
func TestLogsHoldNoSecrets(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	if s.Env["MOREID_LOG_LEVEL"] != "debug" {
		t.Fatalf("the suite logs at %q, want debug", s.Env["MOREID_LOG_LEVEL"])
	}
	const wrongPassword = "Wrong-horse-battery-9"
	secrets := map[string]string{}
	keep := func(name, value string) {
		t.Helper()
		if value == "" {
			t.Fatalf("the %s is empty", name)
		}
		secrets[name] = value
	}
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	key := s.CreateKey(t, "Log app") // moreidctl apikey create
	keep("password", alicePassword)
	keep("wrong password", wrongPassword)
	keep("API key", key)
	keep("API key's hex body", strings.TrimPrefix(key, "ml_"))
	app := newClient(s.BaseURL, key)
	post := func(path string, body map[string]string, headers ...string) answer {
		return app.do(t, "POST", path, body, headers...)
	}

	// Password flow, a replay of its code, and the token on the Bearer paths.
	state, code := app.login(t, "alice", alicePassword)
	tok := post("/api/oauth/token", map[string]string{"code": code, "state": state})
	expectSuccess(t, tok, "获取访问令牌成功")
	expectError(t, post("/api/oauth/token", map[string]string{"code": code, "state": state}), 409, "invalid_code")
	keep("state (password flow)", state)
	keep("authorization code (password flow)", code)
	keep("revoked access token", tok.str("access_token"))
	state, code = app.login(t, "alice", alicePassword)
	tok = post("/api/oauth/token", map[string]string{"code": code, "state": state})
	expectSuccess(t, tok, "获取访问令牌成功")
	keep("second state", state)
	keep("second authorization code", code)
	keep("access token", tok.str("access_token"))
	expectSuccess(t, app.do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", "Bearer "+tok.str("access_token")), "获取用户信息成功")
	expectSuccess(t, app.do(t, "GET", "/api/oauth/token/user", nil, "Authorization", "Bearer "+tok.str("access_token")), "获取用户信息成功")
	expectSuccess(t, post("/api/oauth/user/info", map[string]string{"user_id": "alice"}), "获取用户信息成功")

	// A failed login.
	state = app.authorize(t)
	expectError(t, post("/api/oauth/login", map[string]string{"user_id": "alice", "password": wrongPassword, "state": state}), 401, "invalid_credentials")
	keep("state of the failed login", state)

	// Safe flow through the page, then login_safe and token.
	person := newPageClient(t, s.BaseURL)
	state, uca := app.startSafeLogin(t)
	loginCode := person.confirm(t, uca, "alice", alicePassword)
	safe := post("/api/oauth/login_safe", map[string]string{"state": state, "login_code": loginCode})
	expectSuccess(t, safe, "登录成功，授权码已生成")
	safeTok := post("/api/oauth/token", map[string]string{"code": safe.str("code"), "state": state})
	expectSuccess(t, safeTok, "获取访问令牌成功")
	keep("state (safe flow)", state)
	keep("UCA", uca)
	keep("login code", loginCode)
	keep("authorization code (safe flow)", safe.str("code"))
	keep("access token (safe flow)", safeTok.str("access_token"))
	session := person.session(t)
	keep("session cookie", session)
	keep("session's CSRF token", wire.CSRFToken(session))
	base, err := url.Parse(s.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range person.hc.Jar.Cookies(base) {
		keep("cookie "+c.Name, c.Value)
	}

	// generate_login_code over REST with the session and its CSRF token.
	state, uca = app.startSafeLogin(t)
	gen := newClient(s.BaseURL, "").do(t, "POST", "/api/oauth/generate_login_code", map[string]string{"uca": uca},
		"Cookie", wire.SessionCookie+"="+session, "X-Csrf-Token", wire.CSRFToken(session))
	expectSuccess(t, gen, "生成登录码成功")
	safe = post("/api/oauth/login_safe", map[string]string{"state": state, "login_code": gen.str("login_code")})
	expectSuccess(t, safe, "登录成功，授权码已生成")
	keep("second UCA", uca)
	keep("login code from REST", gen.str("login_code"))
	keep("unredeemed authorization code", safe.str("code"))
	keep("state of the REST login code", state)

	// user/update with the session cookie.
	state = app.authorize(t)
	expectSuccess(t, post("/api/oauth/user/update", map[string]string{
		"user_id": "alice", "state": state, "cookie": wire.SessionCookie + "=" + session, "username": "Alice Updated",
	}), "用户信息更新成功")
	keep("state of user/update", state)

	// Stop the suite so that every line is on disk.
	procs := s.Processes()
	for i := len(procs) - 1; i >= 0; i-- {
		p := s.Proc(procs[i], 0)
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := p.Wait(10 * time.Second); code != 0 {
			t.Errorf("%s exited with %d", procs[i], code)
		}
	}
	logs := s.Logs()
	// The logs are the ones of this run, at debug level.
	for _, want := range []string{`"path":"/api/oauth/user/update"`, `"path":"/api/oauth/login_safe"`, `"path":"/api/oauth/user_confirmation"`, `"level":"DEBUG"`, "Login", "VerifyPassword"} {
		if !strings.Contains(logs, want) {
			t.Fatalf("the suite's logs lack %s: not the logs of this run?\n%s", want, logs)
		}
	}
	for name, value := range secrets {
		if i := strings.Index(logs, value); i >= 0 {
			context := logs[max(0, i-200):min(len(logs), i+len(value)+50)]
			t.Errorf("the logs hold the %s: …%s…", name, strings.ReplaceAll(context, value, "<"+name+">"))
		}
	}
	t.Logf("%d secrets checked against %d bytes of logs", len(secrets), len(logs))
}
