package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moreline/moreid/e2e/harness"
)

// ctlOn runs moreidctl with instance i's environment, so that it talks to
// that instance's admin listeners, and fails the test unless it exits 0.
func ctlOn(t *testing.T, s *harness.Suite, i int, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.Bin(t, "moreidctl"), args...)
	cmd.Env = os.Environ()
	for k, v := range s.Envs[i] {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("moreidctl %v on instance %d: %v\nstdout: %s\nstderr: %s", args, i, err, out.String(), errb.String())
	}
	return out.String()
}

// TestScaleOut runs two instances of every component as separate
// processes on one Postgres and one Redis, and sends each step of a flow
// through another instance: instance i's gateway calls auth i, which calls
// user i and apikey i, so a record written by one instance must be found
// by the other.
func TestScaleOut(t *testing.T) {
	s := harness.Start(t, harness.Options{Instances: 2})
	if len(s.BaseURLs) != 2 || s.BaseURLs[0] == s.BaseURLs[1] {
		t.Fatalf("gateways %v, want two", s.BaseURLs)
	}
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	key := s.CreateKey(t, "Scaled app")
	via := []*apiClient{newClient(s.BaseURLs[0], key), newClient(s.BaseURLs[1], key)}

	t.Run("password flow, each step on another instance", func(t *testing.T) {
		state := via[0].authorize(t)
		login := via[1].do(t, "POST", "/api/oauth/login", map[string]string{"user_id": "alice", "password": alicePassword, "state": state})
		expectSuccess(t, login, "登录成功")
		token := via[0].do(t, "POST", "/api/oauth/token", map[string]string{"code": login.str("code"), "state": state})
		expectSuccess(t, token, "获取访问令牌成功")
		info := via[1].do(t, "POST", "/api/oauth/user/info", map[string]string{"user_id": "alice"})
		expectSuccess(t, info, "获取用户信息成功")
		if user, _ := info.Body["user"].(map[string]any); user["username"] != "Alice" {
			t.Errorf("user/info through gateway 1: %s", info.Raw)
		}
		// The token issued by auth 0 is known to auth 1.
		me := newClient(s.BaseURLs[1], "").do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", "Bearer "+token.str("access_token"))
		expectSuccess(t, me, "获取用户信息成功")

		// The steps really landed on different processes: only the second
		// instance signed anybody in, and only the first redeemed a code.
		auth0, auth1 := scrape(t, s.Envs[0], "auth"), scrape(t, s.Envs[1], "auth")
		user0, user1 := scrape(t, s.Envs[0], "user"), scrape(t, s.Envs[1], "user")
		for _, c := range []struct {
			what string
			got  float64
			want bool
		}{
			{"auth 1 served Login", rpcCount(auth1, rpcAuthLogin, "OK"), true},
			{"user 1 verified the password", rpcCount(user1, rpcVerifyPassword, "OK"), true},
			{"auth 0 served Token", rpcCount(auth0, rpcAuthToken, "OK"), true},
			{"auth 0 served Login", rpcCount(auth0, rpcAuthLogin, "OK"), false},
			{"user 0 verified a password", rpcCount(user0, rpcVerifyPassword, "OK"), false},
			{"auth 1 served Token", rpcCount(auth1, rpcAuthToken, "OK"), false},
		} {
			if (c.got > 0) != c.want {
				t.Errorf("%s: %v calls, want them %v", c.what, c.got, map[bool]string{true: "> 0", false: "= 0"}[c.want])
			}
		}
	})

	t.Run("safe flow, each step on another instance", func(t *testing.T) {
		state := via[0].authorize(t)
		uca := via[1].do(t, "POST", "/api/oauth/ucaoncecode", map[string]string{"state": state})
		expectSuccess(t, uca, "获取一次性确认码成功")
		loginCode := newPageClient(t, s.BaseURLs[0]).confirm(t, uca.str("ucaoncecode"), "alice", alicePassword)
		if !loginCodeFormat.MatchString(loginCode) {
			t.Fatalf("login code %q from gateway 0's page", loginCode)
		}
		login := via[1].do(t, "POST", "/api/oauth/login_safe", map[string]string{"state": state, "login_code": loginCode})
		expectSuccess(t, login, "登录成功，授权码已生成")
		expectSuccess(t, via[0].do(t, "POST", "/api/oauth/token", map[string]string{"code": login.str("code"), "state": state}), "获取访问令牌成功")
	})

	// A revocation through one instance's admin listener is seen by the
	// other instance's gateway within SPEC's one second.
	for _, tc := range []struct{ revokeOn, observeOn int }{{0, 1}, {1, 0}} {
		name := fmt.Sprintf("revoked through instance %d, refused by gateway %d within 1 s", tc.revokeOn, tc.observeOn)
		t.Run(name, func(t *testing.T) {
			keyName := fmt.Sprintf("Revoked via %d", tc.revokeOn)
			app := newClient(s.BaseURLs[tc.observeOn], strings.TrimSpace(lastLine(ctlOn(t, s, tc.revokeOn, "apikey", "create", "--name", keyName))))
			// The observing instance has the key in its cache when the
			// revocation happens.
			if a := app.do(t, "GET", "/api/oauth/authorize", nil); a.Status != 200 {
				t.Fatalf("before revocation: %d %s", a.Status, a.Raw)
			}
			ctlOn(t, s, tc.revokeOn, "apikey", "revoke", keyID(t, s, keyName))
			revoked := time.Now()
			for {
				a := app.do(t, "GET", "/api/oauth/authorize", nil)
				if a.Status == 401 {
					expectError(t, a, 401, "invalid_api_key")
					break
				}
				if a.Status != 200 {
					t.Fatalf("while waiting for the revocation: %d %s", a.Status, a.Raw)
				}
				if time.Since(revoked) > 5*time.Second {
					t.Fatalf("gateway %d still accepts the key 5 s after the revocation", tc.observeOn)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if elapsed := time.Since(revoked); elapsed > time.Second {
				t.Fatalf("gateway %d refused the key %s after the revocation, want <= 1 s", tc.observeOn, elapsed)
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
