package server_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

// A redeemed code presented again revokes its token only when the same
// client presents it (the key and state it was redeemed with, RFC 6749
// 4.1.2); another app's attempt, however many and however parallel, is as
// if the code did not exist.
func TestCodeReplay(t *testing.T) {
	e := newEnv(t, options{})
	tests := []struct {
		name    string
		replay  func(t *testing.T, code, state string) (ok, refused int)
		revokes bool
	}{
		{"another key with the code's state", func(t *testing.T, code, state string) (int, int) {
			return race(1, func() error { return e.redeem(t, keyB, code, state) }, apierr.InvalidCode)
		}, false},
		{"another key with a state of its own", func(t *testing.T, code, _ string) (int, int) {
			own := e.authorize(t, keyB)
			return race(1, func() error { return e.redeem(t, keyB, code, own) }, apierr.InvalidCode)
		}, false},
		{"64 parallel replays by another key", func(t *testing.T, code, state string) (int, int) {
			return race(64, func() error { return e.redeem(t, keyB, code, state) }, apierr.InvalidCode)
		}, false},
		{"the owner with another of its states", func(t *testing.T, code, _ string) (int, int) {
			other := e.authorize(t, keyA)
			return race(1, func() error { return e.redeem(t, keyA, code, other) }, apierr.InvalidCode)
		}, false},
		{"the owner with the code's state", func(t *testing.T, code, state string) (int, int) {
			return race(1, func() error { return e.redeem(t, keyA, code, state) }, apierr.InvalidCode)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := e.authorize(t, keyA)
			code := e.login(t, keyA, state)
			token := e.token(t, keyA, code, state)
			ok, refused := tt.replay(t, code, state)
			if ok != 0 || refused == 0 {
				t.Fatalf("replays: %d succeeded, %d invalid_code; want every one invalid_code", ok, refused)
			}
			if active := e.active(t, keyA, token); active == tt.revokes {
				t.Fatalf("owner's token active = %v after the replay, want %v", active, !tt.revokes)
			}
		})
	}
}

// Revoking an API key ends the access tokens issued to it, on every Bearer
// surface, within the key cache's lifetime (500 ms); other keys' tokens
// keep working.
func TestRevokedKeyEndsItsTokens(t *testing.T) {
	e := newEnv(t, options{})
	tokA := e.accessToken(t, keyA, aliceID, alicePass)
	tokB := e.accessToken(t, keyB, aliceID, alicePass)
	if !e.active(t, keyA, tokA) || !e.active(t, keyB, tokB) {
		t.Fatal("fresh tokens inactive")
	}
	e.keys.revoke(keyA)
	eventually(t, "a revoked key's token refused everywhere", func() bool { return e.tokenRefused(t, tokA) })
	if !e.active(t, keyB, tokB) {
		t.Fatal("another key's token was ended too")
	}
	if _, err := e.auth.GetTokenUser(as(t, keyB, wire.Authorization, "Bearer "+tokB), &authv1.GetTokenUserRequest{}); err != nil {
		t.Fatalf("another key's token user: %v", err)
	}
}

// The user service failing (Postgres down) makes login_safe answer
// unavailable without consuming anything: the same state and login code
// work once it is back.
func TestLoginSafeUserServiceDown(t *testing.T) {
	e := newEnv(t, options{})
	state, loginCode := e.safeLogin(t, keyA)
	e.users.down.Store(true)
	_, err := e.auth.LoginSafe(as(t, keyA), &authv1.LoginSafeRequest{State: state, LoginCode: loginCode})
	wantErr(t, err, apierr.Unavailable)
	e.users.down.Store(false)
	r, err := e.auth.LoginSafe(as(t, keyA), &authv1.LoginSafeRequest{State: state, LoginCode: loginCode})
	if err != nil {
		t.Fatalf("login_safe after the outage: %v", err)
	}
	if tok := e.token(t, keyA, r.GetCode(), state); !e.active(t, keyA, tok) {
		t.Fatal("token of the retried login_safe inactive")
	}
}

// redeem is one Token call; its error as it came.
func (e *env) redeem(t *testing.T, key, code, state string) error {
	_, err := e.auth.Token(as(t, key), &authv1.TokenRequest{Code: code, State: state})
	return err
}

// active is what introspection by key, the key token was issued to, says
// of token. Introspection answers only its caller's key, so a revoked key
// is refused itself (invalid_api_key): its token is not active either.
func (e *env) active(t *testing.T, key, token string) bool {
	t.Helper()
	r, err := e.tokens.IntrospectToken(as(t, key), &authv1.IntrospectTokenRequest{Token: token})
	if reason(status.Convert(err)) == string(apierr.InvalidAPIKey) {
		return false
	}
	if err != nil {
		t.Fatalf("IntrospectToken: %v", err)
	}
	return r.GetActive()
}

// tokenRefused reports whether every Bearer surface refuses a token of keyA
// whose key was revoked: introspection says inactive, userinfo
// invalid_token, and the surfaces that also need the key refuse the key.
func (e *env) tokenRefused(t *testing.T, token string) bool {
	t.Helper()
	if e.active(t, keyA, token) {
		return false
	}
	bearer := func(key string) context.Context {
		return as(t, key, wire.Authorization, "Bearer "+token)
	}
	_, err := e.tokens.GetUserinfo(bearer(""), &authv1.GetUserinfoRequest{})
	if err == nil {
		return false
	}
	wantErr(t, err, apierr.InvalidToken)
	// Within the cache's lifetime the key itself may still pass and the
	// token be refused, or the key be refused already.
	_, err = e.auth.GetTokenUser(bearer(keyA), &authv1.GetTokenUserRequest{})
	if err == nil {
		return false
	}
	if k := reason(status.Convert(err)); k != string(apierr.InvalidToken) && k != string(apierr.InvalidAPIKey) {
		t.Fatalf("token user of a revoked key's token: %v", err)
	}
	return true
}
