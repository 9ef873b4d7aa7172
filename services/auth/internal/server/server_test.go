package server_test

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/grpcx/tlstest"
	"github.com/moreline/moreid/platform/secret"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

func TestPasswordFlow(t *testing.T) {
	e := newEnv(t, options{})

	a, err := e.auth.Authorize(as(t, keyA), &authv1.AuthorizeRequest{})
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	if !a.GetSuccess() || a.GetMessage() != "授权初始化成功" || len(a.GetState()) != 32 {
		t.Fatalf("Authorize = %+v", a)
	}

	l, err := e.auth.Login(as(t, keyA), &authv1.LoginRequest{UserId: aliceID, Password: alicePass, State: a.GetState()})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if !l.GetSuccess() || l.GetMessage() != "登录成功" || !strings.HasPrefix(l.GetCode(), "code_") || len(l.GetCode()) != 37 {
		t.Fatalf("Login = %+v", l)
	}
	u := l.GetUser()
	if u.GetId() != 7 || u.GetUsername() != "Alice" || u.GetUserId() != aliceID || u.GetEmail() != aliceEmail {
		t.Fatalf("Login user = %+v", u)
	}

	tk, err := e.auth.Token(as(t, keyA), &authv1.TokenRequest{Code: l.GetCode(), State: a.GetState()})
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if !tk.GetSuccess() || tk.GetMessage() != "获取访问令牌成功" || tk.GetTokenType() != "Bearer" ||
		tk.GetExpiresIn() != int32(tokenTTL/time.Second) ||
		!strings.HasPrefix(tk.GetAccessToken(), "token_") || len(tk.GetAccessToken()) != 62 {
		t.Fatalf("Token = %+v", tk)
	}

	p, err := e.auth.GetPublicProfile(as(t, keyB), &authv1.GetPublicProfileRequest{UserId: aliceID})
	if err != nil {
		t.Fatalf("GetPublicProfile: %v", err)
	}
	if !p.GetSuccess() || p.GetMessage() != "获取用户信息成功" || p.GetUser().GetUsername() != "Alice" ||
		p.GetUser().GetAvatarUrl() != "https://example.com/a.png" {
		t.Fatalf("GetPublicProfile = %+v", p)
	}

	t.Run("records live in Redis with native TTLs", func(t *testing.T) {
		ctx := context.Background()
		ttl, err := e.rdb.PTTL(ctx, e.prefix+"token:"+secret.Hash(tk.GetAccessToken())).Result()
		if err != nil || ttl <= tokenTTL-time.Minute || ttl > tokenTTL {
			t.Fatalf("token PTTL = %v, %v; want about %v", ttl, err, tokenTTL)
		}
		marker := e.prefix + "code:{" + secret.Hash(l.GetCode()) + "}:used"
		ttl, err = e.rdb.PTTL(ctx, marker).Result()
		if err != nil || ttl <= 9*time.Minute || ttl > 10*time.Minute {
			t.Fatalf("code marker PTTL = %v, %v; want about 10m", ttl, err)
		}
		if e.exists(t, "state", a.GetState()) || e.exists(t, "code", l.GetCode()) {
			t.Fatal("state or code still stored after use")
		}
		fresh := e.authorize(t, keyA)
		ttl, err = e.rdb.PTTL(ctx, e.prefix+"state:{"+secret.Hash(fresh)+"}").Result()
		if err != nil || ttl <= 9*time.Minute || ttl > 10*time.Minute {
			t.Fatalf("state PTTL = %v, %v; want about 10m", ttl, err)
		}
		code := e.login(t, keyA, e.authorize(t, keyA))
		ttl, err = e.rdb.PTTL(ctx, e.prefix+"code:{"+secret.Hash(code)+"}").Result()
		if err != nil || ttl <= 9*time.Minute || ttl > 10*time.Minute {
			t.Fatalf("code PTTL = %v, %v; want about 10m", ttl, err)
		}
	})

	t.Run("no usable secret in Redis or in the logs", func(t *testing.T) {
		secrets := []string{a.GetState(), l.GetCode(), tk.GetAccessToken(), alicePass, keyA, keyB}
		e.noSecretsStored(t, secrets...)
		logs := e.logs.String()
		if logs == "" {
			t.Fatal("no access log written")
		}
		for _, s := range secrets {
			if strings.Contains(logs, s) {
				t.Errorf("logs hold a secret")
			}
		}
	})
}

func TestLoginState(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{"state is single-use", func(t *testing.T, e *env) {
			state := e.authorize(t, keyA)
			e.login(t, keyA, state)
			_, err := e.auth.Login(as(t, keyA), &authv1.LoginRequest{UserId: aliceID, Password: alicePass, State: state})
			wantErr(t, err, apierr.InvalidState)
		}},
		{"unknown state", func(t *testing.T, e *env) {
			_, err := e.auth.Login(as(t, keyA), &authv1.LoginRequest{UserId: aliceID, Password: alicePass, State: secret.New("", 32, secret.Alphanumeric)})
			wantErr(t, err, apierr.InvalidState)
		}},
		{"state of another key is refused before the password is checked, and stays usable", func(t *testing.T, e *env) {
			state := e.authorize(t, keyA)
			before := e.users.verifies.Load()
			_, err := e.auth.Login(as(t, keyB), &authv1.LoginRequest{UserId: aliceID, Password: alicePass, State: state})
			wantErr(t, err, apierr.InvalidState)
			if got := e.users.verifies.Load() - before; got != 0 {
				t.Fatalf("password verified %d times for a foreign state", got)
			}
			e.login(t, keyA, state)
		}},
		{"wrong password keeps the state", func(t *testing.T, e *env) {
			state := e.authorize(t, keyA)
			_, err := e.auth.Login(as(t, keyA), &authv1.LoginRequest{UserId: aliceID, Password: "wrong", State: state})
			wantErr(t, err, apierr.InvalidCredentials)
			_, err = e.auth.Login(as(t, keyA), &authv1.LoginRequest{UserId: "nobody", Password: alicePass, State: state})
			wantErr(t, err, apierr.InvalidCredentials)
			e.login(t, keyA, state)
		}},
		{"key without password login", func(t *testing.T, e *env) {
			state := e.authorize(t, keyNoPass)
			_, err := e.auth.Login(as(t, keyNoPass), &authv1.LoginRequest{UserId: aliceID, Password: alicePass, State: state})
			wantErr(t, err, apierr.PasswordLoginDisabled)
			if !e.exists(t, "state", state) {
				t.Fatal("refused login consumed the state")
			}
		}},
		{"concurrent logins on one state yield one code", func(t *testing.T, e *env) {
			state := e.authorize(t, keyA)
			ok, failed := race(16, func() error {
				_, err := e.auth.Login(as(t, keyA), &authv1.LoginRequest{UserId: aliceID, Password: alicePass, State: state})
				return err
			}, apierr.InvalidState)
			if ok != 1 || failed != 15 {
				t.Fatalf("%d successes, %d invalid_state; want 1 and 15", ok, failed)
			}
		}},
	}
	e := newEnv(t, options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, e) })
	}
}

func TestRequestValidation(t *testing.T) {
	e := newEnv(t, options{})
	state := e.authorize(t, keyA)
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name  string
		call  func(ctx context.Context) error
		field string
	}{
		{"login without user_id", func(ctx context.Context) error {
			_, err := e.auth.Login(ctx, &authv1.LoginRequest{Password: alicePass, State: state})
			return err
		}, "user_id"},
		{"login without password", func(ctx context.Context) error {
			_, err := e.auth.Login(ctx, &authv1.LoginRequest{UserId: aliceID, State: state})
			return err
		}, "password"},
		{"login without state", func(ctx context.Context) error {
			_, err := e.auth.Login(ctx, &authv1.LoginRequest{UserId: aliceID, Password: alicePass})
			return err
		}, "state"},
		{"login with a long user_id", func(ctx context.Context) error {
			_, err := e.auth.Login(ctx, &authv1.LoginRequest{UserId: long(65), Password: alicePass, State: state})
			return err
		}, "user_id"},
		{"login with a long password", func(ctx context.Context) error {
			_, err := e.auth.Login(ctx, &authv1.LoginRequest{UserId: aliceID, Password: long(1025), State: state})
			return err
		}, "password"},
		{"login with a long state", func(ctx context.Context) error {
			_, err := e.auth.Login(ctx, &authv1.LoginRequest{UserId: aliceID, Password: alicePass, State: long(129)})
			return err
		}, "state"},
		{"token without code", func(ctx context.Context) error {
			_, err := e.auth.Token(ctx, &authv1.TokenRequest{State: state})
			return err
		}, "code"},
		{"token without state", func(ctx context.Context) error {
			_, err := e.auth.Token(ctx, &authv1.TokenRequest{Code: "code_x"})
			return err
		}, "state"},
		{"profile without user_id", func(ctx context.Context) error {
			_, err := e.auth.GetPublicProfile(ctx, &authv1.GetPublicProfileRequest{})
			return err
		}, "user_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(as(t, keyA))
			wantErr(t, err, apierr.InvalidRequest)
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tt.field) {
				t.Fatalf("message %q does not name %s", msg, tt.field)
			}
		})
	}
	t.Run("a user_id of 64 characters is accepted, one of 64 multi-byte characters is not (platform/account)", func(t *testing.T) {
		_, err := e.auth.GetPublicProfile(as(t, keyA), &authv1.GetPublicProfileRequest{UserId: long(64)})
		wantErr(t, err, apierr.NotFound)
		_, err = e.auth.GetPublicProfile(as(t, keyA), &authv1.GetPublicProfileRequest{UserId: strings.Repeat("用", 64)})
		wantErr(t, err, apierr.InvalidRequest)
	})
	t.Run("invalid requests leave the state usable", func(t *testing.T) {
		e.login(t, keyA, state)
	})
}

func TestToken(t *testing.T) {
	e := newEnv(t, options{})
	issue := func(t *testing.T) (state, code string) {
		state = e.authorize(t, keyA)
		return state, e.login(t, keyA, state)
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"code with another key is refused and stays redeemable", func(t *testing.T) {
			state, code := issue(t)
			_, err := e.auth.Token(as(t, keyB), &authv1.TokenRequest{Code: code, State: state})
			wantErr(t, err, apierr.InvalidCode)
			e.token(t, keyA, code, state)
		}},
		{"code with another state is refused and stays redeemable", func(t *testing.T) {
			state, code := issue(t)
			other := e.authorize(t, keyA)
			_, err := e.auth.Token(as(t, keyA), &authv1.TokenRequest{Code: code, State: other})
			wantErr(t, err, apierr.InvalidCode)
			e.token(t, keyA, code, state)
		}},
		{"unknown code", func(t *testing.T) {
			state := e.authorize(t, keyA)
			_, err := e.auth.Token(as(t, keyA), &authv1.TokenRequest{Code: "code_" + secret.New("", 32, secret.Alphanumeric), State: state})
			wantErr(t, err, apierr.InvalidCode)
		}},
		{"second redemption is refused and revokes the first token", func(t *testing.T) {
			state, code := issue(t)
			token := e.token(t, keyA, code, state)
			if !e.exists(t, "token", token) {
				t.Fatal("issued token not stored")
			}
			_, err := e.auth.Token(as(t, keyA), &authv1.TokenRequest{Code: code, State: state})
			wantErr(t, err, apierr.InvalidCode)
			if e.exists(t, "token", token) {
				t.Fatal("token issued from a replayed code still stored")
			}
		}},
		{"64 concurrent redemptions: one token", func(t *testing.T) {
			state, code := issue(t)
			before := countKeys(t, e, e.prefix+"token:*")
			var mu sync.Mutex
			var tokens []string
			ok, failed := race(64, func() error {
				r, err := e.auth.Token(as(t, keyA), &authv1.TokenRequest{Code: code, State: state})
				if err == nil {
					mu.Lock()
					tokens = append(tokens, r.GetAccessToken())
					mu.Unlock()
				}
				return err
			}, apierr.InvalidCode)
			if ok != 1 || failed != 63 {
				t.Fatalf("%d successes, %d invalid_code; want 1 and 63", ok, failed)
			}
			// Every stored token must be the one handed out, if any: the
			// losers' fresh tokens are gone. (The winner's is revoked too
			// when a loser saw the used marker: the code was presented
			// more than once.)
			n := countKeys(t, e, e.prefix+"token:*") - before
			if n < 0 || n > 1 || (n == 1 && !e.exists(t, "token", tokens[0])) {
				t.Fatalf("%d token records after the race", n)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

func TestGetPublicProfileUnknownUser(t *testing.T) {
	e := newEnv(t, options{})
	_, err := e.auth.GetPublicProfile(as(t, keyA), &authv1.GetPublicProfileRequest{UserId: "nobody"})
	wantErr(t, err, apierr.NotFound)
}

func TestAPIKey(t *testing.T) {
	e := newEnv(t, options{})
	tests := []struct {
		name string
		ctx  context.Context
		want apierr.Kind
	}{
		{"missing x-api-key", as(t, ""), apierr.InvalidAPIKey},
		{"empty x-api-key", as(t, "", wire.APIKey, ""), apierr.InvalidAPIKey},
		{"unknown key", as(t, "ml_"+secret.New("", 64, secret.Hex)), apierr.InvalidAPIKey},
		{"client IP outside the whitelist", as(t, keyListed, wire.ClientIP, "198.51.100.1"), apierr.IPNotAllowed},
		{"malformed client IP from the gateway", as(t, keyA, wire.ClientIP, "not-an-ip"), apierr.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.auth.Authorize(tt.ctx, &authv1.AuthorizeRequest{})
			wantErr(t, err, tt.want)
			_, err = e.auth.GetPublicProfile(tt.ctx, &authv1.GetPublicProfileRequest{UserId: aliceID})
			wantErr(t, err, tt.want)
		})
	}
	t.Run("client IP inside the whitelist", func(t *testing.T) {
		if _, err := e.auth.Authorize(as(t, keyListed, wire.ClientIP, "203.0.113.9"), &authv1.AuthorizeRequest{}); err != nil {
			t.Fatalf("Authorize: %v", err)
		}
	})
	t.Run("health needs no key", func(t *testing.T) {
		r, err := e.health.Check(as(t, ""), &healthpb.HealthCheckRequest{})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health = %v, %v", r, err)
		}
	})
}

func TestClientIP(t *testing.T) {
	tests := []struct {
		name     string
		gateways []netip.Prefix
		header   string
		want     string
	}{
		{"believed from a gateway peer", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "203.0.113.7", "203.0.113.7"},
		{"IPv6 from a gateway peer", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, "2001:db8::1", "2001:db8::1"},
		{"ignored from any other peer", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "203.0.113.7", "127.0.0.1"},
		{"peer address without the header", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, options{gateways: tt.gateways})
			var md []string
			if tt.header != "" {
				md = []string{wire.ClientIP, tt.header}
			}
			if _, err := e.auth.Authorize(as(t, keyA, md...), &authv1.AuthorizeRequest{}); err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if ips := e.keys.clientIPs(); len(ips) != 1 || ips[0] != tt.want {
				t.Fatalf("ValidateKey saw client IPs %v, want [%s]", ips, tt.want)
			}
		})
	}
	t.Run("whitelist is not bypassed by a forged header from outside", func(t *testing.T) {
		e := newEnv(t, options{gateways: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
		_, err := e.auth.Authorize(as(t, keyListed, wire.ClientIP, "203.0.113.9"), &authv1.AuthorizeRequest{})
		wantErr(t, err, apierr.IPNotAllowed)
	})
}

// awaitRefusal calls Authorize with the revoked key until the key cache's
// entry for it lapses and the revocation is answered.
func (e *env) awaitRefusal(t *testing.T, key string) {
	t.Helper()
	eventually(t, "the revoked key refused", func() bool {
		_, err := e.auth.Authorize(as(t, key), &authv1.AuthorizeRequest{})
		if err == nil {
			return false
		}
		wantErr(t, err, apierr.InvalidAPIKey)
		return true
	})
}

func TestKeyCache(t *testing.T) {
	e := newEnv(t, options{})
	const calls = 20
	for range calls {
		if _, err := e.auth.Authorize(as(t, keyA), &authv1.AuthorizeRequest{}); err != nil {
			t.Fatalf("Authorize: %v", err)
		}
	}
	if n := e.keys.calls.Load(); n >= calls {
		t.Fatalf("%d ValidateKey calls for %d requests: nothing cached", n, calls)
	}

	e.keys.revoke(keyA)
	e.awaitRefusal(t, keyA)
	// The refusal is cached too, and stays a refusal.
	before := e.keys.calls.Load()
	for range 5 {
		_, err := e.auth.Authorize(as(t, keyA), &authv1.AuthorizeRequest{})
		wantErr(t, err, apierr.InvalidAPIKey)
	}
	if n := e.keys.calls.Load() - before; n >= 5 {
		t.Fatalf("%d ValidateKey calls for 5 refused requests: refusal not cached", n)
	}
}

func TestRedisDown(t *testing.T) {
	down := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:       []string{"127.0.0.1:1"},
		DB:          15,
		DialTimeout: 500 * time.Millisecond,
		MaxRetries:  1,
	})
	t.Cleanup(func() { _ = down.Close() })
	e := newEnv(t, options{redis: down})
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"authorize", func(ctx context.Context) error {
			_, err := e.auth.Authorize(ctx, &authv1.AuthorizeRequest{})
			return err
		}},
		{"login", func(ctx context.Context) error {
			_, err := e.auth.Login(ctx, &authv1.LoginRequest{UserId: aliceID, Password: alicePass, State: "s"})
			return err
		}},
		{"token", func(ctx context.Context) error {
			_, err := e.auth.Token(ctx, &authv1.TokenRequest{Code: "code_x", State: "s"})
			return err
		}},
		{"create uca", func(ctx context.Context) error {
			_, err := e.auth.CreateUCA(ctx, &authv1.CreateUCARequest{State: "s"})
			return err
		}},
		{"login safe", func(ctx context.Context) error {
			_, err := e.auth.LoginSafe(ctx, &authv1.LoginSafeRequest{State: "s", LoginCode: "abcdefghij"})
			return err
		}},
		{"get confirmation", func(ctx context.Context) error {
			_, err := e.conf.GetConfirmation(ctx, &authv1.GetConfirmationRequest{Uca: "uca_x"})
			return err
		}},
		// An unreachable store is no verdict on the token: not "inactive".
		{"introspect token", func(ctx context.Context) error {
			_, err := e.tokens.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: "token_" + secret.New("", 56, secret.Alphanumeric)})
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			err := c.call(as(t, keyA))
			wantErr(t, err, apierr.Unavailable)
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %v to fail", d)
			}
		})
	}
	t.Run("health reports not serving", func(t *testing.T) {
		r, err := e.health.Check(as(t, ""), &healthpb.HealthCheckRequest{Service: "redis"})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("health = %v, %v", r, err)
		}
	})
}

// race runs call n times at once and counts successes and failures of kind.
func race(n int, call func() error, kind apierr.Kind) (ok, failed int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			err := call()
			mu.Lock()
			defer mu.Unlock()
			st := status.Convert(err)
			switch {
			case err == nil:
				ok++
			case st.Code() == apierr.ToStatus(apierr.New(kind)).Code() && reason(st) == string(kind):
				failed++
			}
		})
	}
	close(start)
	wg.Wait()
	return ok, failed
}

func countKeys(t *testing.T, e *env, pattern string) int {
	t.Helper()
	ctx := context.Background()
	iter := e.rdb.Scan(ctx, 0, pattern, 100).Iterator()
	n := 0
	for iter.Next(ctx) {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("scan: %v", err)
	}
	return n
}

// TestClientIPNeedsTheGatewayCertificate: once internal callers share the
// gateways' network (MOREID_GATEWAY_CIDRS) and reach auth over mutual TLS,
// only a peer whose certificate names a gateway (MOREID_GATEWAY_NAMES) may
// set the client IP; another component's certificate cannot forge one to
// pass a whitelist.
func TestClientIPNeedsTheGatewayCertificate(t *testing.T) {
	pki := tlstest.New(t)
	e := newEnv(t, options{pki: pki, gatewayNames: []string{"moreid-gateway"}})
	tests := []struct {
		name string
		pair tlstest.Pair
		want apierr.Kind // of a whitelisted key (203.0.113.0/24) claiming 203.0.113.9
	}{
		{"the gateway's certificate", pki.Gateway, ""},
		{"another component's certificate", pki.Component, apierr.IPNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := authv1.NewAuthServiceClient(e.dialTLS(t, tt.pair))
			_, err := auth.Authorize(as(t, keyListed, wire.ClientIP, "203.0.113.9"), &authv1.AuthorizeRequest{})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Authorize: %v", err)
				}
				return
			}
			wantErr(t, err, tt.want)
		})
	}
}
