package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/secret"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/services/auth/internal/server"
)

func TestIntrospectToken(t *testing.T) {
	e := newEnv(t, options{})
	active := e.accessToken(t, keyA, aliceID, alicePass)

	t.Run("active token", func(t *testing.T) {
		issued := time.Now()
		tok := e.accessToken(t, keyB, aliceID, alicePass)
		r, err := e.tokens.IntrospectToken(as(t, ""), &authv1.IntrospectTokenRequest{Token: tok})
		if err != nil {
			t.Fatalf("IntrospectToken: %v", err)
		}
		u := r.GetUser()
		if !r.GetActive() || r.GetApiKeyId() != 2 || r.GetApiKeyName() != "app B" ||
			u.GetId() != 7 || u.GetUserId() != aliceID || u.GetUsername() != "Alice" || u.GetEmail() != aliceEmail ||
			u.GetBio() != "hi" || u.GetAvatarUrl() != "https://example.com/a.png" {
			t.Fatalf("IntrospectToken = %+v", r)
		}
		iat, exp := r.GetIssuedAt().AsTime(), r.GetExpiresAt().AsTime()
		if iat.Before(issued.Add(-2*time.Second)) || iat.After(time.Now().Add(time.Second)) {
			t.Fatalf("issued_at = %v, want about %v", iat, issued)
		}
		if d := exp.Sub(iat); d < tokenTTL-2*time.Second || d > tokenTTL+time.Second {
			t.Fatalf("expires_at - issued_at = %v, want about %v", d, tokenTTL)
		}
	})

	inactive := []struct {
		name  string
		token func(t *testing.T) string
	}{
		{"unknown token", func(*testing.T) string { return "token_" + secret.New("", 56, secret.Alphanumeric) }},
		{"malformed token", func(*testing.T) string { return "not a token" }},
		{"empty token", func(*testing.T) string { return "" }},
		{"revoked token", func(t *testing.T) string {
			tok := e.accessToken(t, keyA, aliceID, alicePass)
			if _, err := e.tokens.RevokeToken(as(t, ""), &authv1.RevokeTokenRequest{Token: tok}); err != nil {
				t.Fatalf("RevokeToken: %v", err)
			}
			return tok
		}},
		{"expired token", func(t *testing.T) string {
			tok := e.accessToken(t, keyA, aliceID, alicePass)
			if err := e.rdb.PExpire(context.Background(), e.prefix+"token:"+secret.Hash(tok), 20*time.Millisecond).Err(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			return tok
		}},
		{"token of a disabled user", func(t *testing.T) string {
			tok := e.accessToken(t, keyA, bobID, bobPass)
			e.users.setDisabled(bobID, true)
			t.Cleanup(func() { e.users.setDisabled(bobID, false) })
			return tok
		}},
	}
	for _, tt := range inactive {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.tokens.IntrospectToken(as(t, ""), &authv1.IntrospectTokenRequest{Token: tt.token(t)})
			if err != nil {
				t.Fatalf("IntrospectToken: %v", err)
			}
			if r.GetActive() || r.User != nil || r.GetApiKeyId() != 0 || r.GetApiKeyName() != "" || r.IssuedAt != nil || r.ExpiresAt != nil {
				t.Fatalf("IntrospectToken = %+v, want inactive and nothing else", r)
			}
		})
	}

	t.Run("revoking is idempotent and spares other tokens", func(t *testing.T) {
		tok := e.accessToken(t, keyA, aliceID, alicePass)
		for range 2 {
			if _, err := e.tokens.RevokeToken(as(t, ""), &authv1.RevokeTokenRequest{Token: tok}); err != nil {
				t.Fatalf("RevokeToken: %v", err)
			}
		}
		if _, err := e.tokens.RevokeToken(as(t, ""), &authv1.RevokeTokenRequest{Token: "token_" + secret.New("", 56, secret.Alphanumeric)}); err != nil {
			t.Fatalf("RevokeToken of an unknown token: %v", err)
		}
		r, err := e.tokens.IntrospectToken(as(t, ""), &authv1.IntrospectTokenRequest{Token: active})
		if err != nil || !r.GetActive() {
			t.Fatalf("other token: %+v, %v", r, err)
		}
		_, err = e.tokens.RevokeToken(as(t, ""), &authv1.RevokeTokenRequest{})
		wantErr(t, err, apierr.InvalidRequest)
	})
}

func TestTokenUser(t *testing.T) {
	e := newEnv(t, options{})
	tokA := e.accessToken(t, keyA, aliceID, alicePass)
	withBearer := func(t *testing.T, key, value string) context.Context {
		return as(t, key, server.AuthorizationMetadata, value)
	}
	revoked := e.accessToken(t, keyA, aliceID, alicePass)
	if _, err := e.tokens.RevokeToken(as(t, ""), &authv1.RevokeTokenRequest{Token: revoked}); err != nil {
		t.Fatal(err)
	}

	t.Run("userinfo for any holder, token user for the token's key", func(t *testing.T) {
		for _, call := range []func() (string, string, *authv1.UserProfile, error){
			func() (string, string, *authv1.UserProfile, error) {
				r, err := e.tokens.GetUserinfo(withBearer(t, "", "Bearer "+tokA), &authv1.GetUserinfoRequest{})
				return r.GetMessage(), "userinfo", r.GetUser(), err
			},
			func() (string, string, *authv1.UserProfile, error) {
				r, err := e.auth.GetTokenUser(withBearer(t, keyA, "Bearer "+tokA), &authv1.GetTokenUserRequest{})
				return r.GetMessage(), "token user", r.GetUser(), err
			},
		} {
			msg, name, u, err := call()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if msg != "获取用户信息成功" || u.GetId() != 7 || u.GetUserId() != aliceID || u.GetUsername() != "Alice" ||
				u.GetEmail() != aliceEmail || u.GetBio() != "hi" || u.GetAvatarUrl() != "https://example.com/a.png" {
				t.Fatalf("%s = %q %+v", name, msg, u)
			}
		}
	})

	refused := []struct {
		name string
		ctx  func(t *testing.T) context.Context
		want apierr.Kind // of GetTokenUser; GetUserinfo always says invalid_token
	}{
		{"no authorization", func(t *testing.T) context.Context { return as(t, keyA) }, apierr.InvalidToken},
		{"another scheme", func(t *testing.T) context.Context { return withBearer(t, keyA, "Basic "+tokA) }, apierr.InvalidToken},
		{"bare token", func(t *testing.T) context.Context { return withBearer(t, keyA, tokA) }, apierr.InvalidToken},
		{"unknown token", func(t *testing.T) context.Context {
			return withBearer(t, keyA, "Bearer token_"+secret.New("", 56, secret.Alphanumeric))
		}, apierr.InvalidToken},
		{"revoked token", func(t *testing.T) context.Context { return withBearer(t, keyA, "Bearer "+revoked) }, apierr.InvalidToken},
		{"disabled user", func(t *testing.T) context.Context {
			tok := e.accessToken(t, keyA, bobID, bobPass)
			e.users.setDisabled(bobID, true)
			t.Cleanup(func() { e.users.setDisabled(bobID, false) })
			return withBearer(t, keyA, "Bearer "+tok)
		}, apierr.InvalidToken},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx(t)
			_, err := e.auth.GetTokenUser(ctx, &authv1.GetTokenUserRequest{})
			wantErr(t, err, tt.want)
			_, err = e.tokens.GetUserinfo(ctx, &authv1.GetUserinfoRequest{})
			wantErr(t, err, apierr.InvalidToken)
		})
	}
	t.Run("token user with another key", func(t *testing.T) {
		_, err := e.auth.GetTokenUser(withBearer(t, keyB, "Bearer "+tokA), &authv1.GetTokenUserRequest{})
		wantErr(t, err, apierr.InvalidToken)
	})
	t.Run("token user without a key", func(t *testing.T) {
		_, err := e.auth.GetTokenUser(withBearer(t, "", "Bearer "+tokA), &authv1.GetTokenUserRequest{})
		wantErr(t, err, apierr.InvalidAPIKey)
	})
}

func TestRevokeUserTokens(t *testing.T) {
	e := newEnv(t, options{})
	alice := []string{e.accessToken(t, keyA, aliceID, alicePass), e.accessToken(t, keyB, aliceID, alicePass)}
	bob := e.accessToken(t, keyA, bobID, bobPass)
	isActive := func(t *testing.T, tok string) bool {
		t.Helper()
		r, err := e.tokens.IntrospectToken(as(t, ""), &authv1.IntrospectTokenRequest{Token: tok})
		if err != nil {
			t.Fatalf("IntrospectToken: %v", err)
		}
		return r.GetActive()
	}

	r, err := e.admin.RevokeUserTokens(as(t, ""), &authv1.RevokeUserTokensRequest{UserId: aliceID})
	if err != nil || r.GetRevoked() != 2 {
		t.Fatalf("RevokeUserTokens = %+v, %v; want 2 revoked", r, err)
	}
	for _, tok := range alice {
		if isActive(t, tok) {
			t.Fatal("alice's token still active")
		}
	}
	if !isActive(t, bob) {
		t.Fatal("bob's token was revoked")
	}

	tests := []struct {
		name string
		req  *authv1.RevokeUserTokensRequest
		want int32
		err  apierr.Kind
	}{
		{"again: nothing left", &authv1.RevokeUserTokensRequest{UserId: aliceID}, 0, ""},
		{"a user without tokens", &authv1.RevokeUserTokensRequest{UserId: "nobody"}, 0, ""},
		{"missing user_id", &authv1.RevokeUserTokensRequest{}, 0, apierr.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.admin.RevokeUserTokens(as(t, ""), tt.req)
			if tt.err != "" {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil || r.GetRevoked() != tt.want {
				t.Fatalf("RevokeUserTokens = %+v, %v; want %d", r, err, tt.want)
			}
		})
	}
	t.Run("a token issued afterwards works", func(t *testing.T) {
		if !isActive(t, e.accessToken(t, keyA, aliceID, alicePass)) {
			t.Fatal("new token inactive")
		}
	})
}

func TestListeners(t *testing.T) {
	e := newEnv(t, options{})
	t.Run("AuthAdminService is not on the public listener", func(t *testing.T) {
		for _, key := range []string{"", keyA} {
			_, err := e.publicAdmin.RevokeUserTokens(as(t, key), &authv1.RevokeUserTokensRequest{UserId: aliceID})
			if status.Code(err) != codes.Unimplemented {
				t.Fatalf("public RevokeUserTokens: %v, want Unimplemented", err)
			}
		}
	})
	t.Run("the admin listener has health", func(t *testing.T) {
		r, err := e.adminHealth.Check(as(t, ""), &healthpb.HealthCheckRequest{})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("admin health = %v, %v", r, err)
		}
	})
	t.Run("the browser and token services need no API key", func(t *testing.T) {
		_, err := e.conf.GetConfirmation(as(t, ""), &authv1.GetConfirmationRequest{Uca: "uca_" + secret.New("", 16, secret.Alphanumeric)})
		wantErr(t, err, apierr.InvalidCode)
		if _, err := e.tokens.IntrospectToken(as(t, ""), &authv1.IntrospectTokenRequest{Token: "x"}); err != nil {
			t.Fatalf("IntrospectToken: %v", err)
		}
	})
	t.Run("tokens are indexed per user", func(t *testing.T) {
		tok := e.accessToken(t, keyA, aliceID, alicePass)
		ok, err := e.rdb.SIsMember(context.Background(), e.prefix+"usertokens:"+aliceID, secret.Hash(tok)).Result()
		if err != nil || !ok {
			t.Fatalf("token not in usertokens:%s (%v)", aliceID, err)
		}
		if ttl := e.pttl(t, "usertokens:"+aliceID); ttl <= tokenTTL-time.Minute || ttl > tokenTTL {
			t.Fatalf("usertokens PTTL = %v, want about %v", ttl, tokenTTL)
		}
	})
}
