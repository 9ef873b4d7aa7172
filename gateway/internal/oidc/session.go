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
// access_token form field (RFC 6750 section 2.2). The edge answers a
// request without a token with RFC 6750's bare Bearer challenge (the
// library would answer invalid_request without one); the library reads
// the token and calls opServer.UserInfo.
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
	_, field := r.PostForm["access_token"]
	if token == "" && r.Header.Get("Authorization") == "" && !field {
		// No credentials at all: the bare challenge, no error code (RFC
		// 6750 section 3.1); invalid_token is for a token that was sent.
		e.kit.Note(r, apierr.Unauthenticated)
		w.Header().Set("WWW-Authenticate", "Bearer")
		w.WriteHeader(http.StatusUnauthorized)
		return
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
	Subject  string        `json:"sub"`
	Audience oidc.Audience `json:"aud"`
	AZP      string        `json:"azp"`
}

// logoutCookie holds the double-submit token of the logout confirmation.
const logoutCookie = "moreid_logout_csrf"

// endSession is /oidc/end_session (RP-initiated logout 1.0). The
// post-logout target is checked first: post_logout_redirect_uri must
// exactly match one of the client's redirect or post-logout URIs (else an
// error page, never an open redirect).
//
// Any site can send a browser here, so a bare request must not sign the
// person out (logout CSRF). RP-Initiated Logout 1.0 section 2 has the OP
// ask the person unless the request proves itself: a valid id_token_hint
// (our signature and issuer, naming the client) ends the session at once;
// without one, a browser that has a session gets a confirmation page whose
// form posts back here with the parameters, a form token bound to the
// session and the page posts' origin check. A browser without a session
// has nothing to lose: it goes straight on.
//
// A hint proves the request only for its own user: EndSession carries its
// sub, and when the session is another user's auth leaves it alone and the
// person is asked as if there were no hint.
func (e *Edge) endSession(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, page.MaxFormBytes)
	}
	if err := r.ParseForm(); err != nil {
		e.kit.FailKind(w, r, apierr.InvalidRequest)
		return
	}
	q := r.Form
	hint, target, clientID := q.Get("id_token_hint"), q.Get("post_logout_redirect_uri"), q.Get("client_id")
	// action is set only by the confirmation page's own forms, which always
	// post; a relying party's logout POST (allowed by the specification)
	// has none and is read like a GET.
	action := ""
	if r.Method == http.MethodPost {
		action = r.PostForm.Get("action")
	}
	if !page.Sendable(r.PostForm.Get("csrf_token"), hint, target, clientID, q.Get("state"), action) {
		e.kit.FailKind(w, r, apierr.InvalidRequest)
		return
	}
	proven, subject := false, ""
	if hint != "" {
		aud, sub, ok := e.checkHint(r, hint)
		if !ok {
			e.logoutErrorPage(w, r, "退出请求中的 id_token_hint 无效。")
			return
		}
		if clientID != "" && clientID != aud {
			e.logoutErrorPage(w, r, "退出请求中的 client_id 与 id_token_hint 不符。")
			return
		}
		clientID, subject, proven = aud, sub, true
	}
	var client *authv1.OIDCClient
	if target != "" {
		if clientID == "" {
			e.logoutErrorPage(w, r, "退出后的跳转地址需要 client_id 或 id_token_hint。")
			return
		}
		c, ok := e.logoutClient(w, r, clientID)
		if !ok {
			return
		}
		if !slices.Contains(c.GetPostLogoutRedirectUris(), target) && !slices.Contains(c.GetRedirectUris(), target) {
			e.logoutErrorPage(w, r, "应用提供的退出后跳转地址未登记。")
			return
		}
		client = c
	}
	sess := ""
	if c, err := r.Cookie(wire.SessionCookie); err == nil {
		sess = c.Value
	}
	switch {
	case action != "":
		if !e.logoutAnswer(w, r, action, sess) {
			return
		}
	case sess == "" || proven:
	default:
		e.logoutConfirm(w, r, client, clientID, target, q.Get("state"), sess)
		return
	}
	if sess != "" {
		// The confirmed page ends whoever's session this is; a hint only
		// its own user's.
		req := &authv1.EndSessionRequest{}
		if action == "" {
			req.Subject = subject
		}
		res, err := e.front.EndSession(metadata.NewOutgoingContext(r.Context(), e.frontMD(r, "")), req)
		if err != nil {
			e.kit.Fail(w, r, err)
			return
		}
		if res.GetOtherUser() {
			e.logoutConfirm(w, r, client, clientID, target, q.Get("state"), sess)
			return
		}
		e.kit.ClearCookie(w, r, wire.SessionCookie, "/")
		e.kit.ClearCookie(w, r, logoutCookie, EndSessionPath)
	}
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

// logoutClient looks the client of a logout up, answering the error page
// itself when it cannot.
func (e *Edge) logoutClient(w http.ResponseWriter, r *http.Request, clientID string) (*authv1.OIDCClient, bool) {
	res, err := e.front.GetClient(metadata.NewOutgoingContext(r.Context(), e.plainMD(r)), &authv1.GetClientRequest{ClientId: clientID})
	if err != nil {
		if k := page.Details(err).Kind; k == apierr.NotFound || k == apierr.InvalidClient || k == apierr.InvalidRequest {
			e.logoutErrorPage(w, r, "发起退出的应用不存在或已停用。")
			return nil, false
		}
		e.kit.Fail(w, r, err)
		return nil, false
	}
	return res.GetClient(), true
}

// logoutBind binds the confirmation's form token to the web session, so
// that a token minted for one browser's session (an attacker's own) is
// worth nothing for another's. The session's derived CSRF value stands in
// for the secret itself.
func logoutBind(sess string) string { return "logout:" + wire.CSRFToken(sess) }

// logoutConfirm asks the person whether to sign out. The confirm form
// carries the request's parameters on; its answer redirects to the
// post-logout URI, which the form-action of the page must admit.
func (e *Edge) logoutConfirm(w http.ResponseWriter, r *http.Request, client *authv1.OIDCClient, clientID, target, state, sess string) {
	if client == nil && clientID != "" {
		// Only for the app's name: an unknown client_id with nowhere to
		// go names no app.
		res, err := e.front.GetClient(metadata.NewOutgoingContext(r.Context(), e.plainMD(r)), &authv1.GetClientRequest{ClientId: clientID})
		if err == nil {
			client = res.GetClient()
		} else {
			clientID = ""
		}
	}
	var hidden []page.Field
	for _, f := range []page.Field{{Name: "post_logout_redirect_uri", Value: target}, {Name: "state", Value: state}, {Name: "client_id", Value: clientID}} {
		if f.Value != "" {
			hidden = append(hidden, f)
		}
	}
	token := e.kit.FormToken(w, r, logoutCookie, EndSessionPath, logoutBind(sess))
	if target != "" {
		e.kit.AllowFormTarget(w, target)
	}
	e.kit.Render(w, r, http.StatusOK, &page.View{
		Kind: "logout_confirm", Title: "退出登录", App: client.GetName(), Post: EndSessionPath,
		CSRF: token, Hidden: hidden,
	})
}

// logoutAnswer checks the confirmation page's post (origin, then the form
// token of this session) and answers a deny itself. It reports whether the
// session is to be ended.
func (e *Edge) logoutAnswer(w http.ResponseWriter, r *http.Request, action, sess string) bool {
	if !page.SameOrigin(r) {
		e.kit.ErrorPage(w, r, apierr.Forbidden, http.StatusForbidden, "操作被拒绝", "请求来源不被允许", "请回到应用重新退出。")
		return false
	}
	if action != "confirm" && action != "deny" {
		e.kit.FailKind(w, r, apierr.InvalidRequest)
		return false
	}
	// Signed out meanwhile (no session): nothing to end or to keep, so no
	// token to check either.
	if sess != "" && !e.kit.FormTokenValid(r, logoutCookie, logoutBind(sess)) {
		e.kit.FailKind(w, r, apierr.CSRFFailed)
		return false
	}
	if action == "deny" {
		// Never a redirect: the request to sign out came from elsewhere,
		// and the person said no to it.
		e.kit.ClearCookie(w, r, logoutCookie, EndSessionPath)
		e.kit.Render(w, r, http.StatusOK, &page.View{Kind: "logout_cancelled", Title: "已取消退出"})
		return false
	}
	return true
}

// checkHint verifies an id_token_hint: signed by one of the published
// keys and issued here. Its expiry does not matter (logout often comes
// after the ID token expired). It returns the client it was issued to and
// its subject.
func (e *Edge) checkHint(r *http.Request, hint string) (aud, sub string, ok bool) {
	jws, err := jose.ParseSignedCompact(hint, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.PS256, jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		return "", "", false
	}
	set, err := e.keys.get(metadata.NewOutgoingContext(r.Context(), e.plainMD(r)))
	if err != nil {
		return "", "", false
	}
	kid := jws.Signatures[0].Header.KeyID
	for i := range set.keys {
		if set.keys[i].KeyID != kid {
			continue
		}
		payload, err := jws.Verify(&set.keys[i])
		if err != nil {
			return "", "", false
		}
		var c hintClaims
		if json.Unmarshal(payload, &c) != nil || c.Issuer != e.issuer {
			return "", "", false
		}
		switch {
		case c.AZP != "":
			return c.AZP, c.Subject, true
		case len(c.Audience) == 1:
			return c.Audience[0], c.Subject, true
		}
		return "", "", false
	}
	return "", "", false
}

func (e *Edge) logoutErrorPage(w http.ResponseWriter, r *http.Request, msg string) {
	e.kit.ErrorPage(w, r, apierr.InvalidRequest, http.StatusBadRequest, "无法退出登录", msg, "请回到应用重试。")
}

// loggedOut is the kit page after a logout with nowhere to go.
func (e *Edge) loggedOut(w http.ResponseWriter, r *http.Request) {
	e.kit.Render(w, r, http.StatusOK, &page.View{Kind: "logged_out", Title: "已退出登录"})
}
