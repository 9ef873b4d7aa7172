package oidc

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"google.golang.org/grpc/metadata"

	"github.com/moreline/moreid/gateway/internal/page"
	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/secret"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
)

// clientAuth is how a back-channel request authenticated its client.
type clientAuth struct {
	id     string
	secret string // the API key; empty for a public client
	basic  bool   // sent as HTTP Basic, so a 401 carries WWW-Authenticate
}

// backForm parses a back-channel form and reads the client's credentials
// from HTTP Basic (RFC 6749 section 2.3.1, form-encoded halves) or the
// client_id / client_secret fields. It answers the error itself when it
// returns false.
func (e *Edge) backForm(w http.ResponseWriter, r *http.Request) (clientAuth, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, page.MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "the body must be a form")
		return clientAuth{}, false
	}
	for k, vs := range r.PostForm {
		if len(vs) > 1 {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "parameter "+k+" is repeated")
			return clientAuth{}, false
		}
	}
	var c clientAuth
	if user, pass, ok := r.BasicAuth(); ok {
		id, err1 := url.QueryUnescape(user)
		sec, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			e.invalidClient(w, r, true, "malformed Basic credentials")
			return clientAuth{}, false
		}
		if r.PostForm.Get("client_secret") != "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "use one client authentication method")
			return clientAuth{}, false
		}
		if f := r.PostForm.Get("client_id"); f != "" && f != id {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "client_id differs from the Basic credentials")
			return clientAuth{}, false
		}
		c = clientAuth{id: id, secret: sec, basic: true}
	} else {
		c = clientAuth{id: r.PostForm.Get("client_id"), secret: r.PostForm.Get("client_secret")}
	}
	if c.id == "" {
		e.invalidClient(w, r, c.basic, "client authentication is required")
		return clientAuth{}, false
	}
	// gRPC metadata must be printable ASCII and strings UTF-8.
	if !page.Sendable(c.secret+c.id) || !page.Sendable("", formValues(r.PostForm)...) {
		e.invalidClient(w, r, c.basic, "malformed client credentials")
		return clientAuth{}, false
	}
	return c, true
}

func formValues(f url.Values) []string {
	var out []string
	for _, vs := range f {
		out = append(out, vs...)
	}
	return out
}

func (e *Edge) invalidClient(w http.ResponseWriter, r *http.Request, basic bool, desc string) {
	e.kit.Note(r, apierr.InvalidClient)
	if basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="moreid", charset="UTF-8"`)
	}
	writeOAuthError(w, http.StatusUnauthorized, "invalid_client", desc)
}

// backFailure answers a failed back-channel call.
func (e *Edge) backFailure(w http.ResponseWriter, r *http.Request, c clientAuth, err error) {
	if code, _ := oauthKind(page.Details(err).Kind); code == "invalid_client" && c.basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="moreid", charset="UTF-8"`)
	}
	e.jsonFailure(w, r, err)
}

func (e *Edge) backCtx(r *http.Request, c clientAuth) context.Context {
	return metadata.NewOutgoingContext(r.Context(), e.backMD(r, c))
}

// authenticate is the token endpoint's client authentication: auth checks
// the key (or that a keyless client is public) and the key's whitelist.
func (e *Edge) authenticate(w http.ResponseWriter, r *http.Request, c clientAuth) (*authv1.OIDCClient, bool) {
	res, err := e.back.AuthenticateClient(e.backCtx(r, c), &authv1.AuthenticateClientRequest{ClientId: c.id})
	if err != nil {
		e.backFailure(w, r, c, err)
		return nil, false
	}
	client := res.GetClient()
	if c.secret == "" && !client.GetPublic() {
		e.invalidClient(w, r, c.basic, "this client must authenticate with its secret")
		return nil, false
	}
	return client, true
}

// tokenResponse is RFC 6749 section 5.1 plus the ID token.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int32  `json:"expires_in,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// token is POST /oidc/token.
func (e *Edge) token(w http.ResponseWriter, r *http.Request) {
	c, ok := e.backForm(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	grant := f.Get("grant_type")
	switch grant {
	case "authorization_code", "refresh_token", "client_credentials", string(oidc.GrantTypeDeviceCode):
	case "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "unsupported grant_type")
		return
	}
	client, ok := e.authenticate(w, r, c)
	if !ok {
		return
	}
	ctx := e.backCtx(r, c)
	var g *authv1.OIDCGrant
	var err error
	switch grant {
	case "authorization_code":
		if f.Get("code") == "" || f.Get("redirect_uri") == "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "code and redirect_uri are required")
			return
		}
		var res *authv1.RedeemCodeResponse
		res, err = e.back.RedeemCode(ctx, &authv1.RedeemCodeRequest{ClientId: c.id, Code: f.Get("code"),
			CodeVerifier: f.Get("code_verifier"), RedirectUri: f.Get("redirect_uri")})
		g = res.GetGrant()
	case "refresh_token":
		if f.Get("refresh_token") == "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "refresh_token is required")
			return
		}
		var res *authv1.RefreshResponse
		res, err = e.back.Refresh(ctx, &authv1.RefreshRequest{ClientId: c.id, RefreshToken: f.Get("refresh_token"),
			Scopes: strings.Fields(f.Get("scope"))})
		g = res.GetGrant()
	case "client_credentials":
		if client.GetPublic() {
			writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", "a public client cannot use client_credentials")
			return
		}
		var res *authv1.IssueClientTokenResponse
		res, err = e.back.IssueClientToken(ctx, &authv1.IssueClientTokenRequest{ClientId: c.id, Scopes: strings.Fields(f.Get("scope"))})
		g = res.GetGrant()
	default: // device code
		if f.Get("device_code") == "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "device_code is required")
			return
		}
		var res *authv1.PollDeviceResponse
		res, err = e.back.PollDevice(ctx, &authv1.PollDeviceRequest{ClientId: c.id, DeviceCode: f.Get("device_code")})
		g = res.GetGrant()
	}
	if err != nil {
		e.backFailure(w, r, c, err)
		return
	}
	// The access token is auth's token_... record itself, passed through
	// untouched: the same token works on /api/oauth.
	out := tokenResponse{AccessToken: g.GetAccessToken(), TokenType: "Bearer", ExpiresIn: g.GetExpiresIn(),
		RefreshToken: g.GetRefreshToken(), Scope: strings.Join(g.GetScopes(), " ")}
	if g.GetSubject() != "" && slices.Contains(g.GetScopes(), "openid") {
		out.IDToken, err = e.idToken(metadata.NewOutgoingContext(r.Context(), e.plainMD(r)), c.id, g)
		if err != nil {
			e.log.Error("oidc: sign the ID token", "client_id", c.id, "error", err.Error())
			e.jsonFailure(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// idClaims are the ID token's claims (OpenID Connect Core 2; SPEC 8).
type idClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience []string `json:"aud"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	AuthTime int64    `json:"auth_time,omitempty"`
	Nonce    string   `json:"nonce,omitempty"`
	AtHash   string   `json:"at_hash,omitempty"`
	AZP      string   `json:"azp"`
	AMR      []string `json:"amr,omitempty"`
}

// idToken builds and signs the ID token of a grant. The signature is
// auth's (SignJWT, through the OpaqueSigner); ctx carries no client key,
// since signing acts for the gateway.
func (e *Edge) idToken(ctx context.Context, clientID string, g *authv1.OIDCGrant) (string, error) {
	now := e.now()
	atHash, err := oidc.ClaimHash(g.GetAccessToken(), jose.RS256)
	if err != nil {
		return "", err
	}
	claims := idClaims{
		Issuer: e.issuer, Subject: g.GetSubject(), Audience: []string{clientID},
		Expiry: now.Add(idTokenLifetime).Unix(), IssuedAt: now.Unix(),
		Nonce: g.GetNonce(), AtHash: atHash, AZP: clientID, AMR: g.GetAmr(),
	}
	if t := g.GetAuthTime(); t != nil {
		claims.AuthTime = t.AsTime().Unix()
	}
	return e.sign(ctx, claims)
}

// introspect is POST /oidc/introspect (RFC 7662).
func (e *Edge) introspect(w http.ResponseWriter, r *http.Request) {
	c, ok := e.backForm(w, r)
	if !ok {
		return
	}
	res, err := e.back.Introspect(e.backCtx(r, c), &authv1.IntrospectRequest{ClientId: c.id, Token: r.PostForm.Get("token")})
	if err != nil {
		e.backFailure(w, r, c, err)
		return
	}
	if !res.GetActive() {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	out := map[string]any{"active": true, "iss": e.issuer}
	for k, v := range map[string]string{"scope": res.GetScope(), "client_id": res.GetClientId(), "sub": res.GetSub(),
		"username": res.GetUsername(), "token_type": res.GetTokenType()} {
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
	writeJSON(w, http.StatusOK, out)
}

// revoke is POST /oidc/revoke (RFC 7009): 200 with an empty body whether
// or not the token was this client's.
func (e *Edge) revoke(w http.ResponseWriter, r *http.Request) {
	c, ok := e.backForm(w, r)
	if !ok {
		return
	}
	if r.PostForm.Get("token") == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "token is required")
		return
	}
	_, err := e.back.Revoke(e.backCtx(r, c), &authv1.RevokeRequest{ClientId: c.id, Token: r.PostForm.Get("token"),
		TokenTypeHint: r.PostForm.Get("token_type_hint")})
	if err != nil {
		e.backFailure(w, r, c, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// userCodeAlphabet has no vowels (no words in codes) and none of the
// letters that read alike (SPEC 8: 8 letters, shown XXXX-XXXX).
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// deviceCodeLen: 43 alphanumeric characters, about 256 bits.
const deviceCodeLen = 43

// deviceAuthorization is POST /oidc/device_authorization (RFC 8628
// section 3.1). The edge draws the codes; auth stores only their hashes.
func (e *Edge) deviceAuthorization(w http.ResponseWriter, r *http.Request) {
	c, ok := e.backForm(w, r)
	if !ok {
		return
	}
	ctx := e.backCtx(r, c)
	scopes := strings.Fields(r.PostForm.Get("scope"))
	device := secret.New("mldc_", deviceCodeLen, secret.Alphanumeric)
	var res *authv1.StartDeviceResponse
	var user string
	var err error
	// A taken user code (ALREADY_EXISTS) is drawn again; a few tries make
	// a clash vanishingly rare at any realistic number of pending codes.
	for range 5 {
		// The display form: auth compares a normalised copy and keeps
		// this one to show on the verification page.
		code := secret.New("", 8, userCodeAlphabet)
		user = code[:4] + "-" + code[4:]
		res, err = e.back.StartDevice(ctx, &authv1.StartDeviceRequest{ClientId: c.id, DeviceCode: device, UserCode: user,
			Scopes: scopes, ExpiresIn: int32(deviceCodeTTL / time.Second)})
		if err == nil || page.Details(err).Kind != apierr.Conflict {
			break
		}
	}
	if err != nil {
		e.backFailure(w, r, c, err)
		return
	}
	interval := res.GetInterval()
	if interval <= 0 {
		interval = 5
	}
	display := user
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code":               device,
		"user_code":                 display,
		"verification_uri":          e.url(DevicePath),
		"verification_uri_complete": e.url(DevicePath) + "?user_code=" + url.QueryEscape(display),
		"expires_in":                int32(deviceCodeTTL / time.Second),
		"interval":                  interval,
	})
}
