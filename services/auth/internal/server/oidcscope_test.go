package server_test

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/moreline/moreid/platform/apierr"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

// An OpenID Connect token shows on /api/oauth what its scopes allow, and
// only a token with the profile scope may change the profile: consent to
// sign in is not consent to hand over or change the rest.
func TestOIDCTokenScopesOnAPIOAuth(t *testing.T) {
	e := newEnv(t, options{})
	full := &authv1.UserProfile{Id: 7, Username: "Alice", UserId: aliceID, Email: aliceEmail, Bio: "hi", AvatarUrl: "https://example.com/a.png"}
	tests := []struct {
		name      string
		scopes    []string
		want      *authv1.UserProfile
		mayUpdate bool
	}{
		{"openid only", []string{"openid"}, &authv1.UserProfile{Id: 7}, false},
		{"profile", []string{"openid", "profile"}, &authv1.UserProfile{Id: 7, Username: "Alice", UserId: aliceID, Bio: "hi", AvatarUrl: "https://example.com/a.png"}, true},
		{"email", []string{"openid", "email"}, &authv1.UserProfile{Id: 7, Email: aliceEmail}, false},
		{"profile and email", []string{"openid", "profile", "email"}, full, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := e.codeGrant(t, tt.scopes...)
			ctx := as(t, keyA, wire.Authorization, "Bearer "+g.GetAccessToken())
			u, err := e.tokens.GetUserinfo(ctx, &authv1.GetUserinfoRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(u.GetUser(), tt.want) {
				t.Errorf("/api/oauth/userinfo = %v, want %v", u.GetUser(), tt.want)
			}
			tu, err := e.auth.GetTokenUser(ctx, &authv1.GetTokenUserRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(tu.GetUser(), tt.want) {
				t.Errorf("/api/oauth/token/user = %v, want %v", tu.GetUser(), tt.want)
			}
			_, err = e.auth.UpdateUser(ctx, &authv1.UpdateUserRequest{UserId: aliceID, State: e.authorize(t, keyA), Bio: ptr("hi")})
			if tt.mayUpdate && err != nil {
				t.Errorf("user/update with %v: %v", tt.scopes, err)
			}
			if !tt.mayUpdate {
				wantErr(t, err, apierr.Forbidden)
			}
		})
	}
	t.Run("a token of /api/oauth shows the whole profile", func(t *testing.T) {
		tok := e.accessToken(t, keyA, aliceID, alicePass)
		u, err := e.tokens.GetUserinfo(as(t, keyA, wire.Authorization, "Bearer "+tok), &authv1.GetUserinfoRequest{})
		if err != nil || !proto.Equal(u.GetUser(), full) {
			t.Fatalf("userinfo = %v, %v", u, err)
		}
		// And the OIDC userinfo names the scopes it treated it as holding,
		// so the edge shows the claims.
		r, err := e.front(t).GetUserinfo(as(t, "", wire.Authorization, "Bearer "+tok), &authv1.OIDCServiceGetUserinfoRequest{})
		if err != nil || !slices.Equal(r.GetUserinfo().GetScopes(), []string{"openid", "profile", "email"}) {
			t.Fatalf("OIDC userinfo scopes = %v, %v", r.GetUserinfo().GetScopes(), err)
		}
	})
}

// A device authorization grants only the scopes a person can be asked
// for: unknown ones are dropped, none at all means sign-in only.
func TestOIDCDeviceScopes(t *testing.T) {
	e := newEnv(t, options{})
	c := e.oidc(t)
	tests := []struct {
		name   string
		scopes []string
		want   []string
		kind   apierr.Kind
	}{
		{"none", nil, []string{"openid"}, ""},
		{"unknown dropped", []string{"openid", "groups", "admin"}, []string{"openid"}, ""},
		{"known kept once", []string{"profile", "openid", "profile"}, []string{"profile", "openid"}, ""},
		{"only unknown", []string{"groups"}, nil, apierr.InvalidScope},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dc := "mldc_" + tt.name
			uc := []string{"BCDF-GHJK", "BCDF-GHJL", "BCDF-GHJM", "BCDF-GHJN"}[i]
			_, err := c.StartDevice(as(t, keyA), &authv1.StartDeviceRequest{ClientId: clientA, DeviceCode: dc, UserCode: uc, Scopes: tt.scopes, ExpiresIn: 600})
			if tt.kind != "" {
				wantErr(t, err, tt.kind)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := e.front(t).GetDevice(as(t, ""), &authv1.GetDeviceRequest{UserCode: uc})
			if err != nil {
				t.Fatal(err)
			}
			if got := d.GetDevice().GetScopes(); !slices.Equal(got, tt.want) {
				t.Errorf("scopes %v, want %v", got, tt.want)
			}
		})
	}
}

// A public client's client_id is no secret: a used code presented again
// without its PKCE verifier (by whoever saw the code) must not revoke what
// it issued; with the verifier it does (RFC 6749 4.1.2).
func TestOIDCPublicCodeReplayNeedsTheVerifier(t *testing.T) {
	e := newEnv(t, options{})
	c := e.oidc(t)
	pub := as(t, "", wire.OIDCClientID, clientPublic)
	redeem := func(code, verifier string) (*authv1.RedeemCodeResponse, error) {
		return c.RedeemCode(pub, &authv1.RedeemCodeRequest{ClientId: clientPublic, Code: code, CodeVerifier: verifier, RedirectUri: redirectPublic})
	}
	code := e.putOIDCCode(t, clientPublic, 5, redirectPublic, "openid")
	r, err := redeem(code, pkceVerifier)
	if err != nil {
		t.Fatal(err)
	}
	tok := r.GetGrant().GetAccessToken()
	alive := func() bool {
		_, err := e.tokens.GetUserinfo(as(t, "", wire.Authorization, "Bearer "+tok), &authv1.GetUserinfoRequest{})
		return err == nil
	}
	_, err = redeem(code, "a-verifier-the-observer-made-up-of-43-characters")
	wantErr(t, err, apierr.InvalidGrant)
	if !alive() {
		t.Fatal("a replay without the verifier revoked the grant")
	}
	_, err = redeem(code, pkceVerifier)
	wantErr(t, err, apierr.InvalidGrant)
	if alive() {
		t.Fatal("a replay with the verifier left the grant alive")
	}
}

// A user disabled between the code and its redemption gets no tokens (and
// so no ID token a relying party would sign them in with).
func TestOIDCRedeemForDisabledUser(t *testing.T) {
	e := newEnv(t, options{})
	code := e.putOIDCCode(t, clientA, 1, redirectA, "openid")
	e.users.setDisabled(aliceID, true)
	_, err := e.oidc(t).RedeemCode(as(t, keyA), &authv1.RedeemCodeRequest{ClientId: clientA, Code: code, CodeVerifier: pkceVerifier, RedirectUri: redirectA})
	wantErr(t, err, apierr.InvalidGrant)
}
