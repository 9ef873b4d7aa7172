package gateway

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/proto/wire"
)

// TestNewMappings sends every mapping added for safe login and the token
// calls, and checks which RPC ran and with which metadata.
func TestNewMappings(t *testing.T) {
	b := startBackend(t)
	srv := startGateway(t, b.conn, nil, discard())

	tests := []struct {
		name    string
		rq      request
		calls   *called
		method  string
		message string
		md      map[string]string // metadata that must arrive ("" = must be absent)
	}{
		{
			name:  "user/update with a session cookie field",
			rq:    request{method: "POST", path: "/api/oauth/user/update", body: `{"user_id":"alice","state":"s","cookie":"` + wire.SessionCookie + `=x","username":"A"}`},
			calls: &b.auth.called, method: "UpdateUser", message: "用户信息更新成功",
			md: map[string]string{wire.APIKey: apiKey},
		},
		{
			name: "user/update with a Bearer token",
			rq: request{method: "POST", path: "/api/oauth/user/update", body: `{"user_id":"alice","state":"s","bio":"b"}`,
				headers: map[string]string{"Authorization": "Bearer " + goodToken}},
			calls: &b.auth.called, method: "UpdateUser", message: "用户信息更新成功",
			md: map[string]string{wire.APIKey: apiKey, "authorization": "Bearer " + goodToken},
		},
		{
			name:  "ucaoncecode",
			rq:    request{method: "POST", path: "/api/oauth/ucaoncecode", body: `{"state":"s"}`},
			calls: &b.auth.called, method: "CreateUCA", message: "获取一次性确认码成功",
			md: map[string]string{wire.APIKey: apiKey},
		},
		{
			name: "generate_login_code needs no API key: session cookie and CSRF header",
			rq: request{method: "POST", path: "/api/oauth/generate_login_code", body: `{"uca":"uca_mapping"}`, headers: map[string]string{
				"X-API-Key": "", "Cookie": "other=1; " + wire.SessionCookie + "=" + aliceSession, "X-CSRF-Token": wire.CSRFToken(aliceSession)}},
			calls: &b.confirm.called, method: "GenerateLoginCode", message: "生成登录码成功",
			md: map[string]string{wire.Session: aliceSession, wire.CSRF: wire.CSRFToken(aliceSession), wire.APIKey: "",
				wire.ClientIP: "127.0.0.1"},
		},
		{
			name:  "login_safe",
			rq:    request{method: "POST", path: "/api/oauth/login_safe", body: `{"state":"s","login_code":"` + loginCode + `"}`},
			calls: &b.auth.called, method: "LoginSafe", message: "登录成功，授权码已生成",
			md: map[string]string{wire.APIKey: apiKey, wire.Session: ""},
		},
		{
			name:  "GET token/user",
			rq:    request{method: "GET", path: "/api/oauth/token/user", headers: map[string]string{"Authorization": "Bearer " + goodToken}},
			calls: &b.auth.called, method: "GetTokenUser", message: "获取用户信息成功",
			md: map[string]string{wire.APIKey: apiKey, "authorization": "Bearer " + goodToken},
		},
		{
			name:  "GET userinfo",
			rq:    request{method: "GET", path: "/api/oauth/userinfo", headers: map[string]string{"X-API-Key": "", "Authorization": "Bearer " + goodToken}},
			calls: &b.tokens.called, method: "GetUserinfo", message: "获取用户信息成功",
			md: map[string]string{"authorization": "Bearer " + goodToken, wire.APIKey: ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, srv, tt.rq)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			if r.json["success"] != true || r.json["message"] != tt.message {
				t.Fatalf("body %s", r.raw)
			}
			method, md := tt.calls.last()
			if method != tt.method {
				t.Fatalf("RPC %q ran, want %q", method, tt.method)
			}
			for k, v := range tt.md {
				want := []string{v}
				if v == "" {
					want = nil
				}
				if got := md.Get(k); !reflect.DeepEqual(got, want) {
					t.Errorf("metadata %s = %q, want %q", k, got, want)
				}
			}
		})
	}

	t.Run("token/user answers the whole profile", func(t *testing.T) {
		r := send(t, srv, request{method: "GET", path: "/api/oauth/token/user", headers: map[string]string{"Authorization": "Bearer " + goodToken}})
		u, _ := r.json["user"].(map[string]any)
		if got := keys(u); !reflect.DeepEqual(got, []string{"avatar_url", "bio", "email", "id", "user_id", "username"}) {
			t.Fatalf("user fields %v: %s", got, r.raw)
		}
	})

	t.Run("generate_login_code errors", func(t *testing.T) {
		gen := func(headers map[string]string) request {
			h := map[string]string{"X-API-Key": ""}
			for k, v := range headers {
				h[k] = v
			}
			return request{method: "POST", path: "/api/oauth/generate_login_code", body: `{"uca":"uca_errors"}`, headers: h}
		}
		assertError(t, send(t, srv, gen(nil)), 401, apierr.Unauthenticated, "")
		assertError(t, send(t, srv, gen(map[string]string{"Cookie": wire.SessionCookie + "=" + aliceSession})), 403, apierr.CSRFFailed, "")
		assertError(t, send(t, srv, gen(map[string]string{"Cookie": wire.SessionCookie + "=" + aliceSession, "X-CSRF-Token": "wrong"})), 403, apierr.CSRFFailed, "")
		r := send(t, srv, request{method: "POST", path: "/api/oauth/generate_login_code", body: `{"uca":"uca_used"}`,
			headers: map[string]string{"Cookie": wire.SessionCookie + "=" + aliceSession, "X-CSRF-Token": wire.CSRFToken(aliceSession)}})
		assertError(t, r, 409, apierr.InvalidCode, "")
	})
}

// TestBearerChallenge: a refused Bearer call says so in WWW-Authenticate
// (RFC 6750 section 3); other 401s do not.
func TestBearerChallenge(t *testing.T) {
	b := startBackend(t)
	srv := startGateway(t, b.conn, nil, discard())
	tests := []struct {
		name      string
		rq        request
		kind      apierr.Kind
		challenge string
	}{
		{name: "userinfo without a token", rq: request{method: "GET", path: "/api/oauth/userinfo"},
			kind: apierr.InvalidToken, challenge: "Bearer"},
		{name: "userinfo with a wrong token", rq: request{method: "GET", path: "/api/oauth/userinfo", headers: map[string]string{"Authorization": "Bearer token_wrong"}},
			kind: apierr.InvalidToken, challenge: `Bearer error="invalid_token"`},
		{name: "token/user with a wrong token", rq: request{method: "GET", path: "/api/oauth/token/user", headers: map[string]string{"Authorization": "bearer token_wrong"}},
			kind: apierr.InvalidToken, challenge: `Bearer error="invalid_token"`},
		{name: "wrong password is no Bearer failure", rq: request{method: "POST", path: "/api/oauth/login", body: `{"user_id":"wrong-password","password":"x","state":"s"}`},
			kind: apierr.InvalidCredentials},
		{name: "missing API key is no Bearer failure", rq: request{method: "GET", path: "/api/oauth/token/user", headers: map[string]string{"X-API-Key": "", "Authorization": "Bearer token_wrong"}},
			kind: apierr.InvalidAPIKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, srv, tt.rq)
			assertError(t, r, 401, tt.kind, "")
			if got := r.header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if strings.Contains(r.header.Get("WWW-Authenticate"), "token_wrong") {
				t.Fatal("challenge echoes the token")
			}
		})
	}
}

// TestSessionNeverLogged: the session cookie reaches the backend as
// metadata and appears in no log line.
func TestSessionNeverLogged(t *testing.T) {
	b := startBackend(t)
	var logs logBuffer
	srv := startGateway(t, b.conn, nil, newJSONLogger(&logs))
	send(t, srv, request{method: "POST", path: "/api/oauth/generate_login_code", body: `{"uca":"uca_logged"}`,
		headers: map[string]string{"Cookie": wire.SessionCookie + "=" + aliceSession, "X-CSRF-Token": wire.CSRFToken(aliceSession)}})
	waitLogLine(t, &logs, "/api/oauth/generate_login_code")
	for _, s := range []string{aliceSession, wire.CSRFToken(aliceSession), loginCode} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("log contains secret %q", s)
		}
	}
}
