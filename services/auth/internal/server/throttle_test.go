package server_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/secret"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/services/auth/internal/oauth"
	"github.com/moreline/moreid/services/auth/internal/server"
)

// Client IPs as the gateway reports them.
const (
	ip1 = "203.0.113.1"
	ip2 = "203.0.113.2"
)

// from is a context of key with the gateway's client IP metadata.
func from(t *testing.T, key, ip string) context.Context {
	t.Helper()
	return as(t, key, server.ClientIPMetadata, ip)
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

// throttledCount reads moreid_throttled_total{limit} from the process's
// metrics.
func throttledCount(t *testing.T, limit string) float64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != "moreid_throttled_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "limit" && l.GetValue() == limit {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestThrottle(t *testing.T) {
	limits := oauth.Limits{PerUser: 3, PerIP: 5, Window: time.Minute}
	wrongCode := func(right string) string {
		for {
			if c := secret.New("", 10, secret.LowerAlnum); c != right {
				return c
			}
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{"per user: at the limit even the correct password is refused, from any IP, unchecked", func(t *testing.T, e *env) {
			e.failLogins(t, 3, ip1, aliceID)
			before, metric := e.users.verifies.Load(), throttledCount(t, "user")
			err := e.loginFrom(t, ip2, aliceID, alicePass, e.authorize(t, keyA))
			wantErr(t, err, apierr.RateLimited)
			if n := e.users.verifies.Load() - before; n != 0 {
				t.Fatalf("password verified %d times while throttled", n)
			}
			if got := throttledCount(t, "user") - metric; got != 1 {
				t.Fatalf("moreid_throttled_total{limit=user} grew by %v, want 1", got)
			}
			// Another user from the same IP is not concerned.
			if err := e.loginFrom(t, ip1, bobID, bobPass, e.authorize(t, keyA)); err != nil {
				t.Fatalf("bob's login: %v", err)
			}
		}},
		{"per user: below the limit the correct password works", func(t *testing.T, e *env) {
			e.failLogins(t, 2, ip1, aliceID)
			if err := e.loginFrom(t, ip1, aliceID, alicePass, e.authorize(t, keyA)); err != nil {
				t.Fatalf("login after 2 failures: %v", err)
			}
		}},
		{"per user: a success does not reset the count", func(t *testing.T, e *env) {
			e.failLogins(t, 2, ip1, aliceID)
			if err := e.loginFrom(t, ip1, aliceID, alicePass, e.authorize(t, keyA)); err != nil {
				t.Fatalf("login: %v", err)
			}
			e.failLogins(t, 1, ip2, aliceID)
			wantErr(t, e.loginFrom(t, ip2, aliceID, alicePass, e.authorize(t, keyA)), apierr.RateLimited)
		}},
		{"per IP: any user from that IP is refused, other IPs are not", func(t *testing.T, e *env) {
			for i := range 5 {
				e.failLogins(t, 1, ip1, "guess"+strconv.Itoa(i))
			}
			before := throttledCount(t, "ip")
			wantErr(t, e.loginFrom(t, ip1, bobID, bobPass, e.authorize(t, keyA)), apierr.RateLimited)
			if got := throttledCount(t, "ip") - before; got != 1 {
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
		{"wrong passwords on the confirmation page count for the user and /login", func(t *testing.T, e *env) {
			uca := e.createUCA(t, keyA, e.authorize(t, keyA))
			for range 3 {
				_, err := e.conf.SignIn(from(t, "", ip1), &authv1.SignInRequest{Uca: uca, UserId: aliceID, Password: "wrong"})
				wantErr(t, err, apierr.InvalidCredentials)
			}
			_, err := e.conf.SignIn(from(t, "", ip2), &authv1.SignInRequest{Uca: uca, UserId: aliceID, Password: alicePass})
			wantErr(t, err, apierr.RateLimited)
			if n := retryAfter(t, err); n < 1 || n > 60 {
				t.Fatalf("Retry-After %d", n)
			}
			wantErr(t, e.loginFrom(t, ip2, aliceID, alicePass, e.authorize(t, keyA)), apierr.RateLimited)
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
			twin.failLogins(t, 1, ip2, aliceID)
			wantErr(t, e.loginFrom(t, ip2, aliceID, alicePass, e.authorize(t, keyA)), apierr.RateLimited)
			wantErr(t, twin.loginFrom(t, ip1, aliceID, alicePass, twin.authorize(t, keyA)), apierr.RateLimited)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, newEnv(t, options{limits: limits}))
		})
	}

	t.Run("the limit ends with its window", func(t *testing.T) {
		e := newEnv(t, options{limits: oauth.Limits{PerUser: 2, PerIP: 50, Window: time.Second}})
		e.failLogins(t, 2, ip1, aliceID)
		err := e.loginFrom(t, ip1, aliceID, alicePass, e.authorize(t, keyA))
		wantErr(t, err, apierr.RateLimited)
		if n := retryAfter(t, err); n != 1 {
			t.Fatalf("Retry-After %d, want 1", n)
		}
		// The one sleep of these tests: the window is the thing under test.
		time.Sleep(1100 * time.Millisecond)
		if err := e.loginFrom(t, ip1, aliceID, alicePass, e.authorize(t, keyA)); err != nil {
			t.Fatalf("login after the window: %v", err)
		}
	})
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
			before := throttledCount(t, "state")
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
			if got := throttledCount(t, "state") - before; got != 1 {
				t.Fatalf("moreid_throttled_total{limit=state} grew by %v, want 1", got)
			}
		})
	}
}
