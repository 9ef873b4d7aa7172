package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/audit/audittest"
	"github.com/moreline/moreid/platform/grpcx/grpctest"
	"github.com/moreline/moreid/platform/secret"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
	"github.com/moreline/moreid/services/auth/internal/oauth"
)

const pkceVerifier = "M25iVXpKU3puUjFaYWg3T1NDTDQtcW1ROUY5YXlwalNoc0hhakxifmZHag"

func s256(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// oidc is the back channel's client on e's public listener.
func (e *env) oidc(t *testing.T) authv1.OIDCClientServiceClient {
	t.Helper()
	return authv1.NewOIDCClientServiceClient(grpctest.Dial(t, e.authAddr))
}

// putOIDCCode writes a finished authorization as the front channel's
// Decide does, for alice, and returns the code.
func (e *env) putOIDCCode(t *testing.T, clientID string, keyID int64, redirectURI string, scopes ...string) string {
	t.Helper()
	code := secret.New("", 43, secret.Alphanumeric)
	rec := oauth.OIDCCodeRecord{ClientID: clientID, KeyID: keyID, RedirectURI: redirectURI, Scopes: scopes, Nonce: "nonce-1",
		Challenge: s256(pkceVerifier), User: 7, UserID: aliceID, AuthTime: time.Now().Unix(), Grant: secret.New("", 22, secret.Alphanumeric)}
	b, _ := json.Marshal(rec)
	if err := e.rdb.Set(context.Background(), e.prefix+"oidc:code:{"+secret.Hash(code)+"}", b, oauth.OIDCCodeTTL).Err(); err != nil {
		t.Fatal(err)
	}
	return code
}

// codeGrant runs the authorization_code grant of client A for alice.
func (e *env) codeGrant(t *testing.T, scopes ...string) *authv1.OIDCGrant {
	t.Helper()
	r, err := e.oidc(t).RedeemCode(as(t, keyA), &authv1.RedeemCodeRequest{ClientId: clientA, Code: e.putOIDCCode(t, clientA, 1, redirectA, scopes...), CodeVerifier: pkceVerifier, RedirectUri: redirectA})
	if err != nil {
		t.Fatalf("RedeemCode: %v", err)
	}
	return r.GetGrant()
}

// decideDevice sets a device record's state as the verification page does.
func (e *env) decideDevice(t *testing.T, deviceCode, state string) {
	t.Helper()
	ctx := context.Background()
	key := e.prefix + "oidc:device:{" + secret.Hash(deviceCode) + "}"
	b, err := e.rdb.Get(ctx, key).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var rec oauth.DeviceRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	rec.State, rec.User, rec.UserID, rec.AuthTime = state, 7, aliceID, time.Now().Unix()
	b, _ = json.Marshal(rec)
	if err := e.rdb.Set(ctx, key, b, redis.KeepTTL).Err(); err != nil {
		t.Fatal(err)
	}
}

// noOIDCSecrets is noSecretsStored over the OIDC records too, which
// include Redis hashes (grants, families, consents).
func (e *env) noOIDCSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	ctx := context.Background()
	iter := e.rdb.Scan(ctx, 0, e.prefix+"*", 100).Iterator()
	n := 0
	for iter.Next(ctx) {
		n++
		k := iter.Val()
		typ, err := e.rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatalf("TYPE %s: %v", k, err)
		}
		var v string
		switch typ {
		case "string":
			v, err = e.rdb.Get(ctx, k).Result()
		case "set":
			var m []string
			m, err = e.rdb.SMembers(ctx, k).Result()
			v = strings.Join(m, " ")
		case "hash":
			var m map[string]string
			m, err = e.rdb.HGetAll(ctx, k).Result()
			for f, x := range m {
				v += f + "=" + x + " "
			}
		case "none":
			continue
		default:
			t.Fatalf("unexpected %s record %s", typ, k)
		}
		if err != nil {
			t.Fatalf("read %s: %v", k, err)
		}
		for _, s := range secrets {
			if strings.Contains(k, s) || strings.Contains(v, s) {
				t.Errorf("record %s = %s holds a secret", k, v)
			}
		}
	}
	if err := iter.Err(); err != nil || n == 0 {
		t.Fatalf("scan: %d keys, %v", n, err)
	}
}

// addKey registers another key with the in-test key service.
func (e *env) addKey(key string, k fakeKey) {
	e.keys.mu.Lock()
	defer e.keys.mu.Unlock()
	e.keys.keys[key] = k
}

func TestOIDCClientAuthentication(t *testing.T) {
	e := newEnv(t, options{})
	c := e.oidc(t)
	keyPublicListed := "ml_" + secret.New("", 64, secret.Hex)
	clientPublicListed := "mlc_" + secret.New("", 32, secret.Hex)
	e.addKey(keyPublicListed, fakeKey{record: &apikeyv1.APIKey{Id: 6, Name: "public listed", ClientId: clientPublicListed, Public: true,
		RedirectUris: []string{"http://127.0.0.1:9/cb"}, Whitelist: []string{"203.0.113.0/24"}},
		whitelist: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}})
	keyless := func(t *testing.T, clientID, ip string) context.Context {
		kv := []string{wire.OIDCClientID, clientID}
		if ip != "" {
			kv = append(kv, wire.ClientIP, ip)
		}
		return as(t, "", kv...)
	}
	tests := []struct {
		name     string
		ctx      func(t *testing.T) context.Context
		clientID string
		want     apierr.Kind
		public   bool
		keyID    int64
	}{
		{"confidential", func(t *testing.T) context.Context { return as(t, keyA) }, clientA, "", false, 1},
		{"secret of another client", func(t *testing.T) context.Context { return as(t, keyB) }, clientA, apierr.InvalidClient, false, 0},
		{"no client_id", func(t *testing.T) context.Context { return as(t, keyA) }, "", apierr.InvalidClient, false, 0},
		{"unknown secret", func(t *testing.T) context.Context { return as(t, "ml_"+secret.New("", 64, secret.Hex)) }, clientA, apierr.InvalidClient, false, 0},
		{"public client's stored secret", func(t *testing.T) context.Context { return as(t, keyPublic) }, clientPublic, apierr.InvalidClient, false, 0},
		{"public client without key", func(t *testing.T) context.Context { return keyless(t, clientPublic, "") }, clientPublic, "", true, 5},
		{"public header, other client_id", func(t *testing.T) context.Context { return keyless(t, clientPublic, "") }, clientA, apierr.InvalidClient, false, 0},
		{"confidential client without key", func(t *testing.T) context.Context { return keyless(t, clientA, "") }, clientA, apierr.InvalidClient, false, 0},
		{"unknown client without key", func(t *testing.T) context.Context { return keyless(t, "mlc_nobody", "") }, "mlc_nobody", apierr.InvalidClient, false, 0},
		{"nothing", func(t *testing.T) context.Context { return as(t, "") }, clientA, apierr.InvalidClient, false, 0},
		{"confidential inside whitelist", func(t *testing.T) context.Context { return from(t, keyListed, "203.0.113.9") }, clientListed, "", false, 4},
		{"confidential outside whitelist", func(t *testing.T) context.Context { return from(t, keyListed, "198.51.100.1") }, clientListed, apierr.IPNotAllowed, false, 0},
		{"public inside whitelist", func(t *testing.T) context.Context { return keyless(t, clientPublicListed, "203.0.113.9") }, clientPublicListed, "", true, 6},
		{"public outside whitelist", func(t *testing.T) context.Context { return keyless(t, clientPublicListed, "198.51.100.1") }, clientPublicListed, apierr.IPNotAllowed, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := c.AuthenticateClient(tt.ctx(t), &authv1.AuthenticateClientRequest{ClientId: tt.clientID})
			if tt.want != "" {
				wantErr(t, err, tt.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := r.GetClient()
			if got.GetClientId() != tt.clientID || got.GetPublic() != tt.public || got.GetApiKeyId() != tt.keyID || len(got.GetRedirectUris()) == 0 {
				t.Fatalf("client = %v", got)
			}
		})
	}
	// The same check guards every method, not just AuthenticateClient.
	_, err := c.Introspect(as(t, keyB), &authv1.IntrospectRequest{ClientId: clientA, Token: "token_x"})
	wantErr(t, err, apierr.InvalidClient)
}

func TestOIDCGrants(t *testing.T) {
	rec := &audittest.Recorder{}
	e := newEnv(t, options{events: rec})
	c := e.oidc(t)

	t.Run("authorization_code works on /api/oauth too", func(t *testing.T) {
		g := e.codeGrant(t, "openid", "profile", "offline_access")
		if !strings.HasPrefix(g.GetAccessToken(), "token_") || !strings.HasPrefix(g.GetRefreshToken(), "mlrt_") || g.GetSubject() != "7" ||
			g.GetNonce() != "nonce-1" || g.GetClientId() != clientA || g.GetExpiresIn() != int32(tokenTTL/time.Second) || g.GetAuthTime() == nil {
			t.Fatalf("grant = %v", g)
		}
		ctx := as(t, keyA, wire.Authorization, "Bearer "+g.GetAccessToken())
		if u, err := e.tokens.GetUserinfo(ctx, &authv1.GetUserinfoRequest{}); err != nil || u.GetUser().GetUserId() != aliceID {
			t.Fatalf("userinfo = %v, %v", u, err)
		}
		if u, err := e.auth.GetTokenUser(ctx, &authv1.GetTokenUserRequest{}); err != nil || u.GetUser().GetUserId() != aliceID {
			t.Fatalf("token/user = %v, %v", u, err)
		}
		e.noOIDCSecrets(t, g.GetAccessToken(), g.GetRefreshToken())
	})
	t.Run("public client with PKCE", func(t *testing.T) {
		code := e.putOIDCCode(t, clientPublic, 5, redirectPublic, "openid")
		r, err := c.RedeemCode(as(t, "", wire.OIDCClientID, clientPublic), &authv1.RedeemCodeRequest{ClientId: clientPublic, Code: code, CodeVerifier: pkceVerifier, RedirectUri: redirectPublic})
		if err != nil || r.GetGrant().GetRefreshToken() != "" || r.GetGrant().GetAccessToken() == "" {
			t.Fatalf("RedeemCode = %v, %v", r, err)
		}
	})
	t.Run("refresh rotates", func(t *testing.T) {
		g := e.codeGrant(t, "openid", "offline_access")
		r, err := c.Refresh(as(t, keyA), &authv1.RefreshRequest{ClientId: clientA, RefreshToken: g.GetRefreshToken()})
		if err != nil || r.GetGrant().GetRefreshToken() == g.GetRefreshToken() || r.GetGrant().GetAccessToken() == g.GetAccessToken() {
			t.Fatalf("Refresh = %v, %v", r, err)
		}
	})
	t.Run("client_credentials", func(t *testing.T) {
		r, err := c.IssueClientToken(as(t, keyA), &authv1.IssueClientTokenRequest{ClientId: clientA, Scopes: []string{"openid", "reports", "offline_access"}})
		if err != nil {
			t.Fatal(err)
		}
		g := r.GetGrant()
		if g.GetSubject() != "" || g.GetRefreshToken() != "" || !slices.Equal(g.GetScopes(), []string{"reports"}) {
			t.Fatalf("grant = %v", g)
		}
		// No user endpoint takes it; its client can introspect it.
		ctx := as(t, keyA, wire.Authorization, "Bearer "+g.GetAccessToken())
		_, err = e.tokens.GetUserinfo(ctx, &authv1.GetUserinfoRequest{})
		wantErr(t, err, apierr.InvalidToken)
		_, err = e.auth.GetTokenUser(ctx, &authv1.GetTokenUserRequest{})
		wantErr(t, err, apierr.InvalidToken)
		in, err := c.Introspect(as(t, keyA), &authv1.IntrospectRequest{ClientId: clientA, Token: g.GetAccessToken()})
		if err != nil || !in.GetActive() || in.GetSub() != "" || in.GetScope() != "reports" || in.GetClientId() != clientA {
			t.Fatalf("Introspect = %v, %v", in, err)
		}
	})
	t.Run("device", func(t *testing.T) {
		dc := secret.New("", 43, secret.Alphanumeric)
		s, err := c.StartDevice(as(t, keyA), &authv1.StartDeviceRequest{ClientId: clientA, DeviceCode: dc, UserCode: "BCDF-GHJK", Scopes: []string{"openid", "offline_access"}, ExpiresIn: 600})
		if err != nil || s.GetInterval() != 5 {
			t.Fatalf("StartDevice = %v, %v", s, err)
		}
		e.decideDevice(t, dc, oauth.DeviceApproved)
		r, err := c.PollDevice(as(t, keyA), &authv1.PollDeviceRequest{ClientId: clientA, DeviceCode: dc})
		if err != nil || r.GetGrant().GetSubject() != "7" || r.GetGrant().GetRefreshToken() == "" {
			t.Fatalf("PollDevice = %v, %v", r, err)
		}
		e.noOIDCSecrets(t, dc, "BCDFGHJK", "BCDF-GHJK"[:4]+"GHJK", r.GetGrant().GetAccessToken())
	})
	events := rec.Take()
	for _, want := range []audit.Event{
		{Event: "oidc.token", Outcome: audit.Success, UserID: aliceID, APIKeyID: 1, Detail: "authorization_code"},
		{Event: "oidc.token", Outcome: audit.Success, UserID: aliceID, APIKeyID: 1, Detail: "refresh_token"},
		{Event: "oidc.client_credentials", Outcome: audit.Success, APIKeyID: 1, Detail: "client_credentials"},
		{Event: "oidc.device", Outcome: audit.Success, APIKeyID: 1, Detail: "start"},
		{Event: "oidc.device", Outcome: audit.Success, UserID: aliceID, APIKeyID: 1, Detail: "redeem"},
		{Event: "oidc.introspect", Outcome: audit.Success, APIKeyID: 1, Detail: "active"},
	} {
		if !slices.ContainsFunc(events, func(e audit.Event) bool { e.ClientIP = ""; return e == want }) {
			t.Errorf("no event %+v in %+v", want, events)
		}
	}
}

// Every error reason a grant answers, through the wire.
func TestOIDCGrantErrors(t *testing.T) {
	rec := &audittest.Recorder{}
	e := newEnv(t, options{events: rec})
	c := e.oidc(t)
	startDevice := func(t *testing.T) string {
		dc := secret.New("", 43, secret.Alphanumeric)
		if _, err := c.StartDevice(as(t, keyA), &authv1.StartDeviceRequest{ClientId: clientA, DeviceCode: dc, UserCode: secret.New("", 8, "BCDFGHJKLMNPQRSTVWXZ"), ExpiresIn: 600}); err != nil {
			t.Fatal(err)
		}
		return dc
	}
	poll := func(t *testing.T, dc string) error {
		_, err := c.PollDevice(as(t, keyA), &authv1.PollDeviceRequest{ClientId: clientA, DeviceCode: dc})
		return err
	}
	tests := []struct {
		name  string
		call  func(t *testing.T) error
		want  apierr.Kind
		event audit.Event
	}{
		{"wrong verifier", func(t *testing.T) error {
			_, err := c.RedeemCode(as(t, keyA), &authv1.RedeemCodeRequest{ClientId: clientA, Code: e.putOIDCCode(t, clientA, 1, redirectA), CodeVerifier: pkceVerifier + "x", RedirectUri: redirectA})
			return err
		}, apierr.InvalidGrant, audit.Event{Event: "oidc.token", Outcome: audit.Failure, APIKeyID: 1, Detail: "invalid_grant"}},
		{"code replay", func(t *testing.T) error {
			code := e.putOIDCCode(t, clientA, 1, redirectA)
			req := &authv1.RedeemCodeRequest{ClientId: clientA, Code: code, CodeVerifier: pkceVerifier, RedirectUri: redirectA}
			if _, err := c.RedeemCode(as(t, keyA), req); err != nil {
				t.Fatal(err)
			}
			_, err := c.RedeemCode(as(t, keyA), req)
			return err
		}, apierr.InvalidGrant, audit.Event{Event: "oidc.code_replay", Outcome: audit.Success, APIKeyID: 1, Detail: "grant_revoked"}},
		{"refresh reuse", func(t *testing.T) error {
			g := e.codeGrant(t, "offline_access")
			req := &authv1.RefreshRequest{ClientId: clientA, RefreshToken: g.GetRefreshToken()}
			if _, err := c.Refresh(as(t, keyA), req); err != nil {
				t.Fatal(err)
			}
			_, err := c.Refresh(as(t, keyA), req)
			return err
		}, apierr.InvalidGrant, audit.Event{Event: "oidc.refresh_reuse", Outcome: audit.Success, UserID: aliceID, APIKeyID: 1, Detail: "family_revoked"}},
		{"wider scope", func(t *testing.T) error {
			g := e.codeGrant(t, "offline_access")
			_, err := c.Refresh(as(t, keyA), &authv1.RefreshRequest{ClientId: clientA, RefreshToken: g.GetRefreshToken(), Scopes: []string{"email"}})
			return err
		}, apierr.InvalidScope, audit.Event{Event: "oidc.token", Outcome: audit.Failure, UserID: aliceID, APIKeyID: 1, Detail: "invalid_scope"}},
		{"refresh after the key's revocation", func(t *testing.T) error {
			k := "ml_" + secret.New("", 64, secret.Hex)
			cid := "mlc_" + secret.New("", 32, secret.Hex)
			e.addKey(k, fakeKey{record: &apikeyv1.APIKey{Id: 9, Name: "doomed", ClientId: cid}})
			code := e.putOIDCCode(t, cid, 9, redirectA, "offline_access")
			r, err := c.RedeemCode(as(t, k), &authv1.RedeemCodeRequest{ClientId: cid, Code: code, CodeVerifier: pkceVerifier, RedirectUri: redirectA})
			if err != nil {
				t.Fatal(err)
			}
			e.keys.revoke(k)
			// Presented as the public route would: only the key check of
			// the refresh itself can refuse it now that the key is cached.
			_, err = c.Refresh(as(t, k), &authv1.RefreshRequest{ClientId: cid, RefreshToken: r.GetGrant().GetRefreshToken()})
			if apierr.Is(apierr.FromTransport(err), apierr.InvalidClient) {
				return apierr.New(apierr.InvalidGrant) // the interceptor refused first: also a refusal
			}
			return err
		}, apierr.InvalidGrant, audit.Event{}},
		{"client_credentials for a public client", func(t *testing.T) error {
			_, err := c.IssueClientToken(as(t, "", wire.OIDCClientID, clientPublic), &authv1.IssueClientTokenRequest{ClientId: clientPublic})
			return err
		}, apierr.UnauthorizedClient, audit.Event{Event: "oidc.client_credentials", Outcome: audit.Failure, APIKeyID: 5, Detail: "unauthorized_client"}},
		{"authorization_pending", func(t *testing.T) error { return poll(t, startDevice(t)) }, apierr.AuthorizationPending,
			audit.Event{Event: "oidc.device", Outcome: audit.Failure, APIKeyID: 1, Detail: "authorization_pending"}},
		{"slow_down", func(t *testing.T) error {
			dc := startDevice(t)
			wantErr(t, poll(t, dc), apierr.AuthorizationPending)
			return poll(t, dc) // well within the 5 s interval
		}, apierr.SlowDown, audit.Event{Event: "oidc.device", Outcome: audit.Failure, APIKeyID: 1, Detail: "slow_down"}},
		{"access_denied", func(t *testing.T) error {
			dc := startDevice(t)
			e.decideDevice(t, dc, oauth.DeviceDenied)
			return poll(t, dc)
		}, apierr.AccessDenied, audit.Event{Event: "oidc.device", Outcome: audit.Failure, APIKeyID: 1, Detail: "access_denied"}},
		{"device code redeemed", func(t *testing.T) error {
			dc := startDevice(t)
			e.decideDevice(t, dc, oauth.DeviceApproved)
			if err := poll(t, dc); err != nil {
				t.Fatal(err)
			}
			// The redeemed state is told before the interval is.
			return poll(t, dc)
		}, apierr.InvalidGrant, audit.Event{Event: "oidc.device", Outcome: audit.Failure, UserID: "", APIKeyID: 1, Detail: "invalid_grant"}},
		{"device expired", func(t *testing.T) error {
			dc := startDevice(t)
			// The record's end as Redis ends it; the tombstone remains.
			if err := e.rdb.Del(context.Background(), e.prefix+"oidc:device:{"+secret.Hash(dc)+"}").Err(); err != nil {
				t.Fatal(err)
			}
			return poll(t, dc)
		}, apierr.ExpiredToken, audit.Event{Event: "oidc.device", Outcome: audit.Failure, APIKeyID: 1, Detail: "expired_token"}},
		{"unknown device code", func(t *testing.T) error { return poll(t, "nope") }, apierr.InvalidGrant, audit.Event{}},
		{"user code taken", func(t *testing.T) error {
			req := &authv1.StartDeviceRequest{ClientId: clientA, DeviceCode: secret.New("", 43, secret.Alphanumeric), UserCode: "WXYZ-WXYZ"}
			if _, err := c.StartDevice(as(t, keyA), req); err != nil {
				t.Fatal(err)
			}
			req.DeviceCode = secret.New("", 43, secret.Alphanumeric)
			req.UserCode = "wxyzwxyz"
			_, err := c.StartDevice(as(t, keyA), req)
			return err
		}, apierr.Conflict, audit.Event{Event: "oidc.device", Outcome: audit.Failure, APIKeyID: 1, Detail: "conflict"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.Take()
			wantErr(t, tt.call(t), tt.want)
			if tt.event.Event == "" {
				return
			}
			events := rec.Take()
			if !slices.ContainsFunc(events, func(e audit.Event) bool { e.ClientIP = ""; return e == tt.event }) {
				t.Fatalf("no event %+v in %+v", tt.event, events)
			}
		})
	}
}

func TestOIDCIntrospectAndRevoke(t *testing.T) {
	e := newEnv(t, options{})
	c := e.oidc(t)
	t.Run("introspection is the owner's", func(t *testing.T) {
		g := e.codeGrant(t, "openid", "offline_access")
		tests := []struct {
			name   string
			key    string
			client string
			token  string
			active bool
			typ    string
		}{
			{"access by owner", keyA, clientA, g.GetAccessToken(), true, "Bearer"},
			{"refresh by owner", keyA, clientA, g.GetRefreshToken(), true, "refresh_token"},
			{"access by another client", keyB, clientB, g.GetAccessToken(), false, ""},
			{"refresh by another client", keyB, clientB, g.GetRefreshToken(), false, ""},
			{"unknown", keyA, clientA, "token_" + secret.New("", 56, secret.Alphanumeric), false, ""},
			{"garbage", keyA, clientA, "x", false, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				in, err := c.Introspect(as(t, tt.key), &authv1.IntrospectRequest{ClientId: tt.client, Token: tt.token})
				if err != nil || in.GetActive() != tt.active {
					t.Fatalf("Introspect = %v, %v", in, err)
				}
				if !tt.active {
					if in.GetSub() != "" || in.GetClientId() != "" || in.GetExpiresAt() != nil {
						t.Fatalf("inactive answer tells %v", in)
					}
					return
				}
				if in.GetSub() != "7" || in.GetUsername() != aliceID || in.GetClientId() != clientA || in.GetTokenType() != tt.typ ||
					in.GetScope() != "openid offline_access" || !in.GetExpiresAt().AsTime().After(time.Now()) || in.GetIssuedAt() == nil {
					t.Fatalf("Introspect = %v", in)
				}
			})
		}
	})
	refresh := func(t *testing.T, rt string) error {
		_, err := c.Refresh(as(t, keyA), &authv1.RefreshRequest{ClientId: clientA, RefreshToken: rt})
		return err
	}
	works := func(t *testing.T, at string) error {
		_, err := e.tokens.GetUserinfo(as(t, "", wire.Authorization, "Bearer "+at), &authv1.GetUserinfoRequest{})
		return err
	}
	t.Run("another client's revocation touches nothing", func(t *testing.T) {
		g := e.codeGrant(t, "offline_access")
		for _, tok := range []string{g.GetAccessToken(), g.GetRefreshToken(), "junk"} {
			if _, err := c.Revoke(as(t, keyB), &authv1.RevokeRequest{ClientId: clientB, Token: tok}); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
		}
		if err := works(t, g.GetAccessToken()); err != nil {
			t.Fatal(err)
		}
		if err := refresh(t, g.GetRefreshToken()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("access token", func(t *testing.T) {
		g := e.codeGrant(t, "offline_access")
		if _, err := c.Revoke(as(t, keyA), &authv1.RevokeRequest{ClientId: clientA, Token: g.GetAccessToken(), TokenTypeHint: "access_token"}); err != nil {
			t.Fatal(err)
		}
		wantErr(t, works(t, g.GetAccessToken()), apierr.InvalidToken)
		if err := refresh(t, g.GetRefreshToken()); err != nil {
			t.Fatalf("the refresh token should survive its access token: %v", err)
		}
	})
	t.Run("refresh token ends the family", func(t *testing.T) {
		g := e.codeGrant(t, "offline_access")
		if _, err := c.Revoke(as(t, keyA), &authv1.RevokeRequest{ClientId: clientA, Token: g.GetRefreshToken()}); err != nil {
			t.Fatal(err)
		}
		wantErr(t, refresh(t, g.GetRefreshToken()), apierr.InvalidGrant)
		wantErr(t, works(t, g.GetAccessToken()), apierr.InvalidToken)
	})
	t.Run("revoke-tokens ends families", func(t *testing.T) {
		g := e.codeGrant(t, "offline_access")
		r, err := e.admin.RevokeUserTokens(context.Background(), &authv1.RevokeUserTokensRequest{UserId: aliceID})
		if err != nil || r.GetRevoked() < 2 {
			t.Fatalf("RevokeUserTokens = %v, %v", r, err)
		}
		wantErr(t, refresh(t, g.GetRefreshToken()), apierr.InvalidGrant)
		wantErr(t, works(t, g.GetAccessToken()), apierr.InvalidToken)
	})
}

func TestWithdrawConsent(t *testing.T) {
	e := newEnv(t, options{})
	ctx := context.Background()
	consents := e.prefix + "oidc:consent:{7}"
	put := func(t *testing.T) {
		b, _ := json.Marshal(oauth.ConsentRecord{Scopes: []string{"openid"}, GrantedAt: 1})
		if err := e.rdb.HSet(ctx, consents, clientA, b, clientB, b).Err(); err != nil {
			t.Fatal(err)
		}
	}
	works := func(t *testing.T, at string) error {
		_, err := e.tokens.GetUserinfo(as(t, "", wire.Authorization, "Bearer "+at), &authv1.GetUserinfoRequest{})
		return err
	}
	put(t)
	g := e.codeGrant(t, "offline_access")
	plain := e.accessToken(t, keyA, aliceID, alicePass) // an /api/oauth token: no consent behind it
	r, err := e.admin.WithdrawConsent(ctx, &authv1.WithdrawConsentRequest{UserId: aliceID, ClientId: clientA})
	if err != nil || r.GetWithdrawn() != 1 {
		t.Fatalf("WithdrawConsent = %v, %v", r, err)
	}
	wantErr(t, works(t, g.GetAccessToken()), apierr.InvalidToken)
	_, err = e.oidc(t).Refresh(as(t, keyA), &authv1.RefreshRequest{ClientId: clientA, RefreshToken: g.GetRefreshToken()})
	wantErr(t, err, apierr.InvalidGrant)
	if err := works(t, plain); err != nil {
		t.Fatalf("the /api/oauth token ended too: %v", err)
	}
	if left, _ := e.rdb.HKeys(ctx, consents).Result(); !slices.Equal(left, []string{clientB}) {
		t.Fatalf("consents left: %v", left)
	}
	r, err = e.admin.WithdrawConsent(ctx, &authv1.WithdrawConsentRequest{UserId: aliceID})
	if err != nil || r.GetWithdrawn() != 1 {
		t.Fatalf("WithdrawConsent all = %v, %v", r, err)
	}
	if n, _ := e.rdb.Exists(ctx, consents).Result(); n != 0 {
		t.Fatal("consents remain")
	}
	_, err = e.admin.WithdrawConsent(ctx, &authv1.WithdrawConsentRequest{UserId: "nobody"})
	wantErr(t, err, apierr.NotFound)
}
