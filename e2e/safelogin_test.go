package e2e

import (
	"context"
	"crypto/rand"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moreline/moreid/e2e/harness"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/proto/wire"
)

// TestSafeLogin drives the safe login over HTTP only: the app's calls with
// its API key, the person's part through the confirmation page's HTML forms
// (page_test.go).
func TestSafeLogin(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	app := newClient(s.BaseURL, s.CreateKey(t, "Safe app"))

	t.Run("ucaoncecode answers as documented", func(t *testing.T) {
		state := app.authorize(t)
		a := app.do(t, "POST", "/api/oauth/ucaoncecode", map[string]string{"state": state})
		expectSuccess(t, a, "获取一次性确认码成功")
		if !regexp.MustCompile(`^uca_[A-Za-z0-9]{16}$`).MatchString(a.str("ucaoncecode")) {
			t.Errorf("ucaoncecode %q", a.str("ucaoncecode"))
		}
	})

	t.Run("login code from the page signs in once", func(t *testing.T) {
		state, loginCode := app.safeLoginCode(t, "alice", alicePassword)
		if !loginCodeFormat.MatchString(loginCode) {
			t.Fatalf("the page's #login-code is %q, want 10 characters of %q", loginCode, secret.LoginCode)
		}
		a := app.do(t, "POST", "/api/oauth/login_safe", map[string]string{"state": state, "login_code": loginCode})
		expectSuccess(t, a, "登录成功，授权码已生成")
		if !regexp.MustCompile(`^code_[A-Za-z0-9]{32}$`).MatchString(a.str("code")) {
			t.Errorf("code %q", a.str("code"))
		}
		user, _ := a.Body["user"].(map[string]any)
		if user["user_id"] != "alice" || user["username"] != "Alice" || user["email"] != "alice@example.com" {
			t.Errorf("user %v", user)
		}
		if id, ok := user["id"].(float64); !ok || id < 1 {
			t.Errorf("user.id = %#v, want a JSON number", user["id"])
		}
		tok := app.do(t, "POST", "/api/oauth/token", map[string]string{"code": a.str("code"), "state": state})
		expectSuccess(t, tok, "获取访问令牌成功")
		expectError(t, app.do(t, "POST", "/api/oauth/login_safe", map[string]string{"state": state, "login_code": loginCode}), 408, "invalid_state")
	})

	t.Run("a signed-in person is asked only to confirm", func(t *testing.T) {
		person := newPageClient(t, s.BaseURL)
		_, uca := app.startSafeLogin(t)
		person.confirm(t, uca, "alice", alicePassword)
		_, next := app.startSafeLogin(t)
		p := person.get(t, confirmationURL(s.BaseURL, next))
		if p.Status != 200 || p.byID("confirm") == nil || p.byID("login") != nil {
			t.Fatalf("second UCA with a session: status %d, want confirm without sign-in:\n%s", p.Status, p.Body)
		}
		if !strings.Contains(p.text(), "Safe app") {
			t.Errorf("the page does not name the app asking (the key's name):\n%s", p.text())
		}
	})

	t.Run("generate_login_code over REST needs the session and its CSRF token", func(t *testing.T) {
		person := newPageClient(t, s.BaseURL)
		state, uca := app.startSafeLogin(t)
		if p := person.signIn(t, uca, "alice", alicePassword); p.byID("confirm") == nil {
			t.Fatalf("no button#confirm after signing in (status %d):\n%s", p.Status, p.Body)
		}
		session := person.session(t)
		page := newClient(s.BaseURL, "") // the page's own calls carry no API key
		generate := func(headers ...string) answer {
			return page.do(t, "POST", "/api/oauth/generate_login_code", map[string]string{"uca": uca}, headers...)
		}
		expectError(t, generate("Cookie", wire.SessionCookie+"="+session), 403, "csrf_failed")
		expectError(t, generate("X-Csrf-Token", wire.CSRFToken(session)), 401, "unauthenticated")
		a := generate("Cookie", wire.SessionCookie+"="+session, "X-Csrf-Token", wire.CSRFToken(session))
		expectSuccess(t, a, "生成登录码成功")
		if !loginCodeFormat.MatchString(a.str("login_code")) {
			t.Fatalf("login_code %q", a.str("login_code"))
		}
		expectError(t, generate("Cookie", wire.SessionCookie+"="+session, "X-Csrf-Token", wire.CSRFToken(session)), 409, "invalid_code")
		expectSuccess(t, app.do(t, "POST", "/api/oauth/login_safe", map[string]string{"state": state, "login_code": a.str("login_code")}), "登录成功，授权码已生成")
	})

	t.Run("generate_login_code with an API key takes only the UCA's own, valid key", func(t *testing.T) {
		// The newest upstream document lists X-API-Key on every endpoint:
		// a key sent must not be ignored, and another app's key must not
		// confirm (nor reveal) this app's UCA.
		other := s.CreateKey(t, "Other app")
		person := newPageClient(t, s.BaseURL)
		// The session is the person's, good for any UCA: each row below
		// gets a fresh one.
		_, first := app.startSafeLogin(t)
		if p := person.signIn(t, first, "alice", alicePassword); p.byID("confirm") == nil {
			t.Fatalf("no button#confirm after signing in (status %d):\n%s", p.Status, p.Body)
		}
		session := person.session(t)
		signedIn := []string{"Cookie", wire.SessionCookie + "=" + session, "X-Csrf-Token", wire.CSRFToken(session)}
		generate := func(key, uca string) answer {
			return newClient(s.BaseURL, key).do(t, "POST", "/api/oauth/generate_login_code", map[string]string{"uca": uca}, signedIn...)
		}
		for _, tt := range []struct {
			name, key string
			status    int
			reason    string
		}{
			{"no key, as the page sends", "", 200, ""},
			{"an invalid key", "mk_" + strings.Repeat("x", 40), 401, "invalid_api_key"},
			{"another app's key", other, 409, "invalid_code"},
			{"the UCA's own key", app.key, 200, ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				state, uca := app.startSafeLogin(t)
				a := generate(tt.key, uca)
				if tt.status != 200 {
					expectError(t, a, tt.status, tt.reason)
					// A refusal leaves the UCA to its own app.
					a = generate(app.key, uca)
				}
				expectSuccess(t, a, "生成登录码成功")
				expectSuccess(t, app.do(t, "POST", "/api/oauth/login_safe", map[string]string{"state": state, "login_code": a.str("login_code")}), "登录成功，授权码已生成")
			})
		}
	})

	t.Run("32 concurrent login_safe with one login code give one code", func(t *testing.T) {
		state, loginCode := app.safeLoginCode(t, "alice", alicePassword)
		const n = 32
		results := atOnce(n, func(int) answer {
			return app.do(t, "POST", "/api/oauth/login_safe", map[string]string{"state": state, "login_code": loginCode})
		})
		won := 0
		for _, a := range results {
			switch a.Status {
			case 200:
				won++
			case 408: // the winner consumed the state first
				expectError(t, a, 408, "invalid_state")
			case 409: // the winner consumed the login code first
				expectError(t, a, 409, "invalid_code")
			default:
				t.Errorf("unexpected answer %d %s", a.Status, a.Raw)
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d concurrent login_safe calls got a code, want exactly 1", won, n)
		}
	})

	t.Run("five wrong login codes burn the state", func(t *testing.T) {
		state, loginCode := app.safeLoginCode(t, "alice", alicePassword)
		for i := range 5 {
			a := app.do(t, "POST", "/api/oauth/login_safe", map[string]string{"state": state, "login_code": wrongLoginCode(loginCode)})
			if a.Status != 409 {
				t.Fatalf("wrong login code %d: %d %s, want 409 invalid_code", i+1, a.Status, a.Raw)
			}
			expectError(t, a, 409, "invalid_code")
		}
		expectError(t, app.do(t, "POST", "/api/oauth/login_safe", map[string]string{"state": state, "login_code": loginCode}), 408, "invalid_state")
	})

	t.Run("four wrong login codes leave the right one working", func(t *testing.T) {
		state, loginCode := app.safeLoginCode(t, "alice", alicePassword)
		for range 4 {
			expectError(t, app.do(t, "POST", "/api/oauth/login_safe", map[string]string{"state": state, "login_code": wrongLoginCode(loginCode)}), 409, "invalid_code")
		}
		expectSuccess(t, app.do(t, "POST", "/api/oauth/login_safe", map[string]string{"state": state, "login_code": loginCode}), "登录成功，授权码已生成")
	})

	t.Run("used UCA answers 409", func(t *testing.T) {
		person := newPageClient(t, s.BaseURL)
		_, uca := app.startSafeLogin(t)
		person.confirm(t, uca, "alice", alicePassword)
		expectErrorPage(t, person.get(t, confirmationURL(s.BaseURL, uca)))
	})

	t.Run("unknown UCA answers 409", func(t *testing.T) {
		expectErrorPage(t, newPageClient(t, s.BaseURL).get(t, confirmationURL(s.BaseURL, "uca_0000000000000000")))
	})

	t.Run("expired UCA answers 409", func(t *testing.T) {
		ctx := context.Background()
		before, err := s.Redis.Keys(ctx, s.RedisPrefix+"uca:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		_, uca := app.startSafeLogin(t)
		after, err := s.Redis.Keys(ctx, s.RedisPrefix+"uca:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		var fresh []string
		for _, k := range after {
			if !slices.Contains(before, k) {
				fresh = append(fresh, k)
			}
		}
		if len(fresh) != 1 {
			t.Fatalf("ucaoncecode made %d new keys under %suca:*, want 1: %v", len(fresh), s.RedisPrefix, fresh)
		}
		person := newPageClient(t, s.BaseURL)
		if p := person.get(t, confirmationURL(s.BaseURL, uca)); p.Status != 200 {
			t.Fatalf("the live UCA's page: status %d", p.Status)
		}
		// Let Redis expire it for real, as its TTL would.
		if err := s.Redis.PExpire(ctx, fresh[0], time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(2 * time.Second); s.Redis.Exists(ctx, fresh[0]).Val() == 1; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the UCA key did not expire")
			}
		}
		expectErrorPage(t, person.get(t, confirmationURL(s.BaseURL, uca)))
	})
}

// expectErrorPage asserts SPEC section 4's error page: status 409, HTML, and
// nothing to sign in or confirm with.
func expectErrorPage(t testing.TB, p webPage) {
	t.Helper()
	if p.Status != 409 {
		t.Errorf("status %d, want 409:\n%s", p.Status, p.Body)
	}
	if !strings.Contains(strings.ToLower(p.Body), "<html") {
		t.Errorf("not an HTML page:\n%s", p.Body)
	}
	for _, id := range []string{"login", "confirm", "deny", "login-code"} {
		if p.byID(id) != nil {
			t.Errorf("the error page has #%s:\n%s", id, p.Body)
		}
	}
}

// wrongLoginCode is a well-formed login code other than code.
func wrongLoginCode(code string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	for {
		b := make([]byte, 10)
		rand.Read(b)
		for i := range b {
			b[i] = alphabet[int(b[i])%len(alphabet)]
		}
		if string(b) != code {
			return string(b)
		}
	}
}
