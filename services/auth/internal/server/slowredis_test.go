package server_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/redisdb"
	"github.com/moreline/moreid/platform/testenv"
	"github.com/moreline/moreid/platform/testenv/faultproxy"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
)

// Every flow through a Redis whose reply to a consuming script (the
// first evalsha of the step) comes later than go-redis's read timeout:
// go-redis sends the script again, and the step must still succeed with
// its record used exactly once, by this request (on the previous code the
// re-sent script found its own record gone: 408/409, the token revoked).
func TestFlowsThroughSlowRedisReplies(t *testing.T) {
	const readTimeout = 500 * time.Millisecond
	u, err := url.Parse(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	p := faultproxy.New(t, u.Host)
	u.Host = p.Addr
	opts, err := redisdb.Options(u.String(), redisdb.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	// go-redis's retries on, as in production; a known read timeout.
	opts.ReadTimeout, opts.MaxRetries = readTimeout, 1
	slow := redis.NewUniversalClient(opts)
	t.Cleanup(func() { _ = slow.Close() })
	e := newEnv(t, options{redis: slow})

	// late holds the reply to the next consuming script far beyond the
	// read timeout: a hold only makes a reply later, so a slow machine
	// cannot make it arrive in time. A consuming call is the one request
	// that names an attempt marker (":once:"); the throttles' scripts,
	// which run earlier in the same steps, are left alone.
	late := func() { p.DelayMatching(":once:", 1, 3*readTimeout) }
	passwordFlow := func(t *testing.T, slowStep string) string {
		state := e.authorize(t, keyA)
		if slowStep == "login" {
			late()
		}
		code := e.login(t, keyA, state)
		if slowStep == "token" {
			late()
		}
		return e.token(t, keyA, code, state)
	}
	safeFlow := func(t *testing.T, slowStep string) string {
		state := e.authorize(t, keyA)
		uca := e.createUCA(t, keyA, state)
		session := e.signIn(t, uca, aliceID, alicePass)
		if slowStep == "confirm" {
			late()
		}
		loginCode := e.generate(t, session, uca)
		if slowStep == "login_safe" {
			late()
		}
		r, err := e.auth.LoginSafe(as(t, keyA), &authv1.LoginSafeRequest{State: state, LoginCode: loginCode})
		if err != nil {
			t.Fatalf("LoginSafe: %v", err)
		}
		return e.token(t, keyA, r.GetCode(), state)
	}
	// Warm up: every script in Redis's cache, so that the late reply is
	// the script's own and not a NOSCRIPT.
	passwordFlow(t, "")
	safeFlow(t, "")

	tests := []struct {
		name string
		flow func(t *testing.T, slowStep string) string
		step string
	}{
		{"login consuming the state", passwordFlow, "login"},
		{"token redeeming the code", passwordFlow, "token"},
		{"confirmation taking the UCA", safeFlow, "confirm"},
		{"login_safe redeeming the login code", safeFlow, "login_safe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, caught := p.Replies(), p.Matched()
			began := time.Now()
			tok := tt.flow(t, tt.step)
			t.Logf("flow took %v", time.Since(began).Round(time.Millisecond))
			if !e.active(t, keyA, tok) {
				t.Fatal("the flow's token is not active")
			}
			if p.Replies()-before == 0 {
				t.Fatal("nothing went through the proxy")
			}
			if p.Matched()-caught != 1 {
				t.Fatalf("%d consuming calls held back, want 1", p.Matched()-caught)
			}
		})
	}
}
