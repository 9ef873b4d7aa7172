package server_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/audit/audittest"
	"github.com/moreline/moreid/platform/grpcx/grpctest"
	"github.com/moreline/moreid/platform/redisdb"
	"github.com/moreline/moreid/platform/secret"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
	"github.com/moreline/moreid/services/auth/internal/oauth"
	"github.com/moreline/moreid/services/auth/internal/redisstore"
)

// A valid S256 challenge (of the verifier "x" * 43; its value is not
// checked here, only its form).
const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

// front is a client of the auth instance's OIDCService.
func (e *env) front(t *testing.T) authv1.OIDCServiceClient {
	t.Helper()
	return authv1.NewOIDCServiceClient(grpctest.Dial(t, e.authAddr))
}

// authReq is a valid request of client A; fields are overridden by mod.
func authReq(mod func(r *authv1.CreateAuthRequestRequest)) *authv1.CreateAuthRequestRequest {
	r := &authv1.CreateAuthRequestRequest{
		ClientId: clientA, RedirectUri: redirectA, Scopes: []string{"openid", "profile"},
		State: "rp-state", Nonce: "n-0S6_WzA2Mj", CodeChallenge: challenge, CodeChallengeMethod: "S256",
	}
	if mod != nil {
		mod(r)
	}
	return r
}

func (e *env) createAuthReq(t *testing.T, c authv1.OIDCServiceClient, mod func(r *authv1.CreateAuthRequestRequest)) *authv1.AuthRequest {
	t.Helper()
	r, err := c.CreateAuthRequest(as(t, ""), authReq(mod))
	if err != nil {
		t.Fatalf("CreateAuthRequest: %v", err)
	}
	return r.GetAuthRequest()
}

// oidcSession signs a user in on the device page (no auth request) and
// returns the session as the page calls carry it.
func oidcSession(t *testing.T, c authv1.OIDCServiceClient, userID, password string) *authv1.SignInResponse {
	t.Helper()
	r, err := c.SignIn(as(t, ""), &authv1.OIDCServiceSignInRequest{UserId: userID, Password: password})
	if err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	return &authv1.SignInResponse{Session: r.GetSession(), CsrfToken: r.GetCsrfToken()}
}

// codeRecord reads the stored code record of an OIDC code.
func (e *env) codeRecord(t *testing.T, code string) (oauth.OIDCCodeRecord, bool) {
	t.Helper()
	v, err := e.rdb.Get(context.Background(), e.prefix+"oidc:code:{"+secret.Hash(code)+"}").Result()
	if err != nil {
		return oauth.OIDCCodeRecord{}, false
	}
	var rec oauth.OIDCCodeRecord
	if err := json.Unmarshal([]byte(v), &rec); err != nil {
		t.Fatal(err)
	}
	return rec, true
}

// noSecretInRecords is noSecretsStored over the OIDC records too (the
// consent hash among them).
func (e *env) noSecretInRecords(t *testing.T, secrets ...string) {
	t.Helper()
	ctx := context.Background()
	keys, err := e.rdb.Keys(ctx, e.prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys: %v, %v", keys, err)
	}
	for _, k := range keys {
		var v string
		switch typ := e.rdb.Type(ctx, k).Val(); typ {
		case "string":
			v = e.rdb.Get(ctx, k).Val()
		case "set":
			v = strings.Join(e.rdb.SMembers(ctx, k).Val(), " ")
		case "hash":
			b, _ := json.Marshal(e.rdb.HGetAll(ctx, k).Val())
			v = string(b)
		case "zset":
			v = strings.Join(e.rdb.ZRange(ctx, k, 0, -1).Val(), " ")
		}
		for _, s := range secrets {
			if strings.Contains(k, s) || strings.Contains(v, s) {
				t.Errorf("record %s = %s holds a secret", k, v)
			}
		}
	}
}

// countKeys counts the keys matching pattern under the test's prefix.
func (e *env) countKeys(t *testing.T, pattern string) int {
	t.Helper()
	keys, err := e.rdb.Keys(context.Background(), e.prefix+pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

func TestOIDCGetClient(t *testing.T) {
	e := newEnv(t, options{})
	c := e.front(t)
	e.keys.revoke(keyB)
	tests := []struct {
		name     string
		clientID string
		wantKind apierr.Kind
	}{
		{"registered", clientA, ""},
		{"public", clientPublic, ""},
		{"unknown", "mlc_" + secret.New("", 32, secret.Hex), apierr.InvalidClient},
		{"revoked", clientB, apierr.InvalidClient},
		{"malformed", "not a client", apierr.InvalidClient},
		{"empty", "", apierr.InvalidClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := c.GetClient(as(t, ""), &authv1.GetClientRequest{ClientId: tt.clientID})
			if tt.wantKind != "" {
				wantErr(t, err, tt.wantKind)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.GetClient().GetClientId() != tt.clientID {
				t.Fatalf("client = %v", r.GetClient())
			}
		})
	}
	r, err := c.GetClient(as(t, ""), &authv1.GetClientRequest{ClientId: clientA})
	want := &authv1.OIDCClient{ClientId: clientA, Name: "app A", RedirectUris: []string{redirectA, "http://127.0.0.1:8765/cb"},
		PostLogoutRedirectUris: []string{"https://a.example/bye"}, ApiKeyId: 1}
	if err != nil || !proto.Equal(r.GetClient(), want) {
		t.Fatalf("GetClient = %v, %v; want %v", r.GetClient(), err, want)
	}
}

func TestOIDCCreateAuthRequest(t *testing.T) {
	c0 := newClock()
	e := newEnv(t, options{clock: c0.now})
	c := e.front(t)
	neg, zero := int64(-1), int64(0)
	tests := []struct {
		name       string
		mod        func(r *authv1.CreateAuthRequestRequest)
		wantKind   apierr.Kind
		wantScopes []string
	}{
		{"valid", nil, "", []string{"openid", "profile"}},
		{"unknown scopes ignored", func(r *authv1.CreateAuthRequestRequest) {
			r.Scopes = []string{"openid", "admin", "email", "openid", "offline_access"}
		}, "", []string{"openid", "email", "offline_access"}},
		{"only unknown scopes", func(r *authv1.CreateAuthRequestRequest) { r.Scopes = []string{"admin"} }, apierr.InvalidScope, nil},
		{"no scope", func(r *authv1.CreateAuthRequestRequest) { r.Scopes = nil }, apierr.InvalidScope, nil},
		{"unknown client", func(r *authv1.CreateAuthRequestRequest) { r.ClientId = "mlc_" + secret.New("", 32, secret.Hex) }, apierr.InvalidClient, nil},
		{"unregistered redirect", func(r *authv1.CreateAuthRequestRequest) { r.RedirectUri = "https://evil.example/cb" }, apierr.InvalidRequest, nil},
		{"another client's redirect", func(r *authv1.CreateAuthRequestRequest) { r.RedirectUri = redirectB }, apierr.InvalidRequest, nil},
		{"redirect not exact", func(r *authv1.CreateAuthRequestRequest) { r.RedirectUri = redirectA + "/" }, apierr.InvalidRequest, nil},
		{"loopback other port", func(r *authv1.CreateAuthRequestRequest) { r.RedirectUri = "http://127.0.0.1:9999/cb" }, apierr.InvalidRequest, nil},
		{"second redirect", func(r *authv1.CreateAuthRequestRequest) { r.RedirectUri = "http://127.0.0.1:8765/cb" }, "", []string{"openid", "profile"}},
		{"plain", func(r *authv1.CreateAuthRequestRequest) { r.CodeChallengeMethod = "plain" }, apierr.InvalidRequest, nil},
		{"challenge without method", func(r *authv1.CreateAuthRequestRequest) { r.CodeChallengeMethod = "" }, apierr.InvalidRequest, nil},
		{"method without challenge", func(r *authv1.CreateAuthRequestRequest) { r.CodeChallenge = "" }, apierr.InvalidRequest, nil},
		{"malformed challenge", func(r *authv1.CreateAuthRequestRequest) { r.CodeChallenge = "short" }, apierr.InvalidRequest, nil},
		{"confidential without PKCE", func(r *authv1.CreateAuthRequestRequest) { r.CodeChallenge, r.CodeChallengeMethod = "", "" }, "", []string{"openid", "profile"}},
		{"public without PKCE", func(r *authv1.CreateAuthRequestRequest) {
			r.ClientId, r.RedirectUri, r.CodeChallenge, r.CodeChallengeMethod = clientPublic, redirectPublic, "", ""
		}, apierr.InvalidRequest, nil},
		{"public with S256", func(r *authv1.CreateAuthRequestRequest) { r.ClientId, r.RedirectUri = clientPublic, redirectPublic }, "", []string{"openid", "profile"}},
		{"prompt login consent", func(r *authv1.CreateAuthRequestRequest) { r.Prompt = []string{"login", "consent"} }, "", []string{"openid", "profile"}},
		{"prompt none", func(r *authv1.CreateAuthRequestRequest) { r.Prompt = []string{"none"} }, "", []string{"openid", "profile"}},
		{"prompt none with login", func(r *authv1.CreateAuthRequestRequest) { r.Prompt = []string{"none", "login"} }, apierr.InvalidRequest, nil},
		{"prompt unknown", func(r *authv1.CreateAuthRequestRequest) { r.Prompt = []string{"select_account"} }, apierr.InvalidRequest, nil},
		{"max_age 0", func(r *authv1.CreateAuthRequestRequest) { r.MaxAge = &zero }, "", []string{"openid", "profile"}},
		{"max_age negative", func(r *authv1.CreateAuthRequestRequest) { r.MaxAge = &neg }, apierr.InvalidRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := c.CreateAuthRequest(as(t, ""), authReq(tt.mod))
			if tt.wantKind != "" {
				wantErr(t, err, tt.wantKind)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ar := r.GetAuthRequest()
			if !slices.Equal(ar.GetScopes(), tt.wantScopes) {
				t.Fatalf("scopes = %v, want %v", ar.GetScopes(), tt.wantScopes)
			}
			key := "oidc:authreq:{" + ar.GetId() + "}"
			if d := e.pttl(t, key); d <= 9*time.Minute || d > 10*time.Minute {
				t.Fatalf("TTL of %s = %v, want 10 min", key, d)
			}
			var stored map[string]any
			v, err := e.rdb.Get(context.Background(), e.prefix+key).Result()
			if err != nil || json.Unmarshal([]byte(v), &stored) != nil {
				t.Fatalf("stored %q, %v", v, err)
			}
			if stored["t"] != float64(c0.now().Unix()) {
				t.Fatalf("created_at = %v, want %d", stored["t"], c0.now().Unix())
			}
			if !ar.GetExpiresAt().AsTime().Equal(c0.now().Add(10 * time.Minute)) {
				t.Fatalf("expires_at = %v", ar.GetExpiresAt().AsTime())
			}
			if len(ar.GetId()) < 32 {
				t.Fatalf("id %q too short", ar.GetId())
			}
		})
	}
}

func TestOIDCGetAuthRequest(t *testing.T) {
	e := newEnv(t, options{})
	c := e.front(t)
	ar := e.createAuthReq(t, c, nil)
	s := oidcSession(t, c, aliceID, alicePass)
	tests := []struct {
		name     string
		ctx      context.Context
		id       string
		wantUser string
		wantKind apierr.Kind
	}{
		{"no session", as(t, ""), ar.GetId(), "", ""},
		{"signed in", browser(t, s), ar.GetId(), aliceID, ""},
		{"bad session", as(t, "", wire.Session, "sess_"+secret.New("", 43, secret.Alphanumeric)), ar.GetId(), "", ""},
		{"unknown", as(t, ""), "ar_" + secret.New("", 43, secret.Alphanumeric), "", apierr.InvalidState},
		{"malformed", as(t, ""), "x", "", apierr.InvalidState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := c.GetAuthRequest(tt.ctx, &authv1.GetAuthRequestRequest{Id: tt.id})
			if tt.wantKind != "" {
				wantErr(t, err, tt.wantKind)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := r.GetAuthRequest()
			if got.GetAppName() != "app A" || got.GetClientId() != clientA || got.GetState() != "rp-state" || got.GetCodeChallengeMethod() != "S256" {
				t.Fatalf("request = %v", got)
			}
			if got.GetUser().GetUserId() != tt.wantUser {
				t.Fatalf("user = %v, want %q", got.GetUser(), tt.wantUser)
			}
			if (tt.wantUser != "") != (got.GetCsrfToken() == wire.CSRFToken(s.GetSession())) {
				t.Fatalf("csrf = %q", got.GetCsrfToken())
			}
		})
	}
}

// TestOIDCDecide is the prompt, max_age and consent matrix, on an injected
// clock: sessions are issued at "signedAt" seconds and requests created at
// "createdAt" seconds of it; Decide runs at "decideAt".
func TestOIDCDecide(t *testing.T) {
	clk := newClock()
	e := newEnv(t, options{clock: clk.now})
	c := e.front(t)
	start := clk.now()
	at := func(sec int) { clk.unixNano.Store(start.Add(time.Duration(sec) * time.Second).UnixNano()) }
	ptr := func(v int64) *int64 { return &v }
	// consent remembers alice's consent to client A for the scopes before
	// the case runs (through an approval of its own request).
	remember := func(t *testing.T, s *authv1.SignInResponse, scopes ...string) {
		t.Helper()
		ar := e.createAuthReq(t, c, func(r *authv1.CreateAuthRequestRequest) { r.Scopes = scopes })
		d, err := c.Decide(browser(t, s), &authv1.DecideRequest{AuthRequestId: ar.GetId(), Decision: authv1.Decision_DECISION_APPROVE})
		if err != nil || d.GetCode() == "" {
			t.Fatalf("approve: %v, %v", d, err)
		}
	}
	type when struct{ signedAt, createdAt, decideAt int }
	tests := []struct {
		name     string
		user     string // "" for no session
		consent  []string
		when     when
		mod      func(r *authv1.CreateAuthRequestRequest)
		decision authv1.Decision
		csrf     string // "ok" for the session's, else as given
		wantNext authv1.Next
		wantErr  string // the redirect's error
		wantKind apierr.Kind
	}{
		{"no session", "", nil, when{0, 0, 0}, nil, authv1.Decision_DECISION_AUTO, "", authv1.Next_NEXT_LOGIN, "", ""},
		{"no session, prompt=none", "", nil, when{0, 0, 0}, func(r *authv1.CreateAuthRequestRequest) { r.Prompt = []string{"none"} },
			authv1.Decision_DECISION_AUTO, "", authv1.Next_NEXT_REDIRECT, "login_required", ""},
		{"no session, approve", "", nil, when{0, 0, 0}, nil, authv1.Decision_DECISION_APPROVE, "ok", authv1.Next_NEXT_LOGIN, "", ""},
		{"no consent", aliceID, nil, when{0, 10, 20}, nil, authv1.Decision_DECISION_AUTO, "", authv1.Next_NEXT_CONSENT, "", ""},
		{"no consent, prompt=none", aliceID, nil, when{0, 10, 20}, func(r *authv1.CreateAuthRequestRequest) { r.Prompt = []string{"none"} },
			authv1.Decision_DECISION_AUTO, "", authv1.Next_NEXT_REDIRECT, "consent_required", ""},
		{"consent remembered", aliceID, []string{"openid", "profile", "email"}, when{0, 10, 20}, nil, authv1.Decision_DECISION_AUTO, "", authv1.Next_NEXT_REDIRECT, "", ""},
		{"consent remembered, prompt=none", aliceID, []string{"openid", "profile"}, when{0, 10, 20}, func(r *authv1.CreateAuthRequestRequest) { r.Prompt = []string{"none"} },
			authv1.Decision_DECISION_AUTO, "", authv1.Next_NEXT_REDIRECT, "", ""},
		{"consent for fewer scopes", aliceID, []string{"openid"}, when{0, 10, 20}, nil, authv1.Decision_DECISION_AUTO, "", authv1.Next_NEXT_CONSENT, "", ""},
		{"prompt=consent", aliceID, []string{"openid", "profile"}, when{0, 10, 20}, func(r *authv1.CreateAuthRequestRequest) { r.Prompt = []string{"consent"} },
			authv1.Decision_DECISION_AUTO, "", authv1.Next_NEXT_CONSENT, "", ""},
		{"prompt=consent approved", aliceID, []string{"openid", "profile"}, when{0, 10, 20}, func(r *authv1.CreateAuthRequestRequest) { r.Prompt = []string{"consent"} },
			authv1.Decision_DECISION_APPROVE, "ok", authv1.Next_NEXT_REDIRECT, "", ""},
		{"prompt=login, older session", aliceID, []string{"openid", "profile"}, when{0, 10, 20}, func(r *authv1.CreateAuthRequestRequest) { r.Prompt = []string{"login"} },
			authv1.Decision_DECISION_AUTO, "", authv1.Next_NEXT_LOGIN, "", ""},
		{"prompt=login, older session, approve", aliceID, []string{"openid", "profile"}, when{0, 10, 20}, func(r *authv1.CreateAuthRequestRequest) { r.Prompt = []string{"login"} },
			authv1.Decision_DECISION_APPROVE, "ok", authv1.Next_NEXT_LOGIN, "", ""},
		{"prompt=login, same second", aliceID, []string{"openid", "profile"}, when{10, 10, 20}, func(r *authv1.CreateAuthRequestRequest) { r.Prompt = []string{"login"} },
			authv1.Decision_DECISION_AUTO, "", authv1.Next_NEXT_REDIRECT, "", ""},
		{"prompt=login, newer session", aliceID, []string{"openid", "profile"}, when{15, 10, 20}, func(r *authv1.CreateAuthRequestRequest) { r.Prompt = []string{"login"} },
			authv1.Decision_DECISION_AUTO, "", authv1.Next_NEXT_REDIRECT, "", ""},
		{"max_age kept", aliceID, []string{"openid", "profile"}, when{0, 10, 60}, func(r *authv1.CreateAuthRequestRequest) { r.MaxAge = ptr(60) },
			authv1.Decision_DECISION_AUTO, "", authv1.Next_NEXT_REDIRECT, "", ""},
		{"max_age passed", aliceID, []string{"openid", "profile"}, when{0, 10, 61}, func(r *authv1.CreateAuthRequestRequest) { r.MaxAge = ptr(60) },
			authv1.Decision_DECISION_AUTO, "", authv1.Next_NEXT_LOGIN, "", ""},
		{"max_age passed, prompt=none", aliceID, []string{"openid", "profile"}, when{0, 10, 61}, func(r *authv1.CreateAuthRequestRequest) {
			r.MaxAge, r.Prompt = ptr(60), []string{"none"}
		}, authv1.Decision_DECISION_AUTO, "", authv1.Next_NEXT_REDIRECT, "login_required", ""},
		{"max_age 0, signed in for the request", aliceID, []string{"openid", "profile"}, when{10, 10, 11}, func(r *authv1.CreateAuthRequestRequest) { r.MaxAge = ptr(0) },
			authv1.Decision_DECISION_AUTO, "", authv1.Next_NEXT_REDIRECT, "", ""},
		{"max_age 0, older session", aliceID, []string{"openid", "profile"}, when{9, 10, 11}, func(r *authv1.CreateAuthRequestRequest) { r.MaxAge = ptr(0) },
			authv1.Decision_DECISION_AUTO, "", authv1.Next_NEXT_LOGIN, "", ""},
		{"approve", aliceID, nil, when{0, 10, 20}, nil, authv1.Decision_DECISION_APPROVE, "ok", authv1.Next_NEXT_REDIRECT, "", ""},
		{"approve without csrf", aliceID, nil, when{0, 10, 20}, nil, authv1.Decision_DECISION_APPROVE, "", 0, "", apierr.CSRFFailed},
		{"approve with another csrf", aliceID, nil, when{0, 10, 20}, nil, authv1.Decision_DECISION_APPROVE, wire.CSRFToken("sess_other"), 0, "", apierr.CSRFFailed},
		{"deny", aliceID, nil, when{0, 10, 20}, nil, authv1.Decision_DECISION_DENY, "ok", authv1.Next_NEXT_REDIRECT, "access_denied", ""},
		{"deny without csrf", aliceID, nil, when{0, 10, 20}, nil, authv1.Decision_DECISION_DENY, "", 0, "", apierr.CSRFFailed},
		{"unspecified", aliceID, nil, when{0, 10, 20}, nil, authv1.Decision_DECISION_UNSPECIFIED, "", 0, "", apierr.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every case starts with alice remembering nothing.
			if err := e.rdb.Del(context.Background(), e.prefix+"oidc:consent:{7}").Err(); err != nil {
				t.Fatal(err)
			}
			at(tt.when.signedAt)
			ctx := as(t, "")
			var s *authv1.SignInResponse
			if tt.user != "" {
				s = oidcSession(t, c, aliceID, alicePass)
				if tt.consent != nil {
					remember(t, s, tt.consent...)
				}
				csrf := tt.csrf
				if csrf == "ok" {
					csrf = s.GetCsrfToken()
				}
				ctx = as(t, "", wire.Session, s.GetSession(), wire.CSRF, csrf)
			}
			at(tt.when.createdAt)
			ar := e.createAuthReq(t, c, tt.mod)
			at(tt.when.decideAt)
			d, err := c.Decide(ctx, &authv1.DecideRequest{AuthRequestId: ar.GetId(), Decision: tt.decision})
			if tt.wantKind != "" {
				wantErr(t, err, tt.wantKind)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.GetNext() != tt.wantNext || d.GetError() != tt.wantErr {
				t.Fatalf("Decide = %v, want %v %q", d, tt.wantNext, tt.wantErr)
			}
			gone := e.countKeys(t, "oidc:authreq:{"+ar.GetId()+"}") == 0
			if gone != (tt.wantNext == authv1.Next_NEXT_REDIRECT) {
				t.Fatalf("request gone = %v after %v", gone, d.GetNext())
			}
			if tt.wantNext != authv1.Next_NEXT_REDIRECT {
				if d.GetCode() != "" || d.GetRedirectUri() != "" {
					t.Fatalf("Decide = %v: a redirect before the end", d)
				}
				return
			}
			if d.GetRedirectUri() != redirectA || d.GetState() != "rp-state" {
				t.Fatalf("redirect = %v", d)
			}
			// Finished once: whatever comes next finds no request.
			_, err = c.Decide(ctx, &authv1.DecideRequest{AuthRequestId: ar.GetId(), Decision: authv1.Decision_DECISION_AUTO})
			wantErr(t, err, apierr.InvalidState)
			if tt.wantErr != "" {
				if d.GetCode() != "" {
					t.Fatalf("error redirect with a code: %v", d)
				}
				return
			}
			rec, found := e.codeRecord(t, d.GetCode())
			want := oauth.OIDCCodeRecord{ClientID: clientA, KeyID: 1, KeyName: "app A", RedirectURI: redirectA,
				Scopes: ar.GetScopes(), Nonce: "n-0S6_WzA2Mj", Challenge: challenge, User: 7, UserID: aliceID,
				AuthTime: start.Unix() + int64(tt.when.signedAt), Grant: rec.Grant}
			if !found || rec.Grant == "" || !equalCode(rec, want) {
				t.Fatalf("code record = %+v, %v; want %+v", rec, found, want)
			}
			if d := e.pttl(t, "oidc:code:{"+secret.Hash(d.GetCode())+"}"); d <= 9*time.Minute || d > oauth.OIDCCodeTTL {
				t.Fatalf("code TTL = %v", d)
			}
			if len(d.GetCode()) < 40 {
				t.Fatalf("code %q too short", d.GetCode())
			}
			e.noSecretInRecords(t, d.GetCode())
		})
	}

	t.Run("approval is remembered", func(t *testing.T) {
		at(100)
		s := oidcSession(t, c, aliceID, alicePass)
		ar := e.createAuthReq(t, c, func(r *authv1.CreateAuthRequestRequest) { r.Scopes = []string{"openid", "email"} })
		if _, err := c.Decide(browser(t, s), &authv1.DecideRequest{AuthRequestId: ar.GetId(), Decision: authv1.Decision_DECISION_APPROVE}); err != nil {
			t.Fatal(err)
		}
		remember(t, s, "openid", "profile")
		v, err := e.rdb.HGet(context.Background(), e.prefix+"oidc:consent:{7}", clientA).Result()
		var got oauth.ConsentRecord
		if err != nil || json.Unmarshal([]byte(v), &got) != nil {
			t.Fatalf("consent %q, %v", v, err)
		}
		if !slices.Equal(got.Scopes, []string{"openid", "email", "profile"}) || got.GrantedAt != start.Unix()+100 {
			t.Fatalf("consent = %+v", got)
		}
		if n, err := e.rdb.PTTL(context.Background(), e.prefix+"oidc:consent:{7}").Result(); err != nil || n != -1 {
			t.Fatalf("consent PTTL = %v, %v; want none", n, err)
		}
		// Another client is not covered.
		ar = e.createAuthReq(t, c, func(r *authv1.CreateAuthRequestRequest) {
			r.ClientId, r.RedirectUri = clientListed, "https://listed.example/cb"
		})
		d, err := c.Decide(browser(t, s), &authv1.DecideRequest{AuthRequestId: ar.GetId(), Decision: authv1.Decision_DECISION_AUTO})
		if err != nil || d.GetNext() != authv1.Next_NEXT_CONSENT {
			t.Fatalf("other client: %v, %v", d, err)
		}
	})

	t.Run("disabled user", func(t *testing.T) {
		at(200)
		s := oidcSession(t, c, bobID, bobPass)
		e.users.setDisabled(bobID, true)
		t.Cleanup(func() { e.users.setDisabled(bobID, false) })
		ar := e.createAuthReq(t, c, nil)
		g, err := c.GetAuthRequest(browser(t, s), &authv1.GetAuthRequestRequest{Id: ar.GetId()})
		if err != nil || g.GetAuthRequest().GetUser() != nil || g.GetAuthRequest().GetCsrfToken() != "" {
			t.Fatalf("GetAuthRequest = %v, %v; want no user", g, err)
		}
		d, err := c.Decide(browser(t, s), &authv1.DecideRequest{AuthRequestId: ar.GetId(), Decision: authv1.Decision_DECISION_APPROVE})
		if err != nil || d.GetNext() != authv1.Next_NEXT_REDIRECT || d.GetError() != "access_denied" || d.GetCode() != "" {
			t.Fatalf("Decide = %v, %v; want access_denied", d, err)
		}
	})
}

func equalCode(a, b oauth.OIDCCodeRecord) bool {
	return a.ClientID == b.ClientID && a.KeyID == b.KeyID && a.KeyName == b.KeyName && a.RedirectURI == b.RedirectURI &&
		slices.Equal(a.Scopes, b.Scopes) && a.Nonce == b.Nonce && a.Challenge == b.Challenge &&
		a.User == b.User && a.UserID == b.UserID && a.AuthTime == b.AuthTime && a.Grant == b.Grant
}

// 64 concurrent Decides of one request: one code, and one code record.
func TestOIDCDecideRace(t *testing.T) {
	e := newEnv(t, options{})
	c := e.front(t)
	s := oidcSession(t, c, aliceID, alicePass)
	for _, decision := range []authv1.Decision{authv1.Decision_DECISION_APPROVE, authv1.Decision_DECISION_AUTO} {
		t.Run(decision.String(), func(t *testing.T) {
			ar := e.createAuthReq(t, c, nil)
			before := e.countKeys(t, "oidc:code:*")
			var wg sync.WaitGroup
			var codes, lost atomic.Int64
			for range 64 {
				wg.Go(func() {
					d, err := c.Decide(browser(t, s), &authv1.DecideRequest{AuthRequestId: ar.GetId(), Decision: decision})
					switch {
					case err == nil && d.GetCode() != "":
						codes.Add(1)
					case apierr.Is(err, apierr.InvalidState):
						lost.Add(1)
					default:
						t.Errorf("Decide = %v, %v", d, err)
					}
				})
			}
			wg.Wait()
			if codes.Load() != 1 || lost.Load() != 63 {
				t.Fatalf("%d codes, %d invalid_state; want 1 and 63", codes.Load(), lost.Load())
			}
			if n := e.countKeys(t, "oidc:code:*") - before; n != 1 {
				t.Fatalf("%d code records, want 1", n)
			}
		})
	}
}

// Wrong passwords on the OIDC page count toward the same per-user limit
// as on the confirmation page, and the auth request has its own counter.
func TestOIDCSignInThrottles(t *testing.T) {
	t.Run("shared with the confirmation page", func(t *testing.T) {
		e := newEnv(t, options{limits: oauth.Limits{PerUser: 3, PerIP: 50, Window: time.Minute}})
		c := e.front(t)
		for range 2 {
			_, err := e.conf.SignIn(from(t, "", ip1), &authv1.SignInRequest{Uca: e.createUCA(t, keyA, e.authorize(t, keyA)), UserId: aliceID, Password: "wrong"})
			wantErr(t, err, apierr.InvalidCredentials)
		}
		ar := e.createAuthReq(t, c, nil)
		_, err := c.SignIn(from(t, "", ip1), &authv1.OIDCServiceSignInRequest{AuthRequestId: ar.GetId(), UserId: aliceID, Password: "wrong"})
		wantErr(t, err, apierr.InvalidCredentials)
		// Three failures: the right password is refused on both pages.
		_, err = c.SignIn(from(t, "", ip1), &authv1.OIDCServiceSignInRequest{AuthRequestId: ar.GetId(), UserId: aliceID, Password: alicePass})
		wantErr(t, err, apierr.RateLimited)
		_, err = c.SignIn(from(t, "", ip1), &authv1.OIDCServiceSignInRequest{UserId: aliceID, Password: alicePass})
		wantErr(t, err, apierr.RateLimited)
		_, err = e.conf.SignIn(from(t, "", ip1), &authv1.SignInRequest{Uca: e.createUCA(t, keyA, e.authorize(t, keyA)), UserId: aliceID, Password: alicePass})
		wantErr(t, err, apierr.RateLimited)
		// Another address is not refused.
		if _, err := c.SignIn(from(t, "", ip2), &authv1.OIDCServiceSignInRequest{AuthRequestId: ar.GetId(), UserId: aliceID, Password: alicePass}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("per auth request", func(t *testing.T) {
		e := newEnv(t, options{limits: oauth.Limits{PerUser: 50, PerIP: 50, Window: time.Minute}})
		c := e.front(t)
		ar := e.createAuthReq(t, c, nil)
		for range oauth.MaxUCAFails {
			_, err := c.SignIn(from(t, "", ip1), &authv1.OIDCServiceSignInRequest{AuthRequestId: ar.GetId(), UserId: bobID, Password: "wrong"})
			wantErr(t, err, apierr.InvalidCredentials)
		}
		_, err := c.SignIn(from(t, "", ip2), &authv1.OIDCServiceSignInRequest{AuthRequestId: ar.GetId(), UserId: aliceID, Password: alicePass})
		wantErr(t, err, apierr.RateLimited)
		other := e.createAuthReq(t, c, nil)
		if _, err := c.SignIn(from(t, "", ip2), &authv1.OIDCServiceSignInRequest{AuthRequestId: other.GetId(), UserId: aliceID, Password: alicePass}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		e := newEnv(t, options{})
		c := e.front(t)
		tests := []struct {
			name string
			req  *authv1.OIDCServiceSignInRequest
			want apierr.Kind
		}{
			{"unknown request", &authv1.OIDCServiceSignInRequest{AuthRequestId: "ar_" + secret.New("", 43, secret.Alphanumeric), UserId: aliceID, Password: alicePass}, apierr.InvalidState},
			{"no user_id", &authv1.OIDCServiceSignInRequest{Password: alicePass}, apierr.InvalidRequest},
			{"wrong password", &authv1.OIDCServiceSignInRequest{UserId: aliceID, Password: "wrong"}, apierr.InvalidCredentials},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := c.SignIn(as(t, ""), tt.req)
				wantErr(t, err, tt.want)
			})
		}
	})
}

// seedDevice stores a device authorization as StartDevice does (oauth/oidc.go's
// layout) and returns its device code hash.
func (e *env) seedDevice(t *testing.T, userCode string, rec oauth.DeviceRecord) string {
	t.Helper()
	dh := secret.Hash(secret.New("", 43, secret.Alphanumeric))
	b, _ := json.Marshal(rec)
	ctx := context.Background()
	if err := e.rdb.Set(ctx, e.prefix+"oidc:device:{"+dh+"}", b, 10*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Set(ctx, e.prefix+"oidc:usercode:{"+secret.Hash(oauth.NormalizeUserCode(userCode))+"}", dh, 10*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	return dh
}

func (e *env) deviceRecord(t *testing.T, dh string) oauth.DeviceRecord {
	t.Helper()
	v, err := e.rdb.Get(context.Background(), e.prefix+"oidc:device:{"+dh+"}").Result()
	var rec oauth.DeviceRecord
	if err != nil || json.Unmarshal([]byte(v), &rec) != nil {
		t.Fatalf("device record %q, %v", v, err)
	}
	return rec
}

func pendingDevice(code string, exp int64) oauth.DeviceRecord {
	return oauth.DeviceRecord{ClientID: clientA, KeyID: 1, KeyName: "app A", Scopes: []string{"openid", "profile"},
		State: oauth.DevicePending, Interval: 5, ExpiresAt: exp}
}

func TestOIDCDevice(t *testing.T) {
	clk := newClock()
	e := newEnv(t, options{clock: clk.now, limits: oauth.Limits{PerUser: 50, PerIP: 50, Window: time.Minute}})
	c := e.front(t)
	exp := clk.now().Add(10 * time.Minute).Unix()
	s := oidcSession(t, c, aliceID, alicePass)
	dh := e.seedDevice(t, "BCDF-GHJK", pendingDevice("BCDF-GHJK", exp))
	e.seedDevice(t, "BBBB-CCCC", oauth.DeviceRecord{ClientID: clientA, KeyID: 1, State: oauth.DeviceApproved, ExpiresAt: exp})
	e.seedDevice(t, "DDDD-FFFF", pendingDevice("DDDD-FFFF", clk.now().Unix()-1))

	tests := []struct {
		name     string
		ctx      context.Context
		code     string
		wantUser string
		wantKind apierr.Kind
	}{
		{"display form", as(t, ""), "BCDF-GHJK", "", ""},
		{"any case, no dash", browser(t, s), "bcdfghjk", aliceID, ""},
		{"spaces", as(t, ""), " bcdf ghjk ", "", ""},
		{"unknown", as(t, ""), "ZZZZ-ZZZZ", "", apierr.InvalidCode},
		{"decided", as(t, ""), "BBBB-CCCC", "", apierr.InvalidCode},
		{"expired", as(t, ""), "DDDD-FFFF", "", apierr.InvalidCode},
		{"empty", as(t, ""), "-", "", apierr.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := c.GetDevice(tt.ctx, &authv1.GetDeviceRequest{UserCode: tt.code})
			if tt.wantKind != "" {
				wantErr(t, err, tt.wantKind)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := r.GetDevice()
			if d.GetUserCode() != "BCDF-GHJK" || d.GetAppName() != "app A" || d.GetClientId() != clientA ||
				!slices.Equal(d.GetScopes(), []string{"openid", "profile"}) || d.GetExpiresAt().AsTime().Unix() != exp {
				t.Fatalf("device = %v", d)
			}
			if d.GetUser().GetUserId() != tt.wantUser || (tt.wantUser != "") != (d.GetCsrfToken() == s.GetCsrfToken()) {
				t.Fatalf("user %v, csrf %q", d.GetUser(), d.GetCsrfToken())
			}
		})
	}

	decide := func(ctx context.Context, code string, approve bool) error {
		_, err := c.DecideDevice(ctx, &authv1.DecideDeviceRequest{UserCode: code, Approve: approve})
		return err
	}
	t.Run("decide needs session and csrf", func(t *testing.T) {
		wantErr(t, decide(as(t, ""), "BCDF-GHJK", true), apierr.Unauthenticated)
		wantErr(t, decide(as(t, "", wire.Session, s.GetSession()), "BCDF-GHJK", true), apierr.CSRFFailed)
		wantErr(t, decide(browser(t, s), "ZZZZ-ZZZZ", true), apierr.InvalidCode)
		bob := oidcSession(t, c, bobID, bobPass)
		e.users.setDisabled(bobID, true)
		wantErr(t, decide(browser(t, bob), "BCDF-GHJK", true), apierr.AccountDisabled)
		e.users.setDisabled(bobID, false)
		if got := e.deviceRecord(t, dh); got.State != oauth.DevicePending {
			t.Fatalf("state = %q, want pending", got.State)
		}
	})
	t.Run("approve", func(t *testing.T) {
		clk.add(30 * time.Second)
		if err := decide(browser(t, s), "bcdf-ghjk", true); err != nil {
			t.Fatal(err)
		}
		got := e.deviceRecord(t, dh)
		want := pendingDevice("BCDF-GHJK", exp)
		want.State, want.User, want.UserID, want.AuthTime = oauth.DeviceApproved, 7, aliceID, clk.now().Add(-30*time.Second).Unix()
		if !equalDevice(got, want) {
			t.Fatalf("record = %+v, want %+v", got, want)
		}
		if d := e.pttl(t, "oidc:device:{"+dh+"}"); d <= 9*time.Minute {
			t.Fatalf("TTL after the decision = %v: not kept", d)
		}
		wantErr(t, decide(browser(t, s), "BCDF-GHJK", false), apierr.InvalidCode)
		_, err := c.GetDevice(browser(t, s), &authv1.GetDeviceRequest{UserCode: "BCDF-GHJK"})
		wantErr(t, err, apierr.InvalidCode)
	})
	t.Run("deny", func(t *testing.T) {
		rec := pendingDevice("GGGG-HHHH", exp)
		rec.Scopes = []string{} // the one shape cjson would turn into an object
		dh := e.seedDevice(t, "GGGG-HHHH", rec)
		if err := decide(browser(t, s), "GGGG-HHHH", false); err != nil {
			t.Fatal(err)
		}
		if got := e.deviceRecord(t, dh); got.State != oauth.DeviceDenied || got.User != 0 || got.Scopes == nil {
			t.Fatalf("record = %+v, want denied", got)
		}
	})
	t.Run("64 concurrent decisions", func(t *testing.T) {
		dh := e.seedDevice(t, "JJJJ-KKKK", pendingDevice("JJJJ-KKKK", exp))
		var wg sync.WaitGroup
		var ok, lost, approvals atomic.Int64
		for i := range 64 {
			wg.Go(func() {
				err := decide(browser(t, s), "JJJJ-KKKK", i%2 == 0)
				switch {
				case err == nil:
					ok.Add(1)
					if i%2 == 0 {
						approvals.Add(1)
					}
				case apierr.Is(err, apierr.InvalidCode):
					lost.Add(1)
				default:
					t.Errorf("DecideDevice: %v", err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 || lost.Load() != 63 {
			t.Fatalf("%d decided, %d invalid_code; want 1 and 63", ok.Load(), lost.Load())
		}
		wantState := oauth.DeviceDenied
		if approvals.Load() == 1 {
			wantState = oauth.DeviceApproved
		}
		if got := e.deviceRecord(t, dh); got.State != wantState {
			t.Fatalf("state %q, want %q", got.State, wantState)
		}
	})
}

func equalDevice(a, b oauth.DeviceRecord) bool {
	return a.ClientID == b.ClientID && a.KeyID == b.KeyID && a.KeyName == b.KeyName && slices.Equal(a.Scopes, b.Scopes) &&
		a.State == b.State && a.User == b.User && a.UserID == b.UserID &&
		a.AuthTime == b.AuthTime && a.Interval == b.Interval && a.LastPoll == b.LastPoll && a.ExpiresAt == b.ExpiresAt
}

// Wrong user codes are throttled per client address and per session.
func TestOIDCDeviceThrottle(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		e := newEnv(t, options{limits: oauth.Limits{PerUser: 50, PerIP: 3, Window: time.Minute}})
		c := e.front(t)
		e.seedDevice(t, "BCDF-GHJK", pendingDevice("BCDF-GHJK", time.Now().Add(time.Hour).Unix()))
		for range 3 {
			_, err := c.GetDevice(from(t, "", ip1), &authv1.GetDeviceRequest{UserCode: "ZZZZ-ZZZZ"})
			wantErr(t, err, apierr.InvalidCode)
		}
		_, err := c.GetDevice(from(t, "", ip1), &authv1.GetDeviceRequest{UserCode: "BCDF-GHJK"})
		wantErr(t, err, apierr.RateLimited)
		// Wrong user codes and wrong passwords share the address's budget.
		_, err = c.SignIn(from(t, "", ip1), &authv1.OIDCServiceSignInRequest{UserId: aliceID, Password: alicePass})
		wantErr(t, err, apierr.RateLimited)
		if _, err := c.GetDevice(from(t, "", ip2), &authv1.GetDeviceRequest{UserCode: "BCDF-GHJK"}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("per session", func(t *testing.T) {
		e := newEnv(t, options{limits: oauth.Limits{PerUser: 50, PerIP: 50, Window: time.Minute}})
		c := e.front(t)
		e.seedDevice(t, "BCDF-GHJK", pendingDevice("BCDF-GHJK", time.Now().Add(time.Hour).Unix()))
		s := oidcSession(t, c, aliceID, alicePass)
		for i := range oauth.MaxUCAFails {
			ctx := as(t, "", wire.Session, s.GetSession(), wire.CSRF, s.GetCsrfToken(), wire.ClientIP, "198.51.100."+strconv.Itoa(i+1))
			_, err := c.GetDevice(ctx, &authv1.GetDeviceRequest{UserCode: "ZZZZ-ZZZZ"})
			wantErr(t, err, apierr.InvalidCode)
		}
		ctx := as(t, "", wire.Session, s.GetSession(), wire.CSRF, s.GetCsrfToken(), wire.ClientIP, "198.51.100.99")
		_, err := c.GetDevice(ctx, &authv1.GetDeviceRequest{UserCode: "BCDF-GHJK"})
		wantErr(t, err, apierr.RateLimited)
		// DecideDevice is no way around it.
		_, err = c.DecideDevice(ctx, &authv1.DecideDeviceRequest{UserCode: "BCDF-GHJK", Approve: true})
		wantErr(t, err, apierr.RateLimited)
		if _, err := c.GetDevice(from(t, "", "198.51.100.99"), &authv1.GetDeviceRequest{UserCode: "BCDF-GHJK"}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestOIDCEndSession(t *testing.T) {
	e := newEnv(t, options{})
	c := e.front(t)
	s := oidcSession(t, c, aliceID, alicePass)
	ar := e.createAuthReq(t, c, nil)
	tests := []struct {
		name string
		ctx  context.Context
	}{
		{"signed in", browser(t, s)},
		{"ended already", browser(t, s)},
		{"no session", as(t, "")},
		{"malformed", as(t, "", wire.Session, "garbage")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.EndSession(tt.ctx, &authv1.EndSessionRequest{}); err != nil {
				t.Fatal(err)
			}
			if e.exists(t, "session", s.GetSession()) {
				t.Fatal("session still stored")
			}
			g, err := c.GetAuthRequest(browser(t, s), &authv1.GetAuthRequestRequest{Id: ar.GetId()})
			if err != nil || g.GetAuthRequest().GetUser() != nil {
				t.Fatalf("GetAuthRequest = %v, %v; want signed out", g, err)
			}
		})
	}
}

// An id_token_hint proves a logout only for its own user: with the sub of
// another user the session stays and the gateway is told to ask.
func TestOIDCEndSessionSubject(t *testing.T) {
	e := newEnv(t, options{})
	c := e.front(t)
	s := oidcSession(t, c, aliceID, alicePass) // alice is users.id 7, bob 8
	tests := []struct {
		subject   string
		wantOther bool
		wantEnded bool
	}{
		{"8", true, false},
		{"7x", true, false},
		{"7", false, true},
	}
	for _, tt := range tests {
		t.Run("subject "+tt.subject, func(t *testing.T) {
			r, err := c.EndSession(browser(t, s), &authv1.EndSessionRequest{Subject: tt.subject})
			if err != nil {
				t.Fatal(err)
			}
			if r.GetOtherUser() != tt.wantOther {
				t.Errorf("other_user = %v, want %v", r.GetOtherUser(), tt.wantOther)
			}
			if ended := !e.exists(t, "session", s.GetSession()); ended != tt.wantEnded {
				t.Errorf("session ended = %v, want %v", ended, tt.wantEnded)
			}
		})
	}
}

func TestOIDCUserinfo(t *testing.T) {
	e := newEnv(t, options{})
	c := e.front(t)
	store := redisstore.New(e.rdb, e.prefix, redisdb.DefaultTimeout)
	put := func(rec oauth.TokenRecord) string {
		tok := "token_" + secret.New("", 56, secret.Alphanumeric)
		rec.KeyID, rec.IssuedAt = 1, time.Now().Unix()
		if err := store.PutToken(context.Background(), secret.Hash(tok), rec, time.Hour); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	oidcToken := func(scopes ...string) string {
		return put(oauth.TokenRecord{User: 7, UserID: aliceID, ClientID: clientA, Scopes: scopes, Grant: "grt_x"})
	}
	sub := &authv1.OIDCUserinfo{Sub: "7"}
	profile := &authv1.OIDCUserinfo{Sub: "7", PreferredUsername: aliceID, Name: "Alice", Picture: "https://example.com/a.png", Bio: "hi"}
	email := &authv1.OIDCUserinfo{Sub: "7", Email: aliceEmail}
	all := &authv1.OIDCUserinfo{Sub: "7", PreferredUsername: aliceID, Name: "Alice", Picture: "https://example.com/a.png", Bio: "hi", Email: aliceEmail}
	tests := []struct {
		name     string
		token    string
		want     *authv1.OIDCUserinfo
		wantKind apierr.Kind
	}{
		{"openid", oidcToken("openid"), sub, ""},
		{"profile", oidcToken("openid", "profile"), profile, ""},
		{"email", oidcToken("openid", "email"), email, ""},
		{"profile and email", oidcToken("openid", "profile", "email", "offline_access"), all, ""},
		{"legacy /api/oauth token", e.accessToken(t, keyA, aliceID, alicePass), all, ""},
		{"client credentials", put(oauth.TokenRecord{ClientID: clientA, Scopes: []string{}}), nil, apierr.InvalidToken},
		{"unknown", "token_" + secret.New("", 56, secret.Alphanumeric), nil, apierr.InvalidToken},
		{"malformed", "garbage", nil, apierr.InvalidToken},
		{"none", "", nil, apierr.InvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := as(t, "")
			if tt.token != "" {
				ctx = as(t, "", wire.Authorization, "Bearer "+tt.token)
			}
			r, err := c.GetUserinfo(ctx, &authv1.OIDCServiceGetUserinfoRequest{})
			if tt.wantKind != "" {
				wantErr(t, err, tt.wantKind)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := proto.Clone(r.GetUserinfo()).(*authv1.OIDCUserinfo)
			got.Scopes = nil
			if !proto.Equal(got, tt.want) {
				t.Fatalf("userinfo = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("revoked key", func(t *testing.T) {
		tok := oidcToken("openid", "profile")
		e.keys.revoke(keyA)
		eventually(t, "the key cache drops the key", func() bool {
			_, err := c.GetUserinfo(as(t, "", wire.Authorization, "Bearer "+tok), &authv1.OIDCServiceGetUserinfoRequest{})
			return apierr.Is(err, apierr.InvalidToken)
		})
	})
}

func TestOIDCAuditEvents(t *testing.T) {
	rec := &audittest.Recorder{}
	e := newEnv(t, options{events: rec})
	c := e.front(t)
	const ip = "198.51.100.7"
	ev := func(name, outcome, userID string, keyID int64, detail string) audit.Event {
		return audit.Event{Event: name, Outcome: outcome, UserID: userID, APIKeyID: keyID, ClientIP: ip, Detail: detail}
	}
	var s *authv1.SignInResponse
	var arID string
	exp := time.Now().Add(time.Hour).Unix()
	e.seedDevice(t, "BCDF-GHJK", pendingDevice("BCDF-GHJK", exp))
	e.seedDevice(t, "GGGG-HHHH", pendingDevice("GGGG-HHHH", exp))
	bctx := func(t *testing.T) context.Context {
		return as(t, "", wire.Session, s.GetSession(), wire.CSRF, s.GetCsrfToken(), wire.ClientIP, ip)
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
		want []audit.Event
	}{
		{"authorize", func(t *testing.T) {
			r, err := c.CreateAuthRequest(from(t, "", ip), authReq(nil))
			if err != nil {
				t.Fatal(err)
			}
			arID = r.GetAuthRequest().GetId()
		}, []audit.Event{ev(oauth.EventOIDCAuthorize, audit.Success, "", 1, "")}},
		{"refused authorize", func(t *testing.T) {
			_, err := c.CreateAuthRequest(from(t, "", ip), authReq(func(r *authv1.CreateAuthRequestRequest) { r.CodeChallengeMethod = "plain" }))
			wantErr(t, err, apierr.InvalidRequest)
		}, []audit.Event{ev(oauth.EventOIDCAuthorize, audit.Failure, "", 1, "invalid_request")}},
		{"wrong password", func(t *testing.T) {
			_, err := c.SignIn(from(t, "", ip), &authv1.OIDCServiceSignInRequest{AuthRequestId: arID, UserId: aliceID, Password: "wrong"})
			wantErr(t, err, apierr.InvalidCredentials)
		}, []audit.Event{ev(oauth.EventOIDCSignIn, audit.Failure, aliceID, 1, "invalid_credentials")}},
		{"sign in", func(t *testing.T) {
			r, err := c.SignIn(from(t, "", ip), &authv1.OIDCServiceSignInRequest{AuthRequestId: arID, UserId: aliceID, Password: alicePass})
			if err != nil {
				t.Fatal(err)
			}
			s = &authv1.SignInResponse{Session: r.GetSession(), CsrfToken: r.GetCsrfToken()}
		}, []audit.Event{ev(oauth.EventOIDCSignIn, audit.Success, aliceID, 1, "password")}},
		{"consent page", func(t *testing.T) {
			if _, err := c.Decide(bctx(t), &authv1.DecideRequest{AuthRequestId: arID, Decision: authv1.Decision_DECISION_AUTO}); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"csrf refused", func(t *testing.T) {
			_, err := c.Decide(as(t, "", wire.Session, s.GetSession(), wire.ClientIP, ip), &authv1.DecideRequest{AuthRequestId: arID, Decision: authv1.Decision_DECISION_APPROVE})
			wantErr(t, err, apierr.CSRFFailed)
		}, []audit.Event{ev(oauth.EventOIDCConsent, audit.Failure, aliceID, 1, "csrf_failed")}},
		{"approve", func(t *testing.T) {
			if _, err := c.Decide(bctx(t), &authv1.DecideRequest{AuthRequestId: arID, Decision: authv1.Decision_DECISION_APPROVE}); err != nil {
				t.Fatal(err)
			}
		}, []audit.Event{
			ev(oauth.EventOIDCConsent, audit.Success, aliceID, 1, "granted"),
			ev(oauth.EventOIDCCode, audit.Success, aliceID, 1, "authorization_code"),
		}},
		{"remembered", func(t *testing.T) {
			r, err := c.CreateAuthRequest(from(t, "", ip), authReq(nil))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Decide(bctx(t), &authv1.DecideRequest{AuthRequestId: r.GetAuthRequest().GetId(), Decision: authv1.Decision_DECISION_AUTO}); err != nil {
				t.Fatal(err)
			}
		}, []audit.Event{
			ev(oauth.EventOIDCAuthorize, audit.Success, "", 1, ""),
			ev(oauth.EventOIDCConsent, audit.Success, aliceID, 1, "remembered"),
			ev(oauth.EventOIDCCode, audit.Success, aliceID, 1, "authorization_code"),
		}},
		{"deny", func(t *testing.T) {
			r, err := c.CreateAuthRequest(from(t, "", ip), authReq(nil))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Decide(bctx(t), &authv1.DecideRequest{AuthRequestId: r.GetAuthRequest().GetId(), Decision: authv1.Decision_DECISION_DENY}); err != nil {
				t.Fatal(err)
			}
		}, []audit.Event{
			ev(oauth.EventOIDCAuthorize, audit.Success, "", 1, ""),
			ev(oauth.EventOIDCConsent, audit.Denied, aliceID, 1, "denied"),
		}},
		{"login_required", func(t *testing.T) {
			r, err := c.CreateAuthRequest(from(t, "", ip), authReq(func(r *authv1.CreateAuthRequestRequest) { r.Prompt = []string{"none"} }))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Decide(from(t, "", ip), &authv1.DecideRequest{AuthRequestId: r.GetAuthRequest().GetId(), Decision: authv1.Decision_DECISION_AUTO}); err != nil {
				t.Fatal(err)
			}
		}, []audit.Event{
			ev(oauth.EventOIDCAuthorize, audit.Success, "", 1, ""),
			ev(oauth.EventOIDCAuthorize, audit.Failure, "", 1, "login_required"),
		}},
		{"device approve", func(t *testing.T) {
			if _, err := c.DecideDevice(bctx(t), &authv1.DecideDeviceRequest{UserCode: "BCDF-GHJK", Approve: true}); err != nil {
				t.Fatal(err)
			}
		}, []audit.Event{ev(oauth.EventOIDCDevice, audit.Success, aliceID, 1, "approve")}},
		{"device deny", func(t *testing.T) {
			if _, err := c.DecideDevice(bctx(t), &authv1.DecideDeviceRequest{UserCode: "GGGG-HHHH"}); err != nil {
				t.Fatal(err)
			}
		}, []audit.Event{ev(oauth.EventOIDCDevice, audit.Success, aliceID, 1, "deny")}},
		{"device wrong code", func(t *testing.T) {
			_, err := c.DecideDevice(bctx(t), &authv1.DecideDeviceRequest{UserCode: "ZZZZ-ZZZZ", Approve: true})
			wantErr(t, err, apierr.InvalidCode)
		}, []audit.Event{ev(oauth.EventOIDCDevice, audit.Failure, aliceID, 0, "invalid_code")}},
		{"logout", func(t *testing.T) {
			if _, err := c.EndSession(bctx(t), &authv1.EndSessionRequest{}); err != nil {
				t.Fatal(err)
			}
		}, []audit.Event{ev(oauth.EventOIDCLogout, audit.Success, aliceID, 0, "end_session")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.Take()
			tt.run(t)
			got := rec.Take()
			if !slices.Equal(got, tt.want) {
				t.Fatalf("events:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// With MOREID_KEY_MAX_STATES set, a client's live authorization requests
// are capped like its states, in counters of their own.
func TestOIDCAuthRequestCap(t *testing.T) {
	e := newEnv(t, options{limits: oauth.Limits{KeyStates: 2}})
	c := e.front(t)
	tests := []struct {
		name     string
		mod      func(r *authv1.CreateAuthRequestRequest)
		wantKind apierr.Kind
	}{
		{"first", nil, ""},
		{"second", nil, ""},
		{"third", nil, apierr.RateLimited},
		{"another client", func(r *authv1.CreateAuthRequestRequest) { r.ClientId, r.RedirectUri = clientB, redirectB }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CreateAuthRequest(as(t, ""), authReq(tt.mod))
			if tt.wantKind != "" {
				wantErr(t, err, tt.wantKind)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	if n := e.countKeys(t, "oidc:authreq:*"); n != 3 {
		t.Fatalf("%d requests stored, want 3 (the refused one is not)", n)
	}
	// The states' cap is separate: client A's key still gets states.
	e.authorize(t, keyA)
	e.authorize(t, keyA)
}
