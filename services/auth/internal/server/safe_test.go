package server_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/secret"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

var (
	ucaFormat     = regexp.MustCompile(`^uca_[A-Za-z0-9]{16}$`)
	sessionFormat = regexp.MustCompile(`^sess_[A-Za-z0-9]{43}$`)
)

// loginCodeFormat is what the service issues: the documented 10 of
// [a-z0-9], drawn from the alphabet without look-alikes.
var loginCodeFormat = regexp.MustCompile(fmt.Sprintf(`^[%s]{%d}$`, secret.LoginCode, secret.LoginCodeLen))

func TestCreateUCA(t *testing.T) {
	e := newEnv(t, options{})
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"a UCA of 10 minutes; the state stays usable", func(t *testing.T) {
			state := e.authorize(t, keyA)
			r, err := e.auth.CreateUCA(as(t, keyA), &authv1.CreateUCARequest{State: state})
			if err != nil {
				t.Fatalf("CreateUCA: %v", err)
			}
			if !r.GetSuccess() || r.GetMessage() != "获取一次性确认码成功" || !ucaFormat.MatchString(r.GetUcaoncecode()) {
				t.Fatalf("CreateUCA = %+v", r)
			}
			if ttl := e.pttl(t, "uca:"+secret.Hash(r.GetUcaoncecode())); ttl <= 9*time.Minute || ttl > 10*time.Minute {
				t.Fatalf("UCA PTTL = %v, want about 10m", ttl)
			}
			e.login(t, keyA, state)
		}},
		{"the UCA never outlives its state", func(t *testing.T) {
			state := e.authorize(t, keyA)
			if err := e.rdb.PExpire(context.Background(), e.prefix+"state:{"+secret.Hash(state)+"}", 3*time.Second).Err(); err != nil {
				t.Fatal(err)
			}
			uca := e.createUCA(t, keyA, state)
			if ttl := e.pttl(t, "uca:"+secret.Hash(uca)); ttl <= 0 || ttl > 3*time.Second {
				t.Fatalf("UCA PTTL = %v, want at most the state's 3s", ttl)
			}
			c, err := e.conf.GetConfirmation(as(t, ""), &authv1.GetConfirmationRequest{Uca: uca})
			if err != nil || c.GetExpiresIn() < 1 || c.GetExpiresIn() > 3 {
				t.Fatalf("GetConfirmation = %+v, %v; want expires_in of at most 3", c, err)
			}
		}},
		{"state of another key", func(t *testing.T) {
			state := e.authorize(t, keyA)
			_, err := e.auth.CreateUCA(as(t, keyB), &authv1.CreateUCARequest{State: state})
			wantErr(t, err, apierr.InvalidState)
		}},
		{"unknown state", func(t *testing.T) {
			_, err := e.auth.CreateUCA(as(t, keyA), &authv1.CreateUCARequest{State: secret.New("", 32, secret.Alphanumeric)})
			wantErr(t, err, apierr.InvalidState)
		}},
		{"used state", func(t *testing.T) {
			state := e.authorize(t, keyA)
			e.login(t, keyA, state)
			_, err := e.auth.CreateUCA(as(t, keyA), &authv1.CreateUCARequest{State: state})
			wantErr(t, err, apierr.InvalidState)
		}},
		{"missing state", func(t *testing.T) {
			_, err := e.auth.CreateUCA(as(t, keyA), &authv1.CreateUCARequest{})
			wantErr(t, err, apierr.InvalidRequest)
		}},
		{"no API key", func(t *testing.T) {
			_, err := e.auth.CreateUCA(as(t, ""), &authv1.CreateUCARequest{State: e.authorize(t, keyA)})
			wantErr(t, err, apierr.InvalidAPIKey)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

func TestGetConfirmation(t *testing.T) {
	e := newEnv(t, options{})
	alice := e.session(t, aliceID, alicePass)
	tests := []struct {
		name     string
		ctx      func(t *testing.T) context.Context
		wantUser string
	}{
		{"without a session", func(t *testing.T) context.Context { return as(t, "") }, ""},
		{"with a session", func(t *testing.T) context.Context { return browser(t, alice) }, aliceID},
		{"with a forged session", func(t *testing.T) context.Context {
			return as(t, "", wire.Session, "sess_"+secret.New("", 43, secret.Alphanumeric))
		}, ""},
		{"with a malformed session", func(t *testing.T) context.Context {
			return as(t, "", wire.Session, "garbage")
		}, ""},
		{"with a disabled user's session", func(t *testing.T) context.Context {
			bob := e.session(t, bobID, bobPass)
			e.users.setDisabled(bobID, true)
			t.Cleanup(func() { e.users.setDisabled(bobID, false) })
			return browser(t, bob)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx(t)
			uca := e.createUCA(t, keyA, e.authorize(t, keyA))
			c, err := e.conf.GetConfirmation(ctx, &authv1.GetConfirmationRequest{Uca: uca})
			if err != nil {
				t.Fatalf("GetConfirmation: %v", err)
			}
			if c.GetAppName() != "app A" || c.GetExpiresIn() <= 590 || c.GetExpiresIn() > 600 {
				t.Fatalf("GetConfirmation = %+v", c)
			}
			if tt.wantUser == "" {
				if c.User != nil || c.GetCsrfToken() != "" {
					t.Fatalf("user %+v and csrf %q without a valid session", c.GetUser(), c.GetCsrfToken())
				}
				return
			}
			if c.GetUser().GetUserId() != tt.wantUser || c.GetUser().GetId() != 7 || c.GetCsrfToken() != alice.GetCsrfToken() {
				t.Fatalf("user %+v, csrf %q; want %s and the session's csrf", c.GetUser(), c.GetCsrfToken(), tt.wantUser)
			}
		})
	}

	ended := []struct {
		name string
		uca  func(t *testing.T) string
		want apierr.Kind
	}{
		{"unknown UCA", func(*testing.T) string { return "uca_" + secret.New("", 16, secret.Alphanumeric) }, apierr.InvalidCode},
		{"used UCA", func(t *testing.T) string {
			uca := e.createUCA(t, keyA, e.authorize(t, keyA))
			e.generate(t, alice, uca)
			return uca
		}, apierr.InvalidCode},
		{"denied UCA", func(t *testing.T) string {
			uca := e.createUCA(t, keyA, e.authorize(t, keyA))
			if _, err := e.conf.DenyConfirmation(browser(t, alice), &authv1.DenyConfirmationRequest{Uca: uca}); err != nil {
				t.Fatalf("DenyConfirmation: %v", err)
			}
			return uca
		}, apierr.InvalidCode},
		{"expired UCA", func(t *testing.T) string {
			// The UCA is created first and only then given a short life,
			// so no call has to beat its expiry (shortening the state's
			// life to 50 ms first made CreateUCA fail on a loaded machine);
			// the test then waits for Redis to have expired it, however
			// long that takes. "The UCA never outlives its state" covers
			// the lifetime a UCA takes from its state.
			uca := e.createUCA(t, keyA, e.authorize(t, keyA))
			ctx, key := context.Background(), e.prefix+"uca:"+secret.Hash(uca)
			if err := e.rdb.PExpire(ctx, key, time.Millisecond).Err(); err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(10 * time.Second); e.rdb.Exists(ctx, key).Val() != 0; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("Redis kept a UCA 10 s past its 1 ms lifetime")
				}
			}
			return uca
		}, apierr.InvalidCode},
		{"missing UCA", func(*testing.T) string { return "" }, apierr.InvalidRequest},
	}
	for _, tt := range ended {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.conf.GetConfirmation(browser(t, alice), &authv1.GetConfirmationRequest{Uca: tt.uca(t)})
			wantErr(t, err, tt.want)
		})
	}
}

func TestSignIn(t *testing.T) {
	e := newEnv(t, options{})
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"opens a session of the configured lifetime", func(t *testing.T) {
			uca := e.createUCA(t, keyA, e.authorize(t, keyA))
			r := e.signIn(t, uca, aliceID, alicePass)
			if !sessionFormat.MatchString(r.GetSession()) || r.GetCsrfToken() != wire.CSRFToken(r.GetSession()) ||
				r.GetExpiresIn() != int32(sessionTTL/time.Second) || r.GetUser().GetUserId() != aliceID || r.GetUser().GetEmail() != aliceEmail {
				t.Fatalf("SignIn = %+v", r)
			}
			if len(r.GetCsrfToken()) != 32 {
				t.Fatalf("csrf token %q is not 32 characters", r.GetCsrfToken())
			}
			if ttl := e.pttl(t, "session:"+secret.Hash(r.GetSession())); ttl <= sessionTTL-time.Minute || ttl > sessionTTL {
				t.Fatalf("session PTTL = %v, want about %v", ttl, sessionTTL)
			}
		}},
		{"wrong password keeps the UCA", func(t *testing.T) {
			uca := e.createUCA(t, keyA, e.authorize(t, keyA))
			_, err := e.conf.SignIn(as(t, ""), &authv1.SignInRequest{Uca: uca, UserId: aliceID, Password: "wrong"})
			wantErr(t, err, apierr.InvalidCredentials)
			_, err = e.conf.SignIn(as(t, ""), &authv1.SignInRequest{Uca: uca, UserId: "nobody", Password: alicePass})
			wantErr(t, err, apierr.InvalidCredentials)
			e.generate(t, e.signIn(t, uca, aliceID, alicePass), uca)
		}},
		{"unknown UCA is refused before the password is checked", func(t *testing.T) {
			before := e.users.verifies.Load()
			_, err := e.conf.SignIn(as(t, ""), &authv1.SignInRequest{Uca: "uca_" + secret.New("", 16, secret.Alphanumeric), UserId: aliceID, Password: alicePass})
			wantErr(t, err, apierr.InvalidCode)
			if n := e.users.verifies.Load() - before; n != 0 {
				t.Fatalf("password verified %d times without a UCA", n)
			}
		}},
		{"disabled user", func(t *testing.T) {
			e.users.setDisabled(bobID, true)
			t.Cleanup(func() { e.users.setDisabled(bobID, false) })
			uca := e.createUCA(t, keyA, e.authorize(t, keyA))
			_, err := e.conf.SignIn(as(t, ""), &authv1.SignInRequest{Uca: uca, UserId: bobID, Password: bobPass})
			wantErr(t, err, apierr.AccountDisabled)
		}},
		{"missing fields", func(t *testing.T) {
			uca := e.createUCA(t, keyA, e.authorize(t, keyA))
			for _, req := range []*authv1.SignInRequest{
				{UserId: aliceID, Password: alicePass},
				{Uca: uca, Password: alicePass},
				{Uca: uca, UserId: aliceID},
			} {
				_, err := e.conf.SignIn(as(t, ""), req)
				wantErr(t, err, apierr.InvalidRequest)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

func TestGenerateLoginCode(t *testing.T) {
	e := newEnv(t, options{})
	alice := e.session(t, aliceID, alicePass)
	bob := e.session(t, bobID, bobPass)
	newUCA := func(t *testing.T) (state, uca string) {
		state = e.authorize(t, keyA)
		return state, e.createUCA(t, keyA, state)
	}
	t.Run("confirmation consumes the UCA and binds a 5-minute code to its state", func(t *testing.T) {
		state, uca := newUCA(t)
		r, err := e.conf.GenerateLoginCode(browser(t, alice), &authv1.GenerateLoginCodeRequest{Uca: uca})
		if err != nil {
			t.Fatalf("GenerateLoginCode: %v", err)
		}
		if !r.GetSuccess() || r.GetMessage() != "生成登录码成功" || !loginCodeFormat.MatchString(r.GetLoginCode()) || r.GetExpiresIn() != 300 {
			t.Fatalf("GenerateLoginCode = %+v", r)
		}
		key := "logincode:{" + secret.Hash(state) + "}:" + secret.Hash(r.GetLoginCode())
		if ttl := e.pttl(t, key); ttl <= 4*time.Minute || ttl > 5*time.Minute {
			t.Fatalf("login code PTTL = %v, want about 5m", ttl)
		}
		if e.exists(t, "uca", uca) {
			t.Fatal("UCA still stored after confirmation")
		}
		_, err = e.conf.GenerateLoginCode(browser(t, alice), &authv1.GenerateLoginCodeRequest{Uca: uca})
		wantErr(t, err, apierr.InvalidCode)
	})

	refused := []struct {
		name string
		ctx  func(t *testing.T) context.Context
		want apierr.Kind
	}{
		{"without a session", func(t *testing.T) context.Context { return as(t, "") }, apierr.Unauthenticated},
		{"without a session but with a CSRF token", func(t *testing.T) context.Context {
			return as(t, "", wire.CSRF, alice.GetCsrfToken())
		}, apierr.Unauthenticated},
		{"with a forged session", func(t *testing.T) context.Context {
			forged := "sess_" + secret.New("", 43, secret.Alphanumeric)
			return as(t, "", wire.Session, forged, wire.CSRF, wire.CSRFToken(forged))
		}, apierr.Unauthenticated},
		{"without a CSRF token", func(t *testing.T) context.Context {
			return as(t, "", wire.Session, alice.GetSession())
		}, apierr.CSRFFailed},
		{"with a wrong CSRF token", func(t *testing.T) context.Context {
			return as(t, "", wire.Session, alice.GetSession(), wire.CSRF, secret.New("", 32, secret.Hex))
		}, apierr.CSRFFailed},
		{"with another session's CSRF token", func(t *testing.T) context.Context {
			return as(t, "", wire.Session, alice.GetSession(), wire.CSRF, bob.GetCsrfToken())
		}, apierr.CSRFFailed},
		{"for a disabled user", func(t *testing.T) context.Context {
			e.users.setDisabled(bobID, true)
			t.Cleanup(func() { e.users.setDisabled(bobID, false) })
			return browser(t, bob)
		}, apierr.AccountDisabled},
	}
	for _, tt := range refused {
		t.Run(tt.name+" the UCA is refused and kept", func(t *testing.T) {
			_, uca := newUCA(t)
			_, err := e.conf.GenerateLoginCode(tt.ctx(t), &authv1.GenerateLoginCodeRequest{Uca: uca})
			wantErr(t, err, tt.want)
			_, err = e.conf.DenyConfirmation(tt.ctx(t), &authv1.DenyConfirmationRequest{Uca: uca})
			if tt.want == apierr.AccountDisabled {
				// Refusing needs no enabled account.
				if err != nil {
					t.Fatalf("DenyConfirmation by a disabled user: %v", err)
				}
				return
			}
			wantErr(t, err, tt.want)
			if !e.exists(t, "uca", uca) {
				t.Fatal("refused call ended the UCA")
			}
		})
	}

	t.Run("deny ends the UCA", func(t *testing.T) {
		_, uca := newUCA(t)
		r, err := e.conf.DenyConfirmation(browser(t, alice), &authv1.DenyConfirmationRequest{Uca: uca})
		if err != nil || !r.GetSuccess() || r.GetMessage() != "已拒绝授权" {
			t.Fatalf("DenyConfirmation = %+v, %v", r, err)
		}
		_, err = e.conf.GenerateLoginCode(browser(t, alice), &authv1.GenerateLoginCodeRequest{Uca: uca})
		wantErr(t, err, apierr.InvalidCode)
		_, err = e.conf.DenyConfirmation(browser(t, alice), &authv1.DenyConfirmationRequest{Uca: uca})
		wantErr(t, err, apierr.InvalidCode)
	})
	t.Run("unknown or missing UCA", func(t *testing.T) {
		_, err := e.conf.GenerateLoginCode(browser(t, alice), &authv1.GenerateLoginCodeRequest{Uca: "uca_" + secret.New("", 16, secret.Alphanumeric)})
		wantErr(t, err, apierr.InvalidCode)
		_, err = e.conf.GenerateLoginCode(browser(t, alice), &authv1.GenerateLoginCodeRequest{})
		wantErr(t, err, apierr.InvalidRequest)
	})
	t.Run("the codes shown never hold a look-alike", func(t *testing.T) {
		// A code of all 36 characters is free of 0, o, 1, l and i with a
		// chance of (31/36)^10 ≈ 0.22: twenty in a row cannot be luck.
		for range 20 {
			_, uca := newUCA(t)
			if code := e.generate(t, alice, uca); !loginCodeFormat.MatchString(code) || strings.ContainsAny(code, "0o1li") {
				t.Fatalf("login code %q, want 10 of %q", code, secret.LoginCode)
			}
		}
	})
	t.Run("concurrent confirmations of one UCA yield one login code", func(t *testing.T) {
		_, uca := newUCA(t)
		ok, failed := race(16, func() error {
			_, err := e.conf.GenerateLoginCode(browser(t, alice), &authv1.GenerateLoginCodeRequest{Uca: uca})
			return err
		}, apierr.InvalidCode)
		if ok != 1 || failed != 15 {
			t.Fatalf("%d successes, %d invalid_code; want 1 and 15", ok, failed)
		}
	})
}

func TestLoginSafe(t *testing.T) {
	e := newEnv(t, options{})
	loginSafe := func(t *testing.T, key, state, code string) (*authv1.LoginSafeResponse, error) {
		t.Helper()
		return e.auth.LoginSafe(as(t, key), &authv1.LoginSafeRequest{State: state, LoginCode: code})
	}
	wrongCode := func(right string) string {
		for {
			if c := secret.New("", secret.LoginCodeLen, secret.LoginCode); c != right {
				return c
			}
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"the login code and the state buy one authorization code", func(t *testing.T) {
			state, code := e.safeLogin(t, keyA)
			r, err := loginSafe(t, keyA, state, code)
			if err != nil {
				t.Fatalf("LoginSafe: %v", err)
			}
			if !r.GetSuccess() || r.GetMessage() != "登录成功，授权码已生成" || !strings.HasPrefix(r.GetCode(), "code_") || len(r.GetCode()) != 37 {
				t.Fatalf("LoginSafe = %+v", r)
			}
			if u := r.GetUser(); u.GetId() != 7 || u.GetUserId() != aliceID || u.GetUsername() != "Alice" || u.GetEmail() != aliceEmail {
				t.Fatalf("LoginSafe user = %+v", u)
			}
			if e.exists(t, "state", state) || countKeys(t, e, e.prefix+"logincode:{"+secret.Hash(state)+"}:*") != 0 {
				t.Fatal("state or login code still stored")
			}
			_, err = loginSafe(t, keyA, state, code)
			wantErr(t, err, apierr.InvalidState)
			// The code is an ordinary authorization code of that state.
			if tok := e.token(t, keyA, r.GetCode(), state); !strings.HasPrefix(tok, "token_") {
				t.Fatalf("token %q", tok)
			}
		}},
		{"malformed login codes are 400 and not counted", func(t *testing.T) {
			state, code := e.safeLogin(t, keyA)
			for _, bad := range []string{"ABCDEFGHIJ", "abc", "abcdefghijk", "abcde-ghij", "abcde ghij", "ａbcdefghij"} {
				_, err := loginSafe(t, keyA, state, bad)
				wantErr(t, err, apierr.InvalidRequest)
			}
			_, err := loginSafe(t, keyA, state, "")
			wantErr(t, err, apierr.InvalidRequest)
			if _, err := loginSafe(t, keyA, state, code); err != nil {
				t.Fatalf("LoginSafe after malformed attempts: %v", err)
			}
		}},
		{"codes with a look-alike are well-formed wrong answers: five burn the state", func(t *testing.T) {
			// No issued code holds 0, o, 1, l or i, but the documented format
			// allows them: a person's misreading is a wrong code (409,
			// counted), never a 400.
			state, code := e.safeLogin(t, keyA)
			for _, c := range []string{"0o1li0o1li", "abcdefghi1", "0000000000", "llllllllll", "oooooooooo"} {
				_, err := loginSafe(t, keyA, state, c)
				wantErr(t, err, apierr.InvalidCode)
			}
			_, err := loginSafe(t, keyA, state, code)
			wantErr(t, err, apierr.InvalidState)
		}},
		{"four wrong codes leave the state usable", func(t *testing.T) {
			state, code := e.safeLogin(t, keyA)
			for range 4 {
				_, err := loginSafe(t, keyA, state, wrongCode(code))
				wantErr(t, err, apierr.InvalidCode)
			}
			if _, err := loginSafe(t, keyA, state, code); err != nil {
				t.Fatalf("LoginSafe after four wrong codes: %v", err)
			}
		}},
		{"five wrong codes burn the state", func(t *testing.T) {
			state, code := e.safeLogin(t, keyA)
			for range 5 {
				_, err := loginSafe(t, keyA, state, wrongCode(code))
				wantErr(t, err, apierr.InvalidCode)
			}
			_, err := loginSafe(t, keyA, state, code)
			wantErr(t, err, apierr.InvalidState)
		}},
		{"state of another key: refused, not counted", func(t *testing.T) {
			state, code := e.safeLogin(t, keyA)
			for range 6 {
				_, err := loginSafe(t, keyB, state, code)
				wantErr(t, err, apierr.InvalidState)
			}
			if _, err := loginSafe(t, keyA, state, code); err != nil {
				t.Fatalf("LoginSafe by the owner: %v", err)
			}
		}},
		{"login code bound to another key", func(t *testing.T) {
			_, code := e.safeLogin(t, keyA)
			_, err := loginSafe(t, keyB, e.authorize(t, keyB), code)
			wantErr(t, err, apierr.InvalidCode)
		}},
		{"login code bound to another state of the same key", func(t *testing.T) {
			state, code := e.safeLogin(t, keyA)
			_, err := loginSafe(t, keyA, e.authorize(t, keyA), code)
			wantErr(t, err, apierr.InvalidCode)
			if _, err := loginSafe(t, keyA, state, code); err != nil {
				t.Fatalf("LoginSafe with its own state: %v", err)
			}
		}},
		{"unknown or missing state", func(t *testing.T) {
			_, err := loginSafe(t, keyA, secret.New("", 32, secret.Alphanumeric), "abcdefghij")
			wantErr(t, err, apierr.InvalidState)
			_, err = loginSafe(t, keyA, "", "abcdefghij")
			wantErr(t, err, apierr.InvalidRequest)
		}},
		{"user disabled after confirming", func(t *testing.T) {
			state := e.authorize(t, keyA)
			uca := e.createUCA(t, keyA, state)
			code := e.generate(t, e.signIn(t, uca, bobID, bobPass), uca)
			e.users.setDisabled(bobID, true)
			t.Cleanup(func() { e.users.setDisabled(bobID, false) })
			_, err := loginSafe(t, keyA, state, code)
			wantErr(t, err, apierr.AccountDisabled)
		}},
		{"no API key", func(t *testing.T) {
			state, code := e.safeLogin(t, keyA)
			_, err := loginSafe(t, "", state, code)
			wantErr(t, err, apierr.InvalidAPIKey)
		}},
		{"32 concurrent redemptions of one login code: one code", func(t *testing.T) {
			state, code := e.safeLogin(t, keyA)
			var mu sync.Mutex
			var codes []string
			ok, failed := race(32, func() error {
				r, err := e.auth.LoginSafe(as(t, keyA), &authv1.LoginSafeRequest{State: state, LoginCode: code})
				if err == nil {
					mu.Lock()
					codes = append(codes, r.GetCode())
					mu.Unlock()
				}
				return err
			}, apierr.InvalidState)
			if ok != 1 || failed != 31 {
				t.Fatalf("%d successes, %d invalid_state; want 1 and 31", ok, failed)
			}
			if n := countKeys(t, e, e.prefix+"code:{*}"); n < 1 || !e.exists(t, "code", codes[0]) {
				t.Fatalf("the winner's code is not stored (%d codes)", n)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// The whole safe flow leaves nothing usable in Redis or in the logs.
func TestSafeFlowSecrets(t *testing.T) {
	e := newEnv(t, options{})
	state := e.authorize(t, keyA)
	uca := e.createUCA(t, keyA, state)
	s := e.signIn(t, uca, aliceID, alicePass)
	pending := e.createUCA(t, keyA, e.authorize(t, keyA))
	unredeemedState, unredeemed := e.safeLogin(t, keyA)
	code := e.generate(t, s, uca)
	r, err := e.auth.LoginSafe(as(t, keyA), &authv1.LoginSafeRequest{State: state, LoginCode: code})
	if err != nil {
		t.Fatalf("LoginSafe: %v", err)
	}
	tok := e.token(t, keyA, r.GetCode(), state)
	secrets := []string{state, uca, pending, s.GetSession(), s.GetCsrfToken(), code, unredeemedState, unredeemed, r.GetCode(), tok, alicePass}
	e.noSecretsStored(t, secrets...)
	logs := e.logs.String()
	for _, v := range secrets {
		if strings.Contains(logs, v) {
			t.Errorf("logs hold a secret")
		}
	}
}
