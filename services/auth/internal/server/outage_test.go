package server_test

import (
	"testing"

	"github.com/moreline/moreid/platform/apierr"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
)

// While Postgres is down the key service answers unavailable; an app whose
// key was validated recently can still redeem the code it holds, since
// Token needs only Redis.
func TestKeyServiceOutage(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{"an issued code is redeemed during the outage", func(t *testing.T, e *env) {
			state := e.authorize(t, keyA)
			code := e.login(t, keyA, state)
			e.keys.down.Store(true)
			e.awaitKeyCheck(t, keyA)
			if tok := e.token(t, keyA, code, state); tok == "" {
				t.Fatal("no token")
			}
		}},
		{"a key not seen before is unavailable", func(t *testing.T, e *env) {
			e.authorize(t, keyA)
			e.keys.down.Store(true)
			_, err := e.auth.Authorize(as(t, keyB), &authv1.AuthorizeRequest{})
			wantErr(t, err, apierr.Unavailable)
		}},
		{"a key seen only from another client IP is unavailable", func(t *testing.T, e *env) {
			e.authorize(t, keyA)
			e.keys.down.Store(true)
			_, err := e.auth.Authorize(from(t, keyA, ip1), &authv1.AuthorizeRequest{})
			wantErr(t, err, apierr.Unavailable)
		}},
		{"a revocation seen before the outage stays in force", func(t *testing.T, e *env) {
			e.authorize(t, keyA)
			e.keys.revoke(keyA)
			e.awaitRefusal(t, keyA)
			e.keys.down.Store(true)
			eventually(t, "the cached refusal lapsed into unavailable", func() bool {
				_, err := e.auth.Authorize(as(t, keyA), &authv1.AuthorizeRequest{})
				if err == nil {
					t.Fatal("revoked key accepted during the outage")
				}
				if apierr.KindOf(err) == apierr.InvalidAPIKey {
					return false
				}
				wantErr(t, err, apierr.Unavailable)
				return true
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, newEnv(t, options{}))
		})
	}
}

// awaitKeyCheck calls Authorize with key until the auth service has asked
// the (unavailable) key service again, i.e. until the fresh cache entry has
// expired; every call must succeed meanwhile, from the stale answer.
func (e *env) awaitKeyCheck(t *testing.T, key string) {
	t.Helper()
	before := e.keys.calls.Load()
	eventually(t, "the key service was asked again", func() bool {
		if e.keys.calls.Load() != before {
			return true
		}
		if _, err := e.auth.Authorize(as(t, key), &authv1.AuthorizeRequest{}); err != nil {
			t.Fatalf("Authorize during the outage: %v", err)
		}
		return false
	})
	// The call that reached the key service was answered stale too.
	if _, err := e.auth.Authorize(as(t, key), &authv1.AuthorizeRequest{}); err != nil {
		t.Fatalf("Authorize during the outage: %v", err)
	}
}
