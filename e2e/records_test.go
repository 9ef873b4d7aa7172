package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/e2e/harness"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

// A redeemed code replayed by another app, 64 times at once, is as if it
// did not exist: the owner's token keeps working. The owner's own replay
// revokes it (RFC 6749 4.1.2).
func TestCodeReplayByAnotherKey(t *testing.T) {
	f := startFlowSuite(t)
	state, code := f.app.login(t, "alice", alicePassword)
	tok := f.app.do(t, "POST", "/api/oauth/token", map[string]string{"code": code, "state": state})
	expectSuccess(t, tok, "获取访问令牌成功")
	bearer := "Bearer " + tok.str("access_token")

	const n = 64
	results := atOnce(n, func(int) answer {
		return f.other.do(t, "POST", "/api/oauth/token", map[string]string{"code": code, "state": state})
	})
	for _, a := range results {
		expectError(t, a, 409, "invalid_code")
	}
	if a := f.app.do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", bearer); a.Status != 200 {
		t.Fatalf("the owner's token after another key's replays: %d %s", a.Status, a.Raw)
	}

	expectError(t, f.app.do(t, "POST", "/api/oauth/token", map[string]string{"code": code, "state": state}), 409, "invalid_code")
	expectError(t, f.app.do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", bearer), 401, "invalid_token")
}

// Revoking a key with moreidctl ends its access tokens on every Bearer
// surface, through the gateway and on TokenService, within a second (the
// key cache's 500 ms), and leaves another key's tokens alone.
func TestRevokedKeyEndsItsTokens(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	app := newClient(s.BaseURL, s.CreateKey(t, "Revoked app"))
	other := newClient(s.BaseURL, s.CreateKey(t, "Other app"))
	token := func(c *apiClient) string {
		state, code := c.login(t, "alice", alicePassword)
		a := c.do(t, "POST", "/api/oauth/token", map[string]string{"code": code, "state": state})
		expectSuccess(t, a, "获取访问令牌成功")
		return a.str("access_token")
	}
	tok, otherTok := token(app), token(other)
	updateState := app.authorize(t)

	conn, err := grpcx.Dial(s.Env["MOREID_AUTH_ADDR"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	tokens := authv1.NewTokenServiceClient(conn)
	active := func(tok string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, wire.APIKey, app.key)
		r, err := tokens.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: tok})
		if status.Code(err) == codes.Unauthenticated {
			// Introspection answers only its caller's key: a revoked key
			// is refused itself, and its token is not active either.
			return false
		}
		if err != nil {
			t.Fatalf("IntrospectToken: %v", err)
		}
		return r.GetActive()
	}
	// surfaces are the Bearer calls, each with what a revoked key's token
	// gets: the ones that need the key too refuse the key.
	surfaces := []struct {
		name   string
		call   func(c *apiClient, tok string) answer
		status int
		kinds  []string
	}{
		{"userinfo", func(c *apiClient, tok string) answer {
			return c.do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", "Bearer "+tok)
		}, 401, []string{"invalid_token"}},
		{"token/user", func(c *apiClient, tok string) answer {
			return c.do(t, "GET", "/api/oauth/token/user", nil, "Authorization", "Bearer "+tok)
		}, 401, []string{"invalid_token", "invalid_api_key"}},
		// Not called before the revocation: it would use up the state.
		{"user/update with Bearer", func(c *apiClient, tok string) answer {
			return c.do(t, "POST", "/api/oauth/user/update", map[string]string{"user_id": "alice", "state": updateState, "bio": "x"}, "Authorization", "Bearer "+tok)
		}, 401, []string{"invalid_token", "invalid_api_key"}},
	}
	for _, sf := range surfaces[:2] {
		if a := sf.call(app, tok); a.Status != 200 {
			t.Fatalf("%s before the revocation: %d %s", sf.name, a.Status, a.Raw)
		}
	}
	if !active(tok) {
		t.Fatal("token inactive before the revocation")
	}

	s.MustCtl(t, "", "apikey", "revoke", keyID(t, s, "Revoked app"))
	revoked := time.Now()
	refused := func() bool {
		if active(tok) {
			return false
		}
		for _, sf := range surfaces {
			a := sf.call(app, tok)
			if a.Status != sf.status || !slices.Contains(sf.kinds, a.str("error")) {
				return false
			}
		}
		return true
	}
	for !refused() {
		// The bound is the key cache's 500 ms; the margin is for a
		// loaded machine, and the time taken is reported.
		if time.Since(revoked) > 3*time.Second {
			for _, sf := range surfaces {
				a := sf.call(app, tok)
				t.Logf("%s: %d %s", sf.name, a.Status, a.Raw)
			}
			t.Fatal("a revoked key's token still works 3 s after the revocation")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("a revoked key's token refused on every surface %v after moreidctl returned", time.Since(revoked).Round(time.Millisecond))

	if a := other.do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", "Bearer "+otherTok); a.Status != 200 {
		t.Fatalf("another key's token after the revocation: %d %s", a.Status, a.Raw)
	}
	if a := other.do(t, "GET", "/api/oauth/token/user", nil, "Authorization", "Bearer "+otherTok); a.Status != 200 {
		t.Fatalf("another key's token/user after the revocation: %d %s", a.Status, a.Raw)
	}
}

// login_safe while Postgres is down answers 503 and consumes nothing: once
// Postgres is back, the same state and login code sign in.
func TestLoginSafeDuringPostgresOutage(t *testing.T) {
	pg := harness.StartPostgres(t)
	// No profile cache: the user lookup must reach Postgres, not a profile
	// cached before the outage.
	s := harness.Start(t, harness.Options{PostgresServer: pg.URL, Env: map[string]string{
		"MOREID_USER_CACHE_SIZE": "0", "MOREID_POSTGRES_TIMEOUT": harness.ProductionPostgresTimeout,
	}})
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	app := newClient(s.BaseURL, s.CreateKey(t, "Safe app"))
	state, loginCode := app.safeLoginCode(t, "alice", alicePassword)
	// The key was validated just now; auth serves that answer while the
	// key service cannot reach Postgres.
	app.authorize(t)

	pg.Kill(t)
	a := app.do(t, "POST", "/api/oauth/login_safe", map[string]string{"state": state, "login_code": loginCode})
	expectError(t, a, 503, "unavailable")
	pg.Restart(t)

	// Waiting for the user service's pool to reconnect is no assertion:
	// the bound is generous.
	var got answer
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got = app.do(t, "POST", "/api/oauth/login_safe", map[string]string{"state": state, "login_code": loginCode})
		if got.Status != 503 || time.Now().After(deadline) {
			break
		}
	}
	expectSuccess(t, got, "登录成功，授权码已生成")
	tok := app.do(t, "POST", "/api/oauth/token", map[string]string{"code": got.str("code"), "state": state})
	expectSuccess(t, tok, "获取访问令牌成功")
}

// rsaEncryptionAlgID is the AlgorithmIdentifier every PKCS#8 RSA private
// key carries near its start (OID 1.2.840.113549.1.1.1, NULL): sealed key
// material must not hold it.
var rsaEncryptionAlgID = []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00}

// redisDump is every key under prefix with its value, whatever the type.
func redisDump(t *testing.T, s *harness.Suite) (dump string, oidcKeys int) {
	t.Helper()
	ctx := context.Background()
	keys, err := s.Redis.Keys(ctx, s.RedisPrefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("redis keys under %s: %v (%d keys)", s.RedisPrefix, err, len(keys))
	}
	var b strings.Builder
	for _, k := range keys {
		if strings.HasPrefix(k, s.RedisPrefix+"oidc:") {
			oidcKeys++
		}
		typ, err := s.Redis.Type(ctx, k).Result()
		if err != nil {
			t.Fatalf("TYPE %s: %v", k, err)
		}
		var v any
		switch typ {
		case "string":
			v, err = s.Redis.Get(ctx, k).Result()
		case "hash":
			v, err = s.Redis.HGetAll(ctx, k).Result()
		case "set":
			v, err = s.Redis.SMembers(ctx, k).Result()
		case "zset":
			v, err = s.Redis.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "list":
			v, err = s.Redis.LRange(ctx, k, 0, -1).Result()
		case "none": // expired between KEYS and TYPE
		default:
			v, err = s.Redis.Dump(ctx, k).Result()
		}
		if err != nil && err != redis.Nil {
			t.Fatalf("reading %s (%s): %v", k, typ, err)
		}
		fmt.Fprintf(&b, "%s (%s) = %v\n", k, typ, v)
	}
	return b.String(), oidcKeys
}

// The OpenID Connect records hold no secret in clear: with a code waiting
// and one redeemed, access and refresh tokens (current and rotated out), a
// client token, a pending device authorization and a signed-in session,
// neither Redis (every <prefix>oidc:* record, whatever its type, and the
// rest) nor a pg_dump holds any of them, nor the client secrets; the
// signing keys' private parts are sealed (no PKCS#8 structure in
// private_enc) and their public JWK has no private member.
func TestOIDCDumpsHoldNoSecrets(t *testing.T) {
	f := startOIDCSuite(t, nil)
	alice := newOIDCPerson(t, f.BaseURL)
	l := f.login(t, alice, f.app, "alice", alicePassword)
	rotated := f.refresh(t, f.app, l.token.RefreshToken)
	if rotated.Status != 200 {
		t.Fatalf("refresh: %d %s", rotated.Status, rotated.Raw)
	}
	pending := f.authURL(t, f.app, []string{"openid"})
	waiting := f.checkCallback(t, f.authorize(t, alice, pending, "alice", alicePassword), pending)
	cc := f.post(t, f.other, "/oidc/token", url.Values{"grant_type": {"client_credentials"}})
	if cc.Status != 200 {
		t.Fatalf("client_credentials: %d %s", cc.Status, cc.Raw)
	}
	d := f.startDevice(t, f.app, "openid")
	secrets := map[string]string{
		"password": alicePassword, "client secret": f.app.secret, "other client secret": f.other.secret,
		"redeemed code": f.rp.find("/callback", l.req.state).Get("code"), "waiting code": waiting,
		"PKCE verifier": pending.verifier,
		"access token":  l.token.AccessToken, "rotated-out refresh token": l.token.RefreshToken,
		"refresh token": rotated.str("refresh_token"), "refreshed access token": rotated.str("access_token"),
		"client token": cc.str("access_token"), "device code": d.code,
		"user code": d.userCode, "user code, normalised": norm(d.userCode),
		"web session": alice.session(t),
	}

	rdump, oidcKeys := redisDump(t, f.Suite)
	if oidcKeys == 0 {
		t.Fatalf("no %soidc:* record in Redis: the OIDC records are not where ARCHITECTURE says", f.RedisPrefix)
	}
	pgdump, err := exec.Command("pg_dump", "--dbname", f.DSN).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	if !strings.Contains(string(pgdump), "oidc_signing_keys") {
		t.Fatal("the dump has no oidc_signing_keys table: wrong database?")
	}
	for name, secret := range secrets {
		if secret == "" {
			t.Fatalf("%s is empty", name)
		}
		if strings.Contains(rdump, secret) {
			t.Errorf("Redis holds the %s in clear", name)
		}
		if strings.Contains(string(pgdump), secret) {
			t.Errorf("the Postgres dump holds the %s in clear", name)
		}
	}
	if strings.Contains(string(pgdump), hex.EncodeToString(rsaEncryptionAlgID)) {
		t.Error("the Postgres dump holds PKCS#8 RSA key material (its AlgorithmIdentifier) in clear")
	}

	db := pgdbtest.Open(t, f.DSN, 1)
	var rows []struct {
		Kid        string
		PrivateEnc []byte
		PublicJWK  string `gorm:"column:public_jwk"`
	}
	if err := db.Raw(`SELECT kid, private_enc, public_jwk::text AS public_jwk FROM oidc_signing_keys`).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatal("oidc_signing_keys is empty though an ID token was signed")
	}
	for _, r := range rows {
		if len(r.PrivateEnc) < 1000 {
			t.Errorf("key %s: private_enc is %d bytes, too short for a sealed RSA-2048 key", r.Kid, len(r.PrivateEnc))
		}
		if bytes.Contains(r.PrivateEnc, rsaEncryptionAlgID) || bytes.HasPrefix(r.PrivateEnc, []byte{0x30, 0x82}) {
			t.Errorf("key %s: private_enc holds a PKCS#8 DER structure, not a sealed one", r.Kid)
		}
		if bytes.Contains(r.PrivateEnc, []byte("MII")) || bytes.Contains(r.PrivateEnc, []byte("PRIVATE KEY")) {
			t.Errorf("key %s: private_enc holds PEM or base64 key material", r.Kid)
		}
		var jwk map[string]any
		if err := json.Unmarshal([]byte(r.PublicJWK), &jwk); err != nil {
			t.Errorf("key %s: public_jwk is not JSON: %v", r.Kid, err)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := jwk[private]; ok {
				t.Errorf("key %s: public_jwk holds the private member %q", r.Kid, private)
			}
		}
	}
}
