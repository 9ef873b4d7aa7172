package oidc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"google.golang.org/grpc/metadata"

	"github.com/moreline/moreid/gateway/internal/page"
	"github.com/moreline/moreid/platform/apierr"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

// The back-channel endpoints (discovery, JWKS, token, userinfo,
// revocation, device authorization) are served by zitadel/oidc's op
// package through op.RegisterServer: the library routes them, decodes the
// requests, reads and cross-checks the client credentials (Basic or form,
// one method only), dispatches the token endpoint by grant type, checks
// the required parameters of each grant and the client's allowed grants,
// and writes the JSON answers and OAuth errors. opServer implements the
// op.Server methods over auth's RPCs. The edge's wrappers in front of it
// keep what the SPEC pins and the library does differently (docs/ARCHITECTURE.md, "OpenID Connect provider").
type opServer struct {
	op.UnimplementedServer
	e *Edge
}

// newOPHandler is the library's handler for the back-channel paths only:
// no authorization or end-session route (those are the edge's, with the
// kit pages). The library's own /healthz and /ready stay unreachable: the
// edge hands it only the paths of Paths. Its CORS is off: the library
// wraps its whole router in one policy, while only four paths may be read
// cross-origin and the edge's own refusals on them need the headers too
// (see publicCORS).
func newOPHandler(e *Edge) http.Handler {
	return op.RegisterServer(&opServer{e: e}, op.Endpoints{
		Token:               op.NewEndpoint(TokenPath),
		Introspection:       op.NewEndpoint(IntrospectPath),
		Userinfo:            op.NewEndpoint(UserinfoPath),
		Revocation:          op.NewEndpoint(RevokePath),
		DeviceAuthorization: op.NewEndpoint(DeviceAuthPath),
		JwksURI:             op.NewEndpoint(JWKSPath),
	}, op.WithServerCORSOptions(nil))
}

// publicCORS is the CORS policy (the library's CORS package, rs/cors) of
// discovery, the JWKS, the token endpoint and userinfo, which browser apps
// read from any origin. Credentials are never allowed: these endpoints
// authenticate by what the request carries, not by cookies. It wraps the
// edge's whole handler of each path, so a preflight is answered before the
// method checks and the edge's own errors carry the headers too.
func publicCORS() func(http.Handler) http.Handler {
	return cors.New(cors.Options{
		AllowedOrigins: []string{"*"},
		AllowedMethods: []string{http.MethodGet, http.MethodPost},
		AllowedHeaders: []string{"Authorization", "Content-Type"},
		MaxAge:         600,
	}).Handler
}

// exchange is what one op request carries beyond its data: the HTTP
// request (for the edge's metadata and notes) and the response writer (for
// headers the library has no way to set on an error: Retry-After,
// WWW-Authenticate).
type exchange struct {
	w http.ResponseWriter
	r *http.Request
}

type exchangeKey struct{}

func exchangeOf(ctx context.Context) exchange {
	x, _ := ctx.Value(exchangeKey{}).(exchange)
	return x
}

// viaOP hands a request to the library after the edge's own checks, with
// the exchange on its context. Parameters are read from the body only (the
// library would merge the query string into them).
func (e *Edge) viaOP(w http.ResponseWriter, r *http.Request) {
	if r.PostForm != nil {
		r.Form = r.PostForm
	}
	ctx := context.WithValue(r.Context(), exchangeKey{}, exchange{w: w, r: r})
	e.op.ServeHTTP(w, r.WithContext(ctx))
}

// noStore marks a back-channel answer uncacheable (RFC 6749 section 5.1),
// errors included; the library sets no caching headers.
func noStore(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
}

// setString sets a string-kinded field whose type the library does not
// export (oidc.Error's error type).
func setString[T ~string](p *T, s string) { *p = T(s) }

// oauthFailure builds the library's error value with our code and status.
func oauthFailure(code string, status int, desc string) error {
	e := &oidc.Error{Description: desc}
	setString(&e.ErrorType, code)
	return op.NewStatusError(e, status)
}

// fail turns a failed auth call into the library's error: the OAuth code
// and status of the kind (oauthKind), Retry-After when auth sent one, and
// WWW-Authenticate when a Basic-authenticated client was refused.
func (e *Edge) fail(ctx context.Context, err error) error {
	x := exchangeOf(ctx)
	e.kit.Fault(x.r, err)
	d := page.Details(err)
	e.kit.Note(x.r, d.Kind)
	code, status := oauthKind(d.Kind)
	if d.RetryAfter != "" {
		x.w.Header().Set("Retry-After", d.RetryAfter)
	}
	if code == "invalid_client" {
		e.challengeBasic(x)
	}
	// Never auth's message: it is for people and not ASCII.
	return oauthFailure(code, status, oauthDescription(code, status))
}

func (e *Edge) challengeBasic(x exchange) {
	if _, _, basic := x.r.BasicAuth(); basic {
		x.w.Header().Set("WWW-Authenticate", `Basic realm="moreid", charset="UTF-8"`)
	}
}

// opClient is an OIDCClient as the library sees it, with the credentials
// it authenticated with (the back-channel calls after authentication carry
// them again: auth checks the key on every call).
type opClient struct {
	c    *authv1.OIDCClient
	auth clientAuth
}

func (c *opClient) GetID() string                    { return c.c.GetClientId() }
func (c *opClient) RedirectURIs() []string           { return c.c.GetRedirectUris() }
func (c *opClient) PostLogoutRedirectURIs() []string { return c.c.GetPostLogoutRedirectUris() }
func (c *opClient) LoginURL(id string) string        { return LoginPath + "?id=" + id }
func (c *opClient) AccessTokenType() op.AccessTokenType {
	return op.AccessTokenTypeBearer
}
func (c *opClient) IDTokenLifetime() time.Duration { return idTokenLifetime }
func (c *opClient) DevMode() bool                  { return false }
func (c *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed: auth decides the scopes; the library only asks about
// ones it does not know.
func (c *opClient) IsScopeAllowed(string) bool           { return false }
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *opClient) ClockSkew() time.Duration             { return 0 }

func (c *opClient) ApplicationType() op.ApplicationType {
	if c.c.GetPublic() {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (c *opClient) AuthMethod() oidc.AuthMethod {
	switch {
	case c.c.GetPublic():
		return oidc.AuthMethodNone
	case c.auth.basic:
		return oidc.AuthMethodBasic
	}
	return oidc.AuthMethodPost
}

// GrantTypes: a public client has no secret, so no client_credentials
// (the library answers unauthorized_client, as the SPEC wants).
func (c *opClient) GrantTypes() []oidc.GrantType {
	g := []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeDeviceCode}
	if !c.c.GetPublic() {
		g = append(g, oidc.GrantTypeClientCredentials)
	}
	return g
}

func clientOf(c op.Client) clientAuth {
	if oc, ok := c.(*opClient); ok {
		return oc.auth
	}
	return clientAuth{}
}

func (e *Edge) backCtxOf(ctx context.Context, c clientAuth) context.Context {
	return metadata.NewOutgoingContext(ctx, e.backMD(exchangeOf(ctx).r, c))
}

// VerifyClient authenticates the client through auth (the secret as
// x-api-key, or a public client's id) for every endpoint that needs one.
func (s *opServer) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	e := s.e
	x := exchangeOf(ctx)
	_, _, basic := x.r.BasicAuth()
	c := clientAuth{id: r.Data.ClientID, secret: r.Data.ClientSecret, basic: basic}
	if r.Data.ClientAssertion != "" {
		e.challengeBasic(x)
		return nil, oauthFailure("invalid_client", http.StatusUnauthorized, "client assertions are not supported")
	}
	res, err := e.back.AuthenticateClient(e.backCtxOf(ctx, c), &authv1.AuthenticateClientRequest{ClientId: c.id})
	if err != nil {
		return nil, e.fail(ctx, err)
	}
	if c.secret == "" && !res.GetClient().GetPublic() {
		e.kit.Note(x.r, apierr.InvalidClient)
		e.challengeBasic(x)
		return nil, oauthFailure("invalid_client", http.StatusUnauthorized, "this client must authenticate with its secret")
	}
	if res.GetClient().GetPublic() && x.r.PostForm.Get("grant_type") == string(oidc.GrantTypeClientCredentials) {
		// Refused here rather than by the library (GrantTypes), whose
		// error_description quotes the grant, and a '"' is not allowed
		// there (RFC 6749 section 5.2).
		e.kit.Note(x.r, apierr.UnauthorizedClient)
		return nil, oauthFailure("unauthorized_client", http.StatusBadRequest, "a public client cannot use client_credentials")
	}
	return &opClient{c: res.GetClient(), auth: c}, nil
}

// Discovery is the provider metadata (discovery.go).
func (s *opServer) Discovery(context.Context, *op.Request[struct{}]) (*op.Response, error) {
	resp := op.NewResponse(s.e.discoveryDoc())
	resp.Header.Set("Cache-Control", "public, max-age=300")
	return resp, nil
}

// Keys is the JWKS: auth's published keys as auth wrote them, cacheable
// for jwksMaxAge (a relying party that sees an unknown kid fetches again).
func (s *opServer) Keys(ctx context.Context, _ *op.Request[struct{}]) (*op.Response, error) {
	e := s.e
	set, err := e.keys.get(metadata.NewOutgoingContext(ctx, e.plainMD(exchangeOf(ctx).r)))
	if err != nil {
		return nil, e.fail(ctx, err)
	}
	keys := set.raw
	if keys == nil {
		keys = []json.RawMessage{}
	}
	resp := op.NewResponse(map[string]any{"keys": keys})
	resp.Header.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(jwksMaxAge/time.Second)))
	return resp, nil
}

// CodeExchange redeems the code: auth checks the client, redirect_uri and
// PKCE verifier and mints the tokens in one exactly-once RPC.
func (s *opServer) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	c := clientOf(r.Client)
	res, err := s.e.back.RedeemCode(s.e.backCtxOf(ctx, c), &authv1.RedeemCodeRequest{ClientId: c.id, Code: r.Data.Code,
		CodeVerifier: r.Data.CodeVerifier, RedirectUri: r.Data.RedirectURI})
	if err != nil {
		return nil, s.e.fail(ctx, err)
	}
	return s.e.grantResponse(ctx, c, res.GetGrant())
}

// RefreshToken rotates the refresh token (auth detects reuse).
func (s *opServer) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	c := clientOf(r.Client)
	res, err := s.e.back.Refresh(s.e.backCtxOf(ctx, c), &authv1.RefreshRequest{ClientId: c.id, RefreshToken: r.Data.RefreshToken,
		Scopes: r.Data.Scopes})
	if err != nil {
		return nil, s.e.fail(ctx, err)
	}
	return s.e.grantResponse(ctx, c, res.GetGrant())
}

// ClientCredentialsExchange issues the client's own token (the library
// has refused public clients through GrantTypes already).
func (s *opServer) ClientCredentialsExchange(ctx context.Context, r *op.ClientRequest[oidc.ClientCredentialsRequest]) (*op.Response, error) {
	c := clientOf(r.Client)
	res, err := s.e.back.IssueClientToken(s.e.backCtxOf(ctx, c), &authv1.IssueClientTokenRequest{ClientId: c.id, Scopes: r.Data.Scope})
	if err != nil {
		return nil, s.e.fail(ctx, err)
	}
	return s.e.grantResponse(ctx, c, res.GetGrant())
}

// DeviceToken is one poll: auth answers authorization_pending, slow_down,
// access_denied or expired_token, or the grant.
func (s *opServer) DeviceToken(ctx context.Context, r *op.ClientRequest[oidc.DeviceAccessTokenRequest]) (*op.Response, error) {
	c := clientOf(r.Client)
	res, err := s.e.back.PollDevice(s.e.backCtxOf(ctx, c), &authv1.PollDeviceRequest{ClientId: c.id, DeviceCode: r.Data.DeviceCode})
	if err != nil {
		return nil, s.e.fail(ctx, err)
	}
	return s.e.grantResponse(ctx, c, res.GetGrant())
}

// grantResponse is the token answer of a grant. The access token is
// auth's token_... record itself, passed through untouched (the same
// token works on /api/oauth); the ID token is built here and signed by
// auth when the grant has a subject and openid.
func (e *Edge) grantResponse(ctx context.Context, c clientAuth, g *authv1.OIDCGrant) (*op.Response, error) {
	out := tokenResponse{AccessToken: g.GetAccessToken(), TokenType: oidc.BearerToken, ExpiresIn: g.GetExpiresIn(),
		RefreshToken: g.GetRefreshToken(), Scope: strings.Join(g.GetScopes(), " ")}
	if g.GetSubject() != "" && slices.Contains(g.GetScopes(), oidc.ScopeOpenID) {
		var err error
		out.IDToken, err = e.idToken(metadata.NewOutgoingContext(ctx, e.plainMD(exchangeOf(ctx).r)), c.id, g)
		if err != nil {
			e.log.Error("oidc: sign the ID token", "client_id", c.id, "error", err.Error())
			return nil, e.fail(ctx, err)
		}
	}
	return op.NewResponse(out), nil
}

// UserInfo asks auth for the claims of the access token (sent as the
// authorization metadata) and keeps those its scopes allow.
func (s *opServer) UserInfo(ctx context.Context, r *op.Request[oidc.UserInfoRequest]) (*op.Response, error) {
	e := s.e
	x := exchangeOf(ctx)
	token := strings.TrimSpace(r.Data.AccessToken)
	if token == "" || !page.Sendable(token) {
		return nil, e.bearerFailure(x, "an access token is required")
	}
	md := e.plainMD(x.r)
	md.Set(wire.Authorization, "Bearer "+token)
	res, err := e.front.GetUserinfo(metadata.NewOutgoingContext(ctx, md), &authv1.OIDCServiceGetUserinfoRequest{})
	if err != nil {
		switch page.Details(err).Kind {
		case apierr.InvalidToken, apierr.Unauthenticated, apierr.InvalidAPIKey:
			return nil, e.bearerFailure(x, "the access token is not active")
		}
		return nil, e.fail(ctx, err)
	}
	return op.NewResponse(userinfoClaims(res.GetUserinfo())), nil
}

// bearerFailure is RFC 6750's invalid_token: 401 with the challenge.
func (e *Edge) bearerFailure(x exchange, desc string) error {
	e.kit.Note(x.r, apierr.InvalidToken)
	x.w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	return oauthFailure("invalid_token", http.StatusUnauthorized, desc)
}

// Introspect is RFC 7662. The library has refused a client without a
// secret (a public client cannot authenticate) and one without a token;
// it does not call VerifyClient here, so the Introspect RPC authenticates
// the key itself, and answers inactive for any token not issued to it.
func (s *opServer) Introspect(ctx context.Context, r *op.Request[op.IntrospectionRequest]) (*op.Response, error) {
	e := s.e
	_, _, basic := exchangeOf(ctx).r.BasicAuth()
	c := clientAuth{id: r.Data.ClientID, secret: r.Data.ClientSecret, basic: basic}
	res, err := e.back.Introspect(e.backCtxOf(ctx, c), &authv1.IntrospectRequest{ClientId: c.id, Token: r.Data.Token})
	if err != nil {
		return nil, e.fail(ctx, err)
	}
	if !res.GetActive() {
		return op.NewResponse(map[string]any{"active": false}), nil
	}
	out := map[string]any{"active": true, "iss": e.issuer}
	// aud: the token is for the client it was issued to (RFC 7662 section
	// 2.2). token_type is an access token's type (RFC 6749 section 7.1),
	// which a refresh token has none of.
	tokenType := res.GetTokenType()
	if tokenType == "refresh_token" {
		tokenType = ""
	}
	for k, v := range map[string]string{"scope": res.GetScope(), "client_id": res.GetClientId(), "aud": res.GetClientId(),
		"sub": res.GetSub(), "username": res.GetUsername(), "token_type": tokenType} {
		if v != "" {
			out[k] = v
		}
	}
	if t := res.GetIssuedAt(); t != nil {
		out["iat"] = t.AsTime().Unix()
	}
	if t := res.GetExpiresAt(); t != nil {
		out["exp"] = t.AsTime().Unix()
	}
	return op.NewResponse(out), nil
}

// Revocation is RFC 7009: 200 with an empty body whether or not the
// token was this client's.
func (s *opServer) Revocation(ctx context.Context, r *op.ClientRequest[oidc.RevocationRequest]) (*op.Response, error) {
	c := clientOf(r.Client)
	_, err := s.e.back.Revoke(s.e.backCtxOf(ctx, c), &authv1.RevokeRequest{ClientId: c.id, Token: r.Data.Token,
		TokenTypeHint: r.Data.TokenTypeHint})
	if err != nil {
		return nil, s.e.fail(ctx, err)
	}
	return &op.Response{Header: http.Header{}}, nil
}

// DeviceAuthorization starts a device flow (RFC 8628 section 3.1): the
// edge draws the codes, auth stores only their hashes.
func (s *opServer) DeviceAuthorization(ctx context.Context, r *op.ClientRequest[oidc.DeviceAuthorizationRequest]) (*op.Response, error) {
	e := s.e
	c := clientOf(r.Client)
	res, device, user, err := e.startDevice(e.backCtxOf(ctx, c), c.id, r.Data.Scopes)
	if err != nil {
		return nil, e.fail(ctx, err)
	}
	interval := int(res.GetInterval())
	if interval <= 0 {
		interval = 5
	}
	return op.NewResponse(&oidc.DeviceAuthorizationResponse{
		DeviceCode:              device,
		UserCode:                user,
		VerificationURI:         e.url(DevicePath),
		VerificationURIComplete: e.url(DevicePath) + "?user_code=" + url.QueryEscape(user),
		ExpiresIn:               int(deviceCodeTTL / time.Second),
		Interval:                interval,
	}), nil
}
