package oidc

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"google.golang.org/grpc/metadata"

	"github.com/moreline/moreid/gateway/internal/page"
	"github.com/moreline/moreid/platform/apierr"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

// userinfoMethods is /oidc/userinfo, GET or POST (OpenID Connect Core
// 5.3.1), with the access token as a Bearer header or, on POST, the
// access_token form field (RFC 6750 section 2.2). The edge refuses a
// missing token with RFC 6750's invalid_token challenge (the library would
// answer invalid_request without one); the library reads the token and
// calls opServer.UserInfo.
func (e *Edge) userinfoMethods(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "method not allowed")
		return
	}
	token := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, value, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			e.bearerError(w, r, "invalid_request", "use the Bearer scheme")
			return
		}
		token = strings.TrimSpace(value)
	}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, page.MaxFormBytes)
	}
	if err := r.ParseForm(); err != nil {
		e.bearerError(w, r, "invalid_request", "the body must be a form")
		return
	}
	if token == "" {
		token = r.PostForm.Get("access_token")
	}
	if token == "" || !page.Sendable(token) {
		e.bearerError(w, r, "invalid_token", "an access token is required")
		return
	}
	e.viaOP(w, r)
}

// userinfoClaims are the claims the token's scopes allow (SPEC 8).
// email_verified is false: Moreid does not verify addresses.
func userinfoClaims(u *authv1.OIDCUserinfo) map[string]any {
	out := map[string]any{"sub": u.GetSub()}
	scopes := u.GetScopes()
	if slices.Contains(scopes, "profile") {
		for k, v := range map[string]string{"preferred_username": u.GetPreferredUsername(), "name": u.GetName(),
			"picture": u.GetPicture(), "bio": u.GetBio()} {
			if v != "" {
				out[k] = v
			}
		}
	}
	if slices.Contains(scopes, "email") && u.GetEmail() != "" {
		out["email"] = u.GetEmail()
		out["email_verified"] = u.GetEmailVerified()
	}
	return out
}

func (e *Edge) bearerError(w http.ResponseWriter, r *http.Request, code, desc string) {
	e.kit.Note(r, apierr.InvalidToken)
	status := http.StatusUnauthorized
	if code == "invalid_request" {
		status = http.StatusBadRequest
	}
	w.Header().Set("WWW-Authenticate", `Bearer error="`+code+`"`)
	writeOAuthError(w, status, code, desc)
}

// hintClaims are the claims of an id_token_hint that logout reads.
type hintClaims struct {
	Issuer   string        `json:"iss"`
	Audience oidc.Audience `json:"aud"`
	AZP      string        `json:"azp"`
}

// endSession is /oidc/end_session (RP-initiated logout 1.0). It ends the
// web session and clears its cookie, then goes to post_logout_redirect_uri
// when it exactly matches one of the client's redirect or post-logout URIs
// (else nowhere: an error page, never an open redirect), or to the kit's
// logged-out page.
func (e *Edge) endSession(w http.ResponseWriter, r *http.Request) {
	// No origin check: the request comes from the relying party's site,
	// cross-site by nature.
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, page.MaxFormBytes)
	}
	if err := r.ParseForm(); err != nil {
		e.kit.FailKind(w, r, apierr.InvalidRequest)
		return
	}
	q := r.Form
	hint, target, clientID := q.Get("id_token_hint"), q.Get("post_logout_redirect_uri"), q.Get("client_id")
	if !page.Sendable("", hint, target, clientID, q.Get("state")) {
		e.kit.FailKind(w, r, apierr.InvalidRequest)
		return
	}
	if hint != "" {
		aud, ok := e.checkHint(r, hint)
		if !ok {
			e.logoutErrorPage(w, r, "退出请求中的 id_token_hint 无效。")
			return
		}
		if clientID != "" && clientID != aud {
			e.logoutErrorPage(w, r, "退出请求中的 client_id 与 id_token_hint 不符。")
			return
		}
		clientID = aud
	}
	if target != "" {
		if clientID == "" {
			e.logoutErrorPage(w, r, "退出后的跳转地址需要 client_id 或 id_token_hint。")
			return
		}
		res, err := e.front.GetClient(metadata.NewOutgoingContext(r.Context(), e.plainMD(r)), &authv1.GetClientRequest{ClientId: clientID})
		if err != nil {
			if k := page.Details(err).Kind; k == apierr.NotFound || k == apierr.InvalidClient || k == apierr.InvalidRequest {
				e.logoutErrorPage(w, r, "发起退出的应用不存在或已停用。")
				return
			}
			e.kit.Fail(w, r, err)
			return
		}
		c := res.GetClient()
		if !slices.Contains(c.GetPostLogoutRedirectUris(), target) && !slices.Contains(c.GetRedirectUris(), target) {
			e.logoutErrorPage(w, r, "应用提供的退出后跳转地址未登记。")
			return
		}
	}
	if _, err := e.front.EndSession(metadata.NewOutgoingContext(r.Context(), e.frontMD(r, "")), &authv1.EndSessionRequest{}); err != nil {
		e.kit.Fail(w, r, err)
		return
	}
	e.kit.ClearCookie(w, r, wire.SessionCookie, "/")
	if target == "" {
		e.see(w, r, LoggedOutPath)
		return
	}
	u, err := url.Parse(target)
	if err != nil {
		e.see(w, r, LoggedOutPath)
		return
	}
	if s := q.Get("state"); s != "" {
		v := u.Query()
		v.Set("state", s)
		u.RawQuery = v.Encode()
	}
	e.redirect(w, r, u.String())
}

// checkHint verifies an id_token_hint: signed by one of the published
// keys and issued here. Its expiry does not matter (logout often comes
// after the ID token expired). It returns the client it was issued to.
func (e *Edge) checkHint(r *http.Request, hint string) (string, bool) {
	jws, err := jose.ParseSignedCompact(hint, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.PS256, jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		return "", false
	}
	set, err := e.keys.get(metadata.NewOutgoingContext(r.Context(), e.plainMD(r)))
	if err != nil {
		return "", false
	}
	kid := jws.Signatures[0].Header.KeyID
	for i := range set.keys {
		if set.keys[i].KeyID != kid {
			continue
		}
		payload, err := jws.Verify(&set.keys[i])
		if err != nil {
			return "", false
		}
		var c hintClaims
		if json.Unmarshal(payload, &c) != nil || c.Issuer != e.issuer {
			return "", false
		}
		switch {
		case c.AZP != "":
			return c.AZP, true
		case len(c.Audience) == 1:
			return c.Audience[0], true
		}
		return "", false
	}
	return "", false
}

func (e *Edge) logoutErrorPage(w http.ResponseWriter, r *http.Request, msg string) {
	e.kit.ErrorPage(w, r, apierr.InvalidRequest, http.StatusBadRequest, "无法退出登录", msg, "请回到应用重试。")
}

// loggedOut is the kit page after a logout with nowhere to go.
func (e *Edge) loggedOut(w http.ResponseWriter, r *http.Request) {
	e.kit.Render(w, r, http.StatusOK, &page.View{Kind: "logged_out", Title: "已退出登录"})
}
