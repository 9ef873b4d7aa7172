package server_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/secret"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
	"github.com/moreline/moreid/services/auth/internal/oauth"
)

// Client IPs as the gateway reports them.
const (
	ip1 = "203.0.113.1"
	ip2 = "203.0.113.2"
)

// from is a context of key with the gateway's client IP metadata.
func from(t *testing.T, key, ip string) context.Context {
	t.Helper()
	return as(t, key, wire.ClientIP, ip)
}

func (e *env) loginFrom(t *testing.T, ip, userID, password, state string) error {
	t.Helper()
	_, err := e.auth.Login(from(t, keyA, ip), &authv1.LoginRequest{UserId: userID, Password: password, State: state})
	return err
}

// failLogins makes n wrong-password logins for userID from ip, each on a
// fresh state (so that no state burns).
func (e *env) failLogins(t *testing.T, n int, ip, userID string) {
	t.Helper()
	for range n {
		err := e.loginFrom(t, ip, userID, "wrong password", e.authorize(t, keyA))
		wantErr(t, err, apierr.InvalidCredentials)
	}
}

// expire ends every counter matching pattern (under the test's prefix)
// now, as the end of its window would.
func (e *env) expire(t *testing.T, pattern string) {
	t.Helper()
	ctx := context.Background()
	keys, err := e.rdb.Keys(ctx, e.prefix+pattern).Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys %s: %v, %v", pattern, keys, err)
	}
	if err := e.rdb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
}

// retryAfter is the Retry-After a client of the gateway would see.
func retryAfter(t *testing.T, err error) int {
	t.Helper()
	v := apierr.FromStatus(status.Convert(err)).RetryAfter
	n, perr := strconv.Atoi(v)
	if perr != nil {
		t.Fatalf("retry_after %q: %v", v, perr)
	}
	return n
}

// throttledCount reads moreid_throttled_total{limit} from e's metrics.
func (e *env) throttledCount(limit string) float64 {
	return e.metrics.Counter("moreid_throttled_total", "limit", limit)
}

func TestThrottle(t *testing.T) {
	limits := oauth.Limits{PerUser: 3, PerAccount: 6, PerIP: 5, Window: time.Minute}
	wrongCode := func(right string) string {
		for {
			if c := secret.New("", secret.LoginCodeLen, secret.LoginCode); c != right {
				return c
			}
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{"per user and address: at the limit that address is refused unchecked, even the right password", func(t *testing.T, e *env) {
			e.failLogins(t, 3, ip1, aliceID)
			before, metric := e.users.verifies.Load(), e.throttledCount("user")
			wantErr(t, e.loginFrom(t, ip1, aliceID, alicePass, e.authorize(t, keyA)), apierr.RateLimited)
			if n := e.users.verifies.Load() - before; n != 0 {
				t.Fatalf("password verified %d times while throttled", n)
			}
			if got := e.throttledCount("user") - metric; got != 1 {
				t.Fatalf("moreid_throttled_total{limit=user} grew by %v, want 1", got)
			}
			// The user from another address, another user from this one: not concerned.
			if err := e.loginFrom(t, ip2, aliceID, alicePass, e.authorize(t, keyA)); err != nil {
				t.Fatalf("alice from another address: %v", err)
			}
			if err := e.loginFrom(t, ip1, bobID, bobPass, e.authorize(t, keyA)); err != nil {
				t.Fatalf("bob's login: %v", err)
			}
		}},
		{"a right password is no failure", func(t *testing.T, e *env) {
			e.failLogins(t, 2, ip1, aliceID)
			for range 5 {
				if err := e.loginFrom(t, ip1, aliceID, alicePass, e.authorize(t, keyA)); err != nil {
					t.Fatalf("login after 2 failures: %v", err)
				}
			}
			e.failLogins(t, 1, ip1, aliceID)
			wantErr(t, e.loginFrom(t, ip1, aliceID, alicePass, e.authorize(t, keyA)), apierr.RateLimited)
		}},
		{"above the account's ceiling addresses that failed wait, a clean one signs in", func(t *testing.T, e *env) {
			for i := range 3 {
				e.failLogins(t, 2, "198.51.100."+strconv.Itoa(i+1), aliceID)
			}
			before := e.throttledCount("account")
			err := e.loginFrom(t, "198.51.100.1", aliceID, alicePass, e.authorize(t, keyA))
			wantErr(t, err, apierr.RateLimited)
			if n := retryAfter(t, err); n < 55 || n > 60 {
				t.Fatalf("Retry-After %d, want the address's window rest", n)
			}
			if got := e.throttledCount("account") - before; got != 1 {
				t.Fatalf("moreid_throttled_total{limit=account} grew by %v, want 1", got)
			}
			if err := e.loginFrom(t, ip2, aliceID, alicePass, e.authorize(t, keyA)); err != nil {
				t.Fatalf("alice from a clean address: %v", err)
			}
			// A new address gets one guess, then waits.
			e.failLogins(t, 1, "198.51.100.9", aliceID)
			wantErr(t, e.loginFrom(t, "198.51.100.9", aliceID, "wrong", e.authorize(t, keyA)), apierr.RateLimited)
		}},
		{"per IP: any user from that IP is refused, other IPs are not", func(t *testing.T, e *env) {
			for i := range 5 {
				e.failLogins(t, 1, ip1, "guess"+strconv.Itoa(i))
			}
			before := e.throttledCount("ip")
			wantErr(t, e.loginFrom(t, ip1, bobID, bobPass, e.authorize(t, keyA)), apierr.RateLimited)
			if got := e.throttledCount("ip") - before; got != 1 {
				t.Fatalf("moreid_throttled_total{limit=ip} grew by %v, want 1", got)
			}
			if err := e.loginFrom(t, ip2, bobID, bobPass, e.authorize(t, keyA)); err != nil {
				t.Fatalf("login from another IP: %v", err)
			}
		}},
		{"per IP: IPv6 addresses count per /64", func(t *testing.T, e *env) {
			for i := range 5 {
				e.failLogins(t, 1, "2001:db8::"+strconv.Itoa(i+1), "guess"+strconv.Itoa(i))
			}
			wantErr(t, e.loginFrom(t, "2001:db8::ffff", bobID, bobPass, e.authorize(t, keyA)), apierr.RateLimited)
			if err := e.loginFrom(t, "2001:db8:0:1::1", bobID, bobPass, e.authorize(t, keyA)); err != nil {
				t.Fatalf("login from another /64: %v", err)
			}
		}},
		{"Retry-After is the time left in the window", func(t *testing.T, e *env) {
			e.failLogins(t, 3, ip1, aliceID)
			err := e.loginFrom(t, ip1, aliceID, alicePass, e.authorize(t, keyA))
			wantErr(t, err, apierr.RateLimited)
			if n := retryAfter(t, err); n < 55 || n > 60 {
				t.Fatalf("Retry-After %d, want the minute's remainder", n)
			}
		}},
		{"the limit ends with its window", func(t *testing.T, e *env) {
			e.failLogins(t, 3, ip1, aliceID)
			wantErr(t, e.loginFrom(t, ip1, aliceID, alicePass, e.authorize(t, keyA)), apierr.RateLimited)
			// Redis ends the windows (as their TTL would): no sleep racing them.
			e.expire(t, "fail:*")
			if err := e.loginFrom(t, ip1, aliceID, alicePass, e.authorize(t, keyA)); err != nil {
				t.Fatalf("login after the window: %v", err)
			}
		}},
		{"wrong passwords on the confirmation page count for the user and /login", func(t *testing.T, e *env) {
			uca := e.createUCA(t, keyA, e.authorize(t, keyA))
			for range 3 {
				_, err := e.conf.SignIn(from(t, "", ip1), &authv1.SignInRequest{Uca: uca, UserId: aliceID, Password: "wrong"})
				wantErr(t, err, apierr.InvalidCredentials)
			}
			_, err := e.conf.SignIn(from(t, "", ip1), &authv1.SignInRequest{Uca: e.createUCA(t, keyA, e.authorize(t, keyA)), UserId: aliceID, Password: alicePass})
			wantErr(t, err, apierr.RateLimited)
			if n := retryAfter(t, err); n < 1 || n > 60 {
				t.Fatalf("Retry-After %d", n)
			}
			wantErr(t, e.loginFrom(t, ip1, aliceID, alicePass, e.authorize(t, keyA)), apierr.RateLimited)
			// From elsewhere the same page still signs alice in.
			if _, err := e.conf.SignIn(from(t, "", ip2), &authv1.SignInRequest{Uca: uca, UserId: aliceID, Password: alicePass}); err != nil {
				t.Fatalf("SignIn from another address: %v", err)
			}
		}},
		{"five wrong passwords end sign-ins on a page", func(t *testing.T, e *env) {
			uca := e.createUCA(t, keyA, e.authorize(t, keyA))
			for i := range 5 {
				_, err := e.conf.SignIn(from(t, "", "198.51.100."+strconv.Itoa(i+1)), &authv1.SignInRequest{Uca: uca, UserId: "guess" + strconv.Itoa(i), Password: "wrong"})
				wantErr(t, err, apierr.InvalidCredentials)
			}
			_, err := e.conf.SignIn(from(t, "", ip2), &authv1.SignInRequest{Uca: uca, UserId: aliceID, Password: alicePass})
			wantErr(t, err, apierr.RateLimited)
		}},
		{"wrong login codes count per IP", func(t *testing.T, e *env) {
			state, code := e.safeLogin(t, keyA)
			other, _ := e.safeLogin(t, keyA)
			for i := range 5 {
				// Two states, so that neither burns.
				st := state
				if i%2 == 1 {
					st = other
				}
				_, err := e.auth.LoginSafe(from(t, keyA, ip1), &authv1.LoginSafeRequest{State: st, LoginCode: wrongCode(code)})
				wantErr(t, err, apierr.InvalidCode)
			}
			_, err := e.auth.LoginSafe(from(t, keyA, ip1), &authv1.LoginSafeRequest{State: state, LoginCode: code})
			wantErr(t, err, apierr.RateLimited)
			wantErr(t, e.loginFrom(t, ip1, bobID, bobPass, e.authorize(t, keyA)), apierr.RateLimited)
			// The refusal consumed nothing: from elsewhere the code works.
			if _, err := e.auth.LoginSafe(from(t, keyA, ip2), &authv1.LoginSafeRequest{State: state, LoginCode: code}); err != nil {
				t.Fatalf("LoginSafe from another IP: %v", err)
			}
		}},
		{"counters are shared by every instance", func(t *testing.T, e *env) {
			twin := e.twin(t)
			e.failLogins(t, 2, ip1, aliceID)
			twin.failLogins(t, 1, ip1, aliceID)
			wantErr(t, e.loginFrom(t, ip1, aliceID, alicePass, e.authorize(t, keyA)), apierr.RateLimited)
			wantErr(t, twin.loginFrom(t, ip1, aliceID, alicePass, twin.authorize(t, keyA)), apierr.RateLimited)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, newEnv(t, options{limits: limits}))
		})
	}
}

// Nobody can lock a user out from elsewhere: while an attacker guesses from
// other addresses, through other apps and pages, beyond the per-user limit
// and beyond the account's ceiling, the victim's right password from an
// address that has not failed signs in.
func TestNoLockout(t *testing.T) {
	for _, guesses := range []int{12, 130} {
		t.Run(strconv.Itoa(guesses)+" guesses", func(t *testing.T) {
			e := newEnv(t, options{})
			states := make([]string, guesses)
			ucas := make([]string, guesses)
			for i := range guesses {
				key := []string{keyA, keyB}[i%2]
				states[i] = e.authorize(t, key)
				if i%3 == 0 {
					ucas[i] = e.createUCA(t, key, states[i])
				}
			}
			// Ten addresses' worth of guesses each at most: every one is checked.
			got := burst(guesses, func(i int) error {
				ip := "198.51.100." + strconv.Itoa(i/oauth.DefaultLimits.PerUser+1)
				if ucas[i] != "" {
					_, err := e.conf.SignIn(from(t, "", ip), &authv1.SignInRequest{Uca: ucas[i], UserId: aliceID, Password: "guess " + strconv.Itoa(i)})
					return err
				}
				key := []string{keyA, keyB}[i%2]
				_, err := e.auth.Login(from(t, key, ip), &authv1.LoginRequest{UserId: aliceID, Password: "guess " + strconv.Itoa(i), State: states[i]})
				return err
			})
			t.Logf("attacker's answers %v", got)
			addresses := (guesses + oauth.DefaultLimits.PerUser - 1) / oauth.DefaultLimits.PerUser
			if n := got[apierr.InvalidCredentials]; n < 10 || n > oauth.DefaultLimits.PerAccount+addresses {
				t.Fatalf("%d guesses checked; want at least 10, at most the ceiling and one per address", n)
			}
			if err := e.loginFrom(t, ip2, aliceID, alicePass, e.authorize(t, keyA)); err != nil {
				t.Fatalf("the victim's login from a clean address: %v", err)
			}
			uca := e.createUCA(t, keyB, e.authorize(t, keyB))
			if _, err := e.conf.SignIn(from(t, "", ip2), &authv1.SignInRequest{Uca: uca, UserId: aliceID, Password: alicePass}); err != nil {
				t.Fatalf("the victim's sign-in on the page from a clean address: %v", err)
			}
		})
	}
}

// Five failed password logins on one state burn it, as five wrong login
// codes do.
func TestStateBurnedByWrongPasswords(t *testing.T) {
	e := newEnv(t, options{})
	tests := []struct {
		name      string
		failures  int
		wantAfter apierr.Kind // "" for success
	}{
		{"four wrong passwords leave the state", 4, ""},
		{"the fifth burns it", 5, apierr.InvalidState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := e.authorize(t, keyA)
			before := e.throttledCount("state")
			for i := range tt.failures {
				// Several user_ids, so that no per-user limit is reached.
				err := e.loginFrom(t, ip1, "guess"+strconv.Itoa(i), alicePass, state)
				wantErr(t, err, apierr.InvalidCredentials)
			}
			err := e.loginFrom(t, ip1, aliceID, alicePass, state)
			if tt.wantAfter == "" {
				if err != nil {
					t.Fatalf("login: %v", err)
				}
				return
			}
			wantErr(t, err, tt.wantAfter)
			if e.exists(t, "state", state) {
				t.Fatal("burned state still stored")
			}
			if got := e.throttledCount("state") - before; got != 1 {
				t.Fatalf("moreid_throttled_total{limit=state} grew by %v, want 1", got)
			}
		})
	}
}
