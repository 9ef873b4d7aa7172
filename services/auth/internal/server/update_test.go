package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/secret"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

func ptr(s string) *string { return &s }

func TestUpdateUser(t *testing.T) {
	e := newEnv(t, options{})
	alice := e.session(t, aliceID, alicePass).GetSession()
	bob := e.session(t, bobID, bobPass).GetSession()
	aliceToken := e.accessToken(t, keyA, aliceID, alicePass)
	aliceTokenB := e.accessToken(t, keyB, aliceID, alicePass)
	bobToken := e.accessToken(t, keyA, bobID, bobPass)
	stateB := e.authorize(t, keyB)
	bearer := func(t *testing.T, tok string) context.Context {
		return as(t, keyA, wire.Authorization, "Bearer "+tok)
	}

	accepted := []struct {
		name   string
		cookie string
		ctx    func(t *testing.T) context.Context
	}{
		{"bare session value", alice, nil},
		{"moreid_session=value", wire.SessionCookie + "=" + alice, nil},
		{"a whole cookie header", "theme=dark; " + wire.SessionCookie + "=" + alice + "; lang=zh", nil},
		{"the document's session=value form", "session=" + alice, nil},
		{"Bearer token of this key", "", func(t *testing.T) context.Context { return bearer(t, aliceToken) }},
		{"lower-case bearer scheme", "", func(t *testing.T) context.Context {
			return as(t, keyA, wire.Authorization, "bearer "+aliceToken)
		}},
	}
	for i, tt := range accepted {
		t.Run("accepted: "+tt.name, func(t *testing.T) {
			ctx := as(t, keyA)
			if tt.ctx != nil {
				ctx = tt.ctx(t)
			}
			state := e.authorize(t, keyA)
			name := "Alice " + string(rune('A'+i))
			r, err := e.auth.UpdateUser(ctx, &authv1.UpdateUserRequest{UserId: aliceID, State: state, Cookie: tt.cookie, Username: ptr(name), Bio: ptr("bio " + name)})
			if err != nil {
				t.Fatalf("UpdateUser: %v", err)
			}
			u := r.GetUser()
			if !r.GetSuccess() || r.GetMessage() != "用户信息更新成功" || u.GetId() != 7 || u.GetUserId() != aliceID ||
				u.GetUsername() != name || u.GetBio() != "bio "+name || u.GetEmail() != aliceEmail {
				t.Fatalf("UpdateUser = %+v", r)
			}
			if got := e.users.get(aliceID); got.username != name {
				t.Fatalf("user service has username %q", got.username)
			}
			if e.exists(t, "state", state) {
				t.Fatal("state not consumed")
			}
			_, err = e.auth.UpdateUser(ctx, &authv1.UpdateUserRequest{UserId: aliceID, State: state, Cookie: tt.cookie, Bio: ptr("again")})
			wantErr(t, err, apierr.InvalidState)
		})
	}

	t.Run("only the given field changes", func(t *testing.T) {
		before := e.users.get(aliceID)
		r, err := e.auth.UpdateUser(as(t, keyA), &authv1.UpdateUserRequest{UserId: aliceID, State: e.authorize(t, keyA), Cookie: alice, Bio: ptr("only bio")})
		if err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
		if r.GetUser().GetUsername() != before.username || r.GetUser().GetBio() != "only bio" {
			t.Fatalf("UpdateUser = %+v", r.GetUser())
		}
	})

	refused := []struct {
		name      string
		ctx       func(t *testing.T) context.Context
		req       func(state string) *authv1.UpdateUserRequest
		want      apierr.Kind
		keepState bool
	}{
		{"no credentials", nil, func(s string) *authv1.UpdateUserRequest {
			return &authv1.UpdateUserRequest{UserId: aliceID, State: s, Bio: ptr("x")}
		}, apierr.Unauthenticated, true},
		{"forged session", nil, func(s string) *authv1.UpdateUserRequest {
			return &authv1.UpdateUserRequest{UserId: aliceID, State: s, Bio: ptr("x"), Cookie: "sess_" + secret.New("", 43, secret.Alphanumeric)}
		}, apierr.Unauthenticated, true},
		{"cookie header without a session", nil, func(s string) *authv1.UpdateUserRequest {
			return &authv1.UpdateUserRequest{UserId: aliceID, State: s, Bio: ptr("x"), Cookie: "theme=dark; " + wire.SessionCookie + "="}
		}, apierr.Unauthenticated, true},
		{"another user's session", nil, func(s string) *authv1.UpdateUserRequest {
			return &authv1.UpdateUserRequest{UserId: aliceID, State: s, Bio: ptr("x"), Cookie: bob}
		}, apierr.Forbidden, true},
		{"another user's token", func(t *testing.T) context.Context { return bearer(t, bobToken) }, func(s string) *authv1.UpdateUserRequest {
			return &authv1.UpdateUserRequest{UserId: aliceID, State: s, Bio: ptr("x")}
		}, apierr.Forbidden, true},
		{"token of another key", func(t *testing.T) context.Context { return bearer(t, aliceTokenB) }, func(s string) *authv1.UpdateUserRequest {
			return &authv1.UpdateUserRequest{UserId: aliceID, State: s, Bio: ptr("x")}
		}, apierr.InvalidToken, true},
		{"unknown token", func(t *testing.T) context.Context {
			return bearer(t, "token_"+secret.New("", 56, secret.Alphanumeric))
		}, func(s string) *authv1.UpdateUserRequest {
			return &authv1.UpdateUserRequest{UserId: aliceID, State: s, Bio: ptr("x")}
		}, apierr.InvalidToken, true},
		{"missing user_id", nil, func(s string) *authv1.UpdateUserRequest {
			return &authv1.UpdateUserRequest{State: s, Bio: ptr("x"), Cookie: alice}
		}, apierr.InvalidRequest, true},
		{"missing state", nil, func(string) *authv1.UpdateUserRequest {
			return &authv1.UpdateUserRequest{UserId: aliceID, Bio: ptr("x"), Cookie: alice}
		}, apierr.InvalidRequest, true},
		{"neither username nor bio", nil, func(s string) *authv1.UpdateUserRequest {
			return &authv1.UpdateUserRequest{UserId: aliceID, State: s, Cookie: alice}
		}, apierr.InvalidRequest, true},
		{"state of another key", nil, func(string) *authv1.UpdateUserRequest {
			return &authv1.UpdateUserRequest{UserId: aliceID, State: stateB, Bio: ptr("x"), Cookie: alice}
		}, apierr.InvalidState, true},
		{"a username the user service would reject (platform/account)", nil, func(s string) *authv1.UpdateUserRequest {
			return &authv1.UpdateUserRequest{UserId: aliceID, State: s, Username: ptr(strings.Repeat("x", 33)), Cookie: alice}
		}, apierr.InvalidRequest, true},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			ctx := as(t, keyA)
			if tt.ctx != nil {
				ctx = tt.ctx(t)
			}
			state := e.authorize(t, keyA)
			before := e.users.updates.Load()
			_, err := e.auth.UpdateUser(ctx, tt.req(state))
			wantErr(t, err, tt.want)
			if n := e.users.updates.Load() - before; n != 0 {
				t.Fatalf("%d profile updates for a refused call", n)
			}
			if got := e.exists(t, "state", state); got != tt.keepState {
				t.Fatalf("state stored = %v, want %v", got, tt.keepState)
			}
		})
	}

	t.Run("disabled user", func(t *testing.T) {
		e.users.setDisabled(aliceID, true)
		t.Cleanup(func() { e.users.setDisabled(aliceID, false) })
		_, err := e.auth.UpdateUser(as(t, keyA), &authv1.UpdateUserRequest{UserId: aliceID, State: e.authorize(t, keyA), Cookie: alice, Bio: ptr("x")})
		wantErr(t, err, apierr.AccountDisabled)
		_, err = e.auth.UpdateUser(bearer(t, aliceToken), &authv1.UpdateUserRequest{UserId: aliceID, State: e.authorize(t, keyA), Bio: ptr("x")})
		wantErr(t, err, apierr.InvalidToken)
	})
	t.Run("no API key", func(t *testing.T) {
		_, err := e.auth.UpdateUser(as(t, ""), &authv1.UpdateUserRequest{UserId: aliceID, State: e.authorize(t, keyA), Cookie: alice, Bio: ptr("x")})
		wantErr(t, err, apierr.InvalidAPIKey)
	})
	t.Run("16 concurrent updates with one state: one update", func(t *testing.T) {
		state := e.authorize(t, keyA)
		before := e.users.updates.Load()
		ok, failed := race(16, func() error {
			_, err := e.auth.UpdateUser(as(t, keyA), &authv1.UpdateUserRequest{UserId: aliceID, State: state, Cookie: alice, Bio: ptr("race")})
			return err
		}, apierr.InvalidState)
		if ok != 1 || failed != 15 || e.users.updates.Load()-before != 1 {
			t.Fatalf("%d successes, %d invalid_state, %d updates; want 1, 15, 1", ok, failed, e.users.updates.Load()-before)
		}
	})
}

// An update that fails because the user service cannot reach Postgres
// leaves its state usable: the app retries with the same state once
// Postgres is back (issue 11: nothing consumed by a request that fails).
func TestUpdateUserKeepsTheStateThroughAnOutage(t *testing.T) {
	e := newEnv(t, options{})
	session := e.session(t, aliceID, alicePass).GetSession()
	state := e.authorize(t, keyA)
	req := &authv1.UpdateUserRequest{UserId: aliceID, State: state, Cookie: session, Bio: ptr("after the outage")}

	e.users.updatesDown.Store(true)
	_, err := e.auth.UpdateUser(as(t, keyA), req)
	wantErr(t, err, apierr.Unavailable)

	e.users.updatesDown.Store(false)
	r, err := e.auth.UpdateUser(as(t, keyA), req)
	if err != nil {
		t.Fatalf("UpdateUser with the same state after the outage: %v", err)
	}
	if r.GetUser().GetBio() != "after the outage" {
		t.Fatalf("UpdateUser = %+v", r)
	}
	// Used now: one state, one update.
	_, err = e.auth.UpdateUser(as(t, keyA), req)
	wantErr(t, err, apierr.InvalidState)
}
