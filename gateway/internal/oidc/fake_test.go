package oidc

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/moreline/moreid/gateway/internal/page"
	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/grpcx/grpctest"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

// The fake's fixed world: one confidential and one public client, one
// user, one session.
const (
	testIssuer   = "http://issuer.test"
	confID       = "mlc_conf"
	confSecret   = "ml_secret"
	confRedirect = "https://app.example/cb?tenant=1"
	confLogout   = "https://app.example/bye"
	pubID        = "mlc_pub"
	confLoopID   = "mlc_conf_loop"
	pubRedirect  = "http://127.0.0.1:7777/cb"
	session      = "sess_good"
	csrfToken    = "csrf_good"
	accessToken  = "token_abc"
	testKid      = "kid1"
)

var testUser = &authv1.User{Id: 42, Username: "Alice", UserId: "alice", Email: "a@example.com"}

var testKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

// fakeAuth implements OIDCService and OIDCClientService deterministically
// and records what each call carried.
type fakeAuth struct {
	authv1.UnimplementedOIDCServiceServer
	authv1.UnimplementedOIDCClientServiceServer

	mu       sync.Mutex
	requests map[string]*authv1.CreateAuthRequestRequest
	consent  bool // remembered consent: Decide(AUTO) finishes at once
	calls    map[string]int
	md       map[string]metadata.MD // last metadata per method
	pollErr  apierr.Kind            // PollDevice's answer; "" issues tokens
	conflict int                    // StartDevice answers ALREADY_EXISTS this many times
	started  []*authv1.StartDeviceRequest
	revoked  []string
	// othersSession: the browser's session is not the grants' user (42).
	othersSession bool
	decided       []*authv1.DecideDeviceRequest
}

func newFakeAuth() *fakeAuth {
	return &fakeAuth{requests: map[string]*authv1.CreateAuthRequestRequest{}, calls: map[string]int{}, md: map[string]metadata.MD{}}
}

func (f *fakeAuth) record(ctx context.Context, method string) metadata.MD {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
	f.md[method] = md
	return md
}

func (f *fakeAuth) lastMD(method string) metadata.MD {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.md[method]
}

func (f *fakeAuth) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func first(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

var clients = map[string]*authv1.OIDCClient{
	confID: {ClientId: confID, Name: "Example App", RedirectUris: []string{confRedirect}, PostLogoutRedirectUris: []string{confLogout}},
	pubID:  {ClientId: pubID, Name: "Native App", Public: true, RedirectUris: []string{pubRedirect}},
	// A confidential client gets no loopback port leeway.
	confLoopID: {ClientId: confLoopID, Name: "Loopback Web App", RedirectUris: []string{pubRedirect}},
}

func (f *fakeAuth) GetClient(ctx context.Context, req *authv1.GetClientRequest) (*authv1.GetClientResponse, error) {
	f.record(ctx, "GetClient")
	c, ok := clients[req.GetClientId()]
	if !ok {
		return nil, apierr.New(apierr.InvalidClient)
	}
	return &authv1.GetClientResponse{Client: c}, nil
}

func (f *fakeAuth) CreateAuthRequest(ctx context.Context, req *authv1.CreateAuthRequestRequest) (*authv1.CreateAuthRequestResponse, error) {
	f.record(ctx, "CreateAuthRequest")
	f.mu.Lock()
	defer f.mu.Unlock()
	id := "ar_" + string(rune('a'+len(f.requests)))
	f.requests[id] = req
	return &authv1.CreateAuthRequestResponse{AuthRequest: &authv1.AuthRequest{Id: id, ClientId: req.GetClientId()}}, nil
}

func (f *fakeAuth) request(id string) *authv1.CreateAuthRequestRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[id]
}

func (f *fakeAuth) GetAuthRequest(ctx context.Context, req *authv1.GetAuthRequestRequest) (*authv1.GetAuthRequestResponse, error) {
	md := f.record(ctx, "GetAuthRequest")
	ar := f.request(req.GetId())
	if ar == nil {
		return nil, apierr.New(apierr.InvalidState)
	}
	out := &authv1.AuthRequest{Id: req.GetId(), ClientId: ar.GetClientId(), RedirectUri: ar.GetRedirectUri(),
		Scopes: ar.GetScopes(), State: ar.GetState(), AppName: clients[ar.GetClientId()].GetName(), LoginHint: ar.GetLoginHint()}
	if first(md, wire.Session) == session {
		out.User, out.CsrfToken = testUser, csrfToken
	}
	return &authv1.GetAuthRequestResponse{AuthRequest: out}, nil
}

func (f *fakeAuth) SignIn(ctx context.Context, req *authv1.OIDCServiceSignInRequest) (*authv1.OIDCServiceSignInResponse, error) {
	f.record(ctx, "SignIn")
	if req.GetUserId() != "alice" || req.GetPassword() != "pw" {
		return nil, apierr.New(apierr.InvalidCredentials)
	}
	return &authv1.OIDCServiceSignInResponse{Session: session, CsrfToken: csrfToken, ExpiresIn: 3600, User: testUser}, nil
}

func (f *fakeAuth) Decide(ctx context.Context, req *authv1.DecideRequest) (*authv1.DecideResponse, error) {
	md := f.record(ctx, "Decide")
	ar := f.request(req.GetAuthRequestId())
	if ar == nil {
		return nil, apierr.New(apierr.InvalidState)
	}
	done := &authv1.DecideResponse{Next: authv1.Next_NEXT_REDIRECT, RedirectUri: ar.GetRedirectUri(), State: ar.GetState(), Code: "code_ok"}
	signedIn := first(md, wire.Session) == session
	switch req.GetDecision() {
	case authv1.Decision_DECISION_AUTO:
		switch {
		case !signedIn && len(ar.GetPrompt()) == 1 && ar.GetPrompt()[0] == "none":
			return &authv1.DecideResponse{Next: authv1.Next_NEXT_REDIRECT, RedirectUri: ar.GetRedirectUri(), State: ar.GetState(), Error: "login_required",
				ErrorDescription: "需要登录"}, nil
		case !signedIn:
			return &authv1.DecideResponse{Next: authv1.Next_NEXT_LOGIN}, nil
		case !f.consent:
			return &authv1.DecideResponse{Next: authv1.Next_NEXT_CONSENT}, nil
		}
		return done, nil
	case authv1.Decision_DECISION_APPROVE, authv1.Decision_DECISION_DENY:
		if !signedIn {
			return nil, apierr.New(apierr.Unauthenticated)
		}
		if first(md, wire.CSRF) != csrfToken {
			return nil, apierr.New(apierr.CSRFFailed)
		}
		if req.GetDecision() == authv1.Decision_DECISION_DENY {
			return &authv1.DecideResponse{Next: authv1.Next_NEXT_REDIRECT, RedirectUri: ar.GetRedirectUri(), State: ar.GetState(),
				Error: "access_denied", ErrorDescription: "the user said no"}, nil
		}
		return done, nil
	}
	return nil, apierr.New(apierr.InvalidRequest)
}

func (f *fakeAuth) GetDevice(ctx context.Context, req *authv1.GetDeviceRequest) (*authv1.GetDeviceResponse, error) {
	md := f.record(ctx, "GetDevice")
	if strings.ToUpper(strings.ReplaceAll(req.GetUserCode(), "-", "")) != "BCDFGHJK" {
		return nil, apierr.New(apierr.InvalidCode)
	}
	d := &authv1.DeviceAuthorization{UserCode: "BCDF-GHJK", ClientId: confID, AppName: "Example TV", Scopes: []string{"openid", "profile"},
		ExpiresAt: timestamppb.New(time.Now().Add(5 * time.Minute))}
	if first(md, wire.Session) == session {
		d.User, d.CsrfToken = testUser, csrfToken
	}
	return &authv1.GetDeviceResponse{Device: d}, nil
}

func (f *fakeAuth) DecideDevice(ctx context.Context, req *authv1.DecideDeviceRequest) (*authv1.DecideDeviceResponse, error) {
	md := f.record(ctx, "DecideDevice")
	if first(md, wire.Session) != session {
		return nil, apierr.New(apierr.Unauthenticated)
	}
	if first(md, wire.CSRF) != csrfToken {
		return nil, apierr.New(apierr.CSRFFailed)
	}
	f.mu.Lock()
	f.decided = append(f.decided, req)
	f.mu.Unlock()
	return &authv1.DecideDeviceResponse{}, nil
}

// EndSession ends the session ("EndSession" counted) unless a subject other
// than the session's user is named, as auth does.
func (f *fakeAuth) EndSession(ctx context.Context, req *authv1.EndSessionRequest) (*authv1.EndSessionResponse, error) {
	f.mu.Lock()
	user := "42"
	if f.othersSession {
		user = "43"
	}
	f.mu.Unlock()
	if s := req.GetSubject(); s != "" && s != user {
		f.record(ctx, "EndSessionOtherUser")
		return &authv1.EndSessionResponse{OtherUser: true}, nil
	}
	f.record(ctx, "EndSession")
	return &authv1.EndSessionResponse{}, nil
}

func (f *fakeAuth) GetUserinfo(ctx context.Context, _ *authv1.OIDCServiceGetUserinfoRequest) (*authv1.OIDCServiceGetUserinfoResponse, error) {
	md := f.record(ctx, "GetUserinfo")
	switch first(md, wire.Authorization) {
	case "Bearer " + accessToken:
		return &authv1.OIDCServiceGetUserinfoResponse{Userinfo: &authv1.OIDCUserinfo{Sub: "42", PreferredUsername: "alice", Name: "Alice",
			Picture: "https://cdn.example/a.png", Email: "a@example.com", Scopes: []string{"openid", "profile", "email"}}}, nil
	case "Bearer token_openid_only":
		return &authv1.OIDCServiceGetUserinfoResponse{Userinfo: &authv1.OIDCUserinfo{Sub: "42", PreferredUsername: "alice",
			Email: "a@example.com", Scopes: []string{"openid"}}}, nil
	}
	return nil, apierr.New(apierr.InvalidToken)
}

// SignJWT signs with the test key, as auth does with the current key.
func (f *fakeAuth) SignJWT(ctx context.Context, req *authv1.SignJWTRequest) (*authv1.SignJWTResponse, error) {
	md := f.record(ctx, "SignJWT")
	if first(md, wire.APIKey) != "" {
		return nil, apierr.Newf(apierr.Forbidden, "a client key reached SignJWT")
	}
	sum := sha256.Sum256(req.GetSigningInput())
	sig, err := rsa.SignPKCS1v15(rand.Reader, testKey, crypto.SHA256, sum[:])
	if err != nil {
		return nil, err
	}
	return &authv1.SignJWTResponse{Signature: sig}, nil
}

func (f *fakeAuth) GetJWKS(ctx context.Context, _ *authv1.GetJWKSRequest) (*authv1.GetJWKSResponse, error) {
	f.record(ctx, "GetJWKS")
	jwk, err := json.Marshal(jose.JSONWebKey{Key: &testKey.PublicKey, KeyID: testKid, Algorithm: "RS256", Use: "sig"})
	if err != nil {
		return nil, err
	}
	return &authv1.GetJWKSResponse{SigningKid: testKid, Keys: []*authv1.SigningKey{{Kid: testKid, Alg: "RS256", Jwk: string(jwk)}}}, nil
}

// authenticated is the back channel's client check, as auth's interceptor
// and RPCs make it.
func authenticated(md metadata.MD, clientID string) error {
	switch {
	case clientID == confID && first(md, wire.APIKey) == confSecret:
		return nil
	case clientID == pubID && first(md, wire.APIKey) == "" && first(md, wire.OIDCClientID) == pubID:
		return nil
	}
	return apierr.New(apierr.InvalidClient)
}

func (f *fakeAuth) AuthenticateClient(ctx context.Context, req *authv1.AuthenticateClientRequest) (*authv1.AuthenticateClientResponse, error) {
	md := f.record(ctx, "AuthenticateClient")
	if err := authenticated(md, req.GetClientId()); err != nil {
		return nil, err
	}
	return &authv1.AuthenticateClientResponse{Client: clients[req.GetClientId()]}, nil
}

var authTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func userGrant(clientID string) *authv1.OIDCGrant {
	return &authv1.OIDCGrant{AccessToken: accessToken, ExpiresIn: 3600, RefreshToken: "mlrt_next",
		Scopes: []string{"openid", "profile", "offline_access"}, Subject: "42", AuthTime: timestamppb.New(authTime),
		Nonce: "n-0S6", ClientId: clientID, Amr: []string{"pwd"}}
}

func (f *fakeAuth) RedeemCode(ctx context.Context, req *authv1.RedeemCodeRequest) (*authv1.RedeemCodeResponse, error) {
	md := f.record(ctx, "RedeemCode")
	if err := authenticated(md, req.GetClientId()); err != nil {
		return nil, err
	}
	if req.GetCode() != "code_ok" || req.GetCodeVerifier() != "verifier" || req.GetRedirectUri() != clients[req.GetClientId()].GetRedirectUris()[0] {
		return nil, apierr.New(apierr.InvalidGrant)
	}
	return &authv1.RedeemCodeResponse{Grant: userGrant(req.GetClientId())}, nil
}

func (f *fakeAuth) Refresh(ctx context.Context, req *authv1.RefreshRequest) (*authv1.RefreshResponse, error) {
	md := f.record(ctx, "Refresh")
	if err := authenticated(md, req.GetClientId()); err != nil {
		return nil, err
	}
	if req.GetRefreshToken() != "mlrt_live" {
		return nil, apierr.New(apierr.InvalidGrant)
	}
	return &authv1.RefreshResponse{Grant: userGrant(req.GetClientId())}, nil
}

func (f *fakeAuth) IssueClientToken(ctx context.Context, req *authv1.IssueClientTokenRequest) (*authv1.IssueClientTokenResponse, error) {
	md := f.record(ctx, "IssueClientToken")
	if err := authenticated(md, req.GetClientId()); err != nil {
		return nil, err
	}
	if len(req.GetScopes()) > 0 && req.GetScopes()[0] == "bogus" {
		return nil, apierr.New(apierr.InvalidScope)
	}
	return &authv1.IssueClientTokenResponse{Grant: &authv1.OIDCGrant{AccessToken: "token_app", ExpiresIn: 600, ClientId: req.GetClientId()}}, nil
}

func (f *fakeAuth) StartDevice(ctx context.Context, req *authv1.StartDeviceRequest) (*authv1.StartDeviceResponse, error) {
	md := f.record(ctx, "StartDevice")
	if err := authenticated(md, req.GetClientId()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, req)
	if f.conflict > 0 {
		f.conflict--
		return nil, apierr.New(apierr.Conflict)
	}
	return &authv1.StartDeviceResponse{Interval: 7}, nil
}

func (f *fakeAuth) PollDevice(ctx context.Context, req *authv1.PollDeviceRequest) (*authv1.PollDeviceResponse, error) {
	md := f.record(ctx, "PollDevice")
	if err := authenticated(md, req.GetClientId()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	k := f.pollErr
	f.mu.Unlock()
	if k == apierr.RateLimited {
		return nil, &apierr.Error{Kind: k, RetryAfterSeconds: 30}
	}
	if k != "" {
		return nil, apierr.New(k)
	}
	return &authv1.PollDeviceResponse{Grant: userGrant(req.GetClientId())}, nil
}

func (f *fakeAuth) Introspect(ctx context.Context, req *authv1.IntrospectRequest) (*authv1.IntrospectResponse, error) {
	md := f.record(ctx, "Introspect")
	if err := authenticated(md, req.GetClientId()); err != nil {
		return nil, err
	}
	if req.GetToken() == "mlrt_live" && req.GetClientId() == confID {
		return &authv1.IntrospectResponse{Active: true, Scope: "openid offline_access", ClientId: confID, Sub: "42", Username: "alice",
			TokenType: "refresh_token", IssuedAt: timestamppb.New(authTime), ExpiresAt: timestamppb.New(authTime.Add(30 * 24 * time.Hour))}, nil
	}
	if req.GetToken() != accessToken || req.GetClientId() != confID {
		return &authv1.IntrospectResponse{}, nil
	}
	return &authv1.IntrospectResponse{Active: true, Scope: "openid profile", ClientId: confID, Sub: "42", Username: "alice",
		TokenType: "Bearer", IssuedAt: timestamppb.New(authTime), ExpiresAt: timestamppb.New(authTime.Add(time.Hour))}, nil
}

func (f *fakeAuth) Revoke(ctx context.Context, req *authv1.RevokeRequest) (*authv1.RevokeResponse, error) {
	md := f.record(ctx, "Revoke")
	if err := authenticated(md, req.GetClientId()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.revoked = append(f.revoked, req.GetToken())
	f.mu.Unlock()
	return &authv1.RevokeResponse{}, nil
}

// testCSRFKey signs the sign-in forms' tokens in tests.
var testCSRFKey = []byte("0123456789abcdef0123456789abcdef")

// rig is the edge over real HTTP in front of the fake over real gRPC.
type rig struct {
	auth *fakeAuth
	edge *Edge
	srv  *httptest.Server
	now  time.Time
	mu   sync.Mutex
}

func (r *rig) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *rig) advance(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = r.now.Add(d)
}

// edgeMD is the gateway's requestMD in small: the session cookie becomes
// x-moreid-session, plus a client IP.
func edgeMD(r *http.Request) metadata.MD {
	md := metadata.MD{}
	md.Set(wire.ClientIP, "203.0.113.9")
	if c, err := r.Cookie(wire.SessionCookie); err == nil && c.Value != "" {
		md.Set(wire.Session, c.Value)
	}
	return md
}

func newRig(t *testing.T) *rig {
	t.Helper()
	fa := newFakeAuth()
	srv := grpctest.NewServer()
	authv1.RegisterOIDCServiceServer(srv, fa)
	authv1.RegisterOIDCClientServiceServer(srv, fa)
	conn := grpctest.Dial(t, grpctest.Serve(t, srv))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	kit, err := page.NewKit(page.Edge{Metadata: edgeMD, Secure: func(*http.Request) bool { return false }}, testCSRFKey, log)
	if err != nil {
		t.Fatal(err)
	}
	rg := &rig{auth: fa, now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	edge, err := New(conn, Config{Issuer: testIssuer + "/", Kit: kit, Log: log, Now: rg.clock})
	if err != nil {
		t.Fatal(err)
	}
	rg.edge = edge
	rg.srv = httptest.NewServer(edge)
	t.Cleanup(rg.srv.Close)
	return rg
}

// browser is a client with a cookie jar that does not follow redirects,
// so every hop can be checked.
func (r *rig) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, c *http.Client, method, target string, form url.Values, headers map[string]string) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(a.body), &m); err != nil {
		t.Fatalf("body is not JSON (%d): %q", a.status, a.body)
	}
	return m
}
