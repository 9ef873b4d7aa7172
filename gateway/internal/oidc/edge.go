// Package oidc is the gateway's OpenID Connect edge (SPEC section 8): the
// discovery document, the JWKS, the authorization endpoint with its
// sign-in and consent pages, the token, userinfo, introspection, revocation
// and device authorization endpoints, the device verification page and
// RP-initiated logout, all under MOREID_ISSUER.
//
// Every decision is auth's: the front channel calls OIDCService (keyless,
// with the web session and CSRF metadata, like the confirmation page), the
// back channel OIDCClientService with the client secret as x-api-key (or a
// public client's id as x-oidc-client-id). The edge parses, checks what
// only the edge can see (a registered redirect URI, by auth's own rule in
// platform/redirecturi, before anything can redirect; PKCE S256; the
// origin of page posts), builds and signs the ID token through
// OIDCService.SignJWT and maps auth's error kinds to the OAuth error
// vocabulary, with fixed ASCII descriptions.
//
// The back channel (discovery, JWKS, token, introspection, userinfo,
// revocation, device authorization) is served by zitadel/oidc's certified
// op package (op.RegisterServer over opServer, opserver.go): the library
// parses the requests, authenticates clients, dispatches grants and writes
// the OAuth answers; opServer's methods are auth's RPCs. The authorization
// endpoint, its pages, the device page and logout stay the edge's: the
// library has no pages, and its authorize and end-session handlers answer
// in JSON where the SPEC wants the kit's error page (docs/ARCHITECTURE.md, "OpenID Connect provider").
package oidc

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/moreline/moreid/gateway/internal/page"
	"github.com/moreline/moreid/platform/apierr"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

// The fixed paths of the OpenID Connect surface.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	// ServerMetadataPath is RFC 8414's metadata path (section 3), for
	// OAuth clients that do not know OpenID Connect discovery.
	ServerMetadataPath = "/.well-known/oauth-authorization-server"
	JWKSPath           = "/oidc/jwks"
	AuthorizePath      = "/oidc/authorize"
	LoginPath          = "/oidc/login"
	ConsentPath        = "/oidc/consent"
	TokenPath          = "/oidc/token"
	UserinfoPath       = "/oidc/userinfo"
	IntrospectPath     = "/oidc/introspect"
	RevokePath         = "/oidc/revoke"
	DeviceAuthPath     = "/oidc/device_authorization"
	DevicePath         = "/device"
	EndSessionPath     = "/oidc/end_session"
	LoggedOutPath      = "/oidc/logged-out"
	DefaultIssuer      = "http://localhost:8080"
	idTokenLifetime    = time.Hour
	deviceCodeTTL      = 10 * time.Minute
	jwksCacheLifetime  = 5 * time.Second
	// jwksMaxAge is how long a relying party may cache the JWKS. A new
	// key is published 60 s before it signs; a relying party's cache, the
	// gateway's (jwksCacheLifetime) and auth's (10 s) together must stay
	// under that, or a token signed by the new key fails there.
	jwksMaxAge = 30 * time.Second
)

// Config is what the edge is built from.
type Config struct {
	// Issuer is MOREID_ISSUER: scheme and host, no path.
	Issuer string
	// Kit renders the pages and holds the edge's metadata function.
	Kit *page.Kit
	Log *slog.Logger
	// Now is the clock (ID token times, the JWKS cache); nil is time.Now.
	Now func() time.Time
}

// Edge serves the OpenID Connect paths.
type Edge struct {
	issuer  string
	kit     *page.Kit
	log     *slog.Logger
	now     func() time.Time
	front   authv1.OIDCServiceClient
	back    authv1.OIDCClientServiceClient
	keys    *keyCache
	handler map[string]http.HandlerFunc
	op      http.Handler // zitadel/oidc's op handler for the back channel
}

// New returns the edge over the auth connection.
func New(auth grpc.ClientConnInterface, cfg Config) (*Edge, error) {
	if auth == nil || cfg.Kit == nil || cfg.Log == nil {
		return nil, errors.New("oidc: auth connection, page kit and logger are required")
	}
	issuer, err := ParseIssuer(cfg.Issuer)
	if err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	front := authv1.NewOIDCServiceClient(auth)
	e := &Edge{
		issuer: issuer, kit: cfg.Kit, log: cfg.Log, now: now,
		front: front, back: authv1.NewOIDCClientServiceClient(auth),
		keys: newKeyCache(front, now, jwksCacheLifetime),
	}
	e.op = newOPHandler(e)
	cors := publicCORS()
	e.handler = map[string]http.HandlerFunc{
		DiscoveryPath:      cors(readOnly(e.public)).ServeHTTP,
		ServerMetadataPath: cors(readOnly(e.serverMetadata)).ServeHTTP,
		JWKSPath:           cors(readOnly(e.public)).ServeHTTP,
		AuthorizePath:      e.pageMethods(e.authorize),
		LoginPath:          e.pageMethods(e.login),
		ConsentPath:        e.pageMethods(e.consent),
		TokenPath:          cors(postOnly(e.token)).ServeHTTP,
		UserinfoPath:       cors(http.HandlerFunc(e.userinfoMethods)).ServeHTTP,
		IntrospectPath:     postOnly(e.backChannel),
		RevokePath:         postOnly(e.backChannel),
		DeviceAuthPath:     postOnly(e.backChannel),
		DevicePath:         e.pageMethods(e.device),
		EndSessionPath:     e.pageMethods(e.endSession),
		LoggedOutPath:      e.pageReadOnly(e.loggedOut),
	}
	return e, nil
}

// ParseIssuer checks and normalises MOREID_ISSUER: an absolute http(s) URL
// with a host and no path, query or fragment (every endpoint is served at
// a fixed path under it).
func ParseIssuer(s string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", errors.New("oidc: the issuer must be an http or https URL with a host and no path, query or fragment")
	}
	return u.Scheme + "://" + u.Host, nil
}

// Paths are the paths the edge serves, for the gateway's router and its
// metrics labels.
func (e *Edge) Paths() []string {
	out := make([]string, 0, len(e.handler))
	for p := range e.handler {
		out = append(out, p)
	}
	return out
}

// ServeHTTP serves one of Paths; any other path is 404.
func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := e.handler[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h(w, r)
}

// pageMethods wraps a page: security headers on every answer, GET, HEAD and
// POST only.
func (e *Edge) pageMethods(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e.kit.SecureHeaders(w)
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodPost:
			h(w, r)
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			e.kit.FailKind(w, r, apierr.MethodNotAllowed)
		}
	}
}

func (e *Edge) pageReadOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e.kit.SecureHeaders(w)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			e.kit.FailKind(w, r, apierr.MethodNotAllowed)
			return
		}
		h(w, r)
	}
}

func readOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "method not allowed")
			return
		}
		h(w, r)
	}
}

func postOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "method not allowed")
			return
		}
		h(w, r)
	}
}

// public is discovery and the JWKS, served by the library.
func (e *Edge) public(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	e.viaOP(w, r)
}

// serverMetadata is the discovery document again at RFC 8414's path: the
// library routes only the OpenID Connect path, so the request goes to it
// under that one.
func (e *Edge) serverMetadata(w http.ResponseWriter, r *http.Request) {
	u := *r.URL
	u.Path, u.RawPath = DiscoveryPath, ""
	r2 := r.WithContext(r.Context())
	r2.URL = &u
	e.public(w, r2)
}

// frontMD is the metadata of a front-channel call: the edge's (client IP,
// request id, web session), with csrf when the call changes something.
func (e *Edge) frontMD(r *http.Request, csrf string) metadata.MD {
	md := e.kit.Metadata(r)
	if csrf != "" {
		md.Set(wire.CSRF, csrf)
	}
	return md
}

// plainMD is the edge's metadata without the web session, for calls that
// do not act for the person (client lookup, keys).
func (e *Edge) plainMD(r *http.Request) metadata.MD {
	md := e.kit.Metadata(r)
	delete(md, wire.Session)
	return md
}

// backMD is the metadata of a back-channel call: client IP and request id,
// and the client's credential. The web session never goes there.
func (e *Edge) backMD(r *http.Request, c clientAuth) metadata.MD {
	md := e.plainMD(r)
	if c.secret != "" {
		md.Set(wire.APIKey, c.secret)
	} else {
		md.Set(wire.OIDCClientID, c.id)
	}
	return md
}

// url is an absolute URL of a path under the issuer.
func (e *Edge) url(path string) string { return e.issuer + path }
