package oidc

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

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
//
// It is the gate in front of the library, which reads the credentials
// again (parseClientCredentials) and authenticates through VerifyClient.
// The gate keeps what the library does otherwise: no client at all is
// invalid_client 401 (the library: invalid_request), Basic plus a form
// client_secret is two methods even without a form client_id (the library
// sees two only when the form has both), a repeated parameter is refused
// (the library's decoder takes one), and nothing that cannot travel as
// gRPC metadata goes on.
func (e *Edge) backForm(w http.ResponseWriter, r *http.Request) (clientAuth, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, page.MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "the body must be a form")
		return clientAuth{}, false
	}
	for k, vs := range r.PostForm {
		if len(vs) > 1 {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "parameter "+descValue(k)+" is repeated")
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

// tokenResponse is RFC 6749 section 5.1 plus the ID token.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int32  `json:"expires_in,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// token is POST /oidc/token: the edge's form checks (backForm), then only
// the four grants reach the library, which authenticates the client
// (VerifyClient), checks its grants and the grant's required parameters
// and calls the opServer method of the grant. Other grants the library
// knows (JWT bearer, token exchange) are not served.
func (e *Edge) token(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	if _, ok := e.backForm(w, r); !ok {
		return
	}
	switch grant := r.PostForm.Get("grant_type"); grant {
	case string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken), string(oidc.GrantTypeClientCredentials),
		string(oidc.GrantTypeDeviceCode):
	case "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "unsupported grant_type")
		return
	}
	e.viaOP(w, r)
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

// backChannel is a client-authenticated endpoint the library serves
// (introspection, revocation, device authorization) after the edge's form
// checks.
func (e *Edge) backChannel(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	c, ok := e.backForm(w, r)
	if !ok {
		return
	}
	if r.URL.Path == IntrospectPath && c.secret == "" {
		// The library refuses a client without a secret too (RFC 7662
		// section 2.1: the caller authenticates, which a public client
		// cannot), but with 400; invalid_client is 401 everywhere here.
		e.invalidClient(w, r, c.basic, "introspection needs the client secret")
		return
	}
	e.viaOP(w, r)
}

// userCodeAlphabet has no vowels (no words in codes) and none of the
// letters that read alike (SPEC 8: 8 letters, shown XXXX-XXXX).
const userCodeAlphabet = op.CharSetBase20

// deviceCodeLen: 43 alphanumeric characters, about 256 bits.
const deviceCodeLen = 43

// startDevice draws the device code and the user code and registers
// them with auth (StartDevice); auth stores only their hashes. It returns
// the codes as the client is to see them.
func (e *Edge) startDevice(ctx context.Context, clientID string, scopes []string) (*authv1.StartDeviceResponse, string, string, error) {
	device := secret.New("mldc_", deviceCodeLen, secret.Alphanumeric)
	var res *authv1.StartDeviceResponse
	var user string
	var err error
	// A taken user code (ALREADY_EXISTS) is drawn again; a few tries make
	// a clash vanishingly rare at any realistic number of pending codes.
	for range 5 {
		// The display form: auth compares a normalised copy and keeps
		// this one to show on the verification page.
		user, err = op.NewUserCode([]rune(userCodeAlphabet), 8, 4)
		if err != nil {
			return nil, "", "", err
		}
		res, err = e.back.StartDevice(ctx, &authv1.StartDeviceRequest{ClientId: clientID, DeviceCode: device, UserCode: user,
			Scopes: scopes, ExpiresIn: int32(deviceCodeTTL / time.Second)})
		if err == nil || page.Details(err).Kind != apierr.Conflict {
			break
		}
	}
	return res, device, user, err
}
