package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/secret"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

func TestIntrospectToken(t *testing.T) {
	e := newEnv(t, options{})
	active := e.accessToken(t, keyA, aliceID, alicePass)

	t.Run("active token", func(t *testing.T) {
		issued := time.Now()
		tok := e.accessToken(t, keyB, aliceID, alicePass)
		r, err := e.tokens.IntrospectToken(as(t, keyB), &authv1.IntrospectTokenRequest{Token: tok})
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
			if _, err := e.tokens.RevokeToken(as(t, keyA), &authv1.RevokeTokenRequest{Token: tok}); err != nil {
				t.Fatalf("RevokeToken: %v", err)
			}
			return tok
		}},
		{"expired token", func(t *testing.T) string {
			tok := e.accessToken(t, keyA, aliceID, alicePass)
			// An expiry in the past is its lifetime ended now, with no wait.
			if err := e.rdb.PExpireAt(context.Background(), e.prefix+"token:"+secret.Hash(tok), time.Unix(1, 0)).Err(); err != nil {
				t.Fatal(err)
			}
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
			r, err := e.tokens.IntrospectToken(as(t, keyA), &authv1.IntrospectTokenRequest{Token: tt.token(t)})
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
			if _, err := e.tokens.RevokeToken(as(t, keyA), &authv1.RevokeTokenRequest{Token: tok}); err != nil {
				t.Fatalf("RevokeToken: %v", err)
			}
		}
		if _, err := e.tokens.RevokeToken(as(t, keyA), &authv1.RevokeTokenRequest{Token: "token_" + secret.New("", 56, secret.Alphanumeric)}); err != nil {
			t.Fatalf("RevokeToken of an unknown token: %v", err)
		}
		r, err := e.tokens.IntrospectToken(as(t, keyA), &authv1.IntrospectTokenRequest{Token: active})
		if err != nil || !r.GetActive() {
			t.Fatalf("other token: %+v, %v", r, err)
		}
		_, err = e.tokens.RevokeToken(as(t, keyA), &authv1.RevokeTokenRequest{})
		wantErr(t, err, apierr.InvalidRequest)
	})
}

func TestTokenUser(t *testing.T) {
	e := newEnv(t, options{})
	tokA := e.accessToken(t, keyA, aliceID, alicePass)
	withBearer := func(t *testing.T, key, value string) context.Context {
		return as(t, key, wire.Authorization, value)
	}
	revoked := e.accessToken(t, keyA, aliceID, alicePass)
	if _, err := e.tokens.RevokeToken(as(t, keyA), &authv1.RevokeTokenRequest{Token: revoked}); err != nil {
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
	alice := map[string]string{e.accessToken(t, keyA, aliceID, alicePass): keyA, e.accessToken(t, keyB, aliceID, alicePass): keyB}
	bob := e.accessToken(t, keyA, bobID, bobPass)
	isActive := func(t *testing.T, key, tok string) bool {
		t.Helper()
		r, err := e.tokens.IntrospectToken(as(t, key), &authv1.IntrospectTokenRequest{Token: tok})
		if err != nil {
			t.Fatalf("IntrospectToken: %v", err)
		}
		return r.GetActive()
	}

	r, err := e.admin.RevokeUserTokens(as(t, ""), &authv1.RevokeUserTokensRequest{UserId: aliceID})
	if err != nil || r.GetRevoked() != 2 {
		t.Fatalf("RevokeUserTokens = %+v, %v; want 2 revoked", r, err)
	}
	for tok, key := range alice {
		if isActive(t, key, tok) {
			t.Fatal("alice's token still active")
		}
	}
	if !isActive(t, keyA, bob) {
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
		if !isActive(t, keyA, e.accessToken(t, keyA, aliceID, alicePass)) {
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
	t.Run("the browser's service needs no API key", func(t *testing.T) {
		_, err := e.conf.GetConfirmation(as(t, ""), &authv1.GetConfirmationRequest{Uca: "uca_" + secret.New("", 16, secret.Alphanumeric)})
		wantErr(t, err, apierr.InvalidCode)
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

// TestTokenServiceAnswersOnlyTheCallersKey: IntrospectToken and RevokeToken
// need the caller's API key (RFC 7662 section 2.1) and answer only about
// tokens issued to it: another key's token is inactive and revoking it does
// nothing, even when 64 such calls arrive at once.
func TestTokenServiceAnswersOnlyTheCallersKey(t *testing.T) {
	e := newEnv(t, options{})
	tokA := e.accessToken(t, keyA, aliceID, alicePass)
	introspect := func(t *testing.T, key, tok string) (*authv1.IntrospectTokenResponse, error) {
		t.Helper()
		return e.tokens.IntrospectToken(as(t, key), &authv1.IntrospectTokenRequest{Token: tok})
	}
	stillActive := func(t *testing.T) {
		t.Helper()
		r, err := introspect(t, keyA, tokA)
		if err != nil || !r.GetActive() || r.GetApiKeyId() != 1 {
			t.Fatalf("owner's introspection = %+v, %v; want the token still active", r, err)
		}
	}

	refused := []struct {
		name, key string
	}{
		{"no key", ""},
		{"an unknown key", "ml_" + secret.New("", 64, secret.Hex)},
		{"a malformed key", "ml_short"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := introspect(t, tt.key, tokA)
			wantErr(t, err, apierr.InvalidAPIKey)
			_, err = e.tokens.RevokeToken(as(t, tt.key), &authv1.RevokeTokenRequest{Token: tokA})
			wantErr(t, err, apierr.InvalidAPIKey)
			stillActive(t)
		})
	}

	t.Run("another key's token is inactive", func(t *testing.T) {
		r, err := introspect(t, keyB, tokA)
		if err != nil {
			t.Fatalf("IntrospectToken: %v", err)
		}
		if r.GetActive() || r.User != nil || r.GetApiKeyId() != 0 || r.GetApiKeyName() != "" || r.IssuedAt != nil || r.ExpiresAt != nil {
			t.Fatalf("IntrospectToken with another key = %+v, want inactive and nothing else", r)
		}
	})

	t.Run("64 parallel calls of another key change nothing", func(t *testing.T) {
		const n = 64
		start := make(chan struct{})
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := as(t, keyB)
				<-start
				if i%2 == 0 {
					_, err := e.tokens.RevokeToken(ctx, &authv1.RevokeTokenRequest{Token: tokA})
					errs <- err
					return
				}
				r, err := e.tokens.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: tokA})
				if err == nil && r.GetActive() {
					err = fmt.Errorf("another key saw the token active: %+v", r)
				}
				errs <- err
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		stillActive(t)
		if _, err := e.tokens.GetUserinfo(as(t, "", wire.Authorization, "Bearer "+tokA), &authv1.GetUserinfoRequest{}); err != nil {
			t.Fatalf("userinfo after another key's revocations: %v", err)
		}
	})

	t.Run("the owner revokes", func(t *testing.T) {
		if _, err := e.tokens.RevokeToken(as(t, keyA), &authv1.RevokeTokenRequest{Token: tokA}); err != nil {
			t.Fatalf("RevokeToken: %v", err)
		}
		if r, err := introspect(t, keyA, tokA); err != nil || r.GetActive() {
			t.Fatalf("after revocation: %+v, %v; want inactive", r, err)
		}
	})
}
