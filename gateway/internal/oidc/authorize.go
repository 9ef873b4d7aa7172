package oidc

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/moreline/moreid/gateway/internal/page"
	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/redirecturi"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

// loginCookie is the double-submit cookie of the OIDC sign-in form (the
// confirmation page has its own, on its own path).
const loginCookie = "moreid_oidc_csrf"

// authorize is /oidc/authorize (GET or POST, RFC 6749 section 4.1.1).
//
// Until the client and the redirect URI are known to be good, nothing
// redirects: an unknown client or an unregistered redirect_uri gets the
// kit's error page (RFC 6749 section 4.1.2.1), so the endpoint cannot be
// used as an open redirector. Every later error goes back to the redirect
// URI with iss (RFC 9207).
func (e *Edge) authorize(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, page.MaxFormBytes)
	}
	if err := r.ParseForm(); err != nil {
		e.kit.FailKind(w, r, apierr.InvalidRequest)
		return
	}
	q := r.Form
	for _, k := range []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
		"code_challenge", "code_challenge_method", "prompt", "max_age", "login_hint", "response_mode"} {
		// A repeated parameter is an error (RFC 6749 section 3.1), and
		// one must not be read one way here and another way by auth.
		if len(q[k]) > 1 {
			e.authorizeErrorPage(w, r, "授权请求的参数 "+k+" 重复。")
			return
		}
	}
	clientID, redirectURI := q.Get("client_id"), q.Get("redirect_uri")
	if !page.Sendable("", q.Get("client_id"), q.Get("redirect_uri"), q.Get("scope"), q.Get("state"),
		q.Get("nonce"), q.Get("code_challenge"), q.Get("login_hint")) {
		e.kit.FailKind(w, r, apierr.InvalidRequest)
		return
	}
	if clientID == "" {
		e.authorizeErrorPage(w, r, "授权请求缺少应用标识（client_id）。")
		return
	}
	ctx := metadata.NewOutgoingContext(r.Context(), e.plainMD(r))
	res, err := e.front.GetClient(ctx, &authv1.GetClientRequest{ClientId: clientID})
	if err != nil {
		switch page.Details(err).Kind {
		case apierr.NotFound, apierr.InvalidClient, apierr.InvalidRequest:
			e.authorizeErrorPage(w, r, "发起登录的应用不存在或已停用。")
		default:
			e.kit.Fail(w, r, err)
		}
		return
	}
	client := res.GetClient()
	// The one rule auth applies too (platform/redirecturi): the exact
	// string, except a public client's loopback redirect on any port (RFC
	// 8252 section 7.3). redirect_uri is required even with one registered
	// URI, since OpenID Connect requires it.
	if redirectURI == "" || !redirecturi.Matches(client.GetRedirectUris(), redirectURI, client.GetPublic()) {
		e.authorizeErrorPage(w, r, "应用提供的回调地址（redirect_uri）未登记。")
		return
	}
	back := redirect{uri: redirectURI, state: q.Get("state"), issuer: e.issuer}
	req, problem := authRequest(client, q)
	if problem != nil {
		e.redirect(w, r, back.err(problem.code, problem.desc))
		return
	}
	created, err := e.front.CreateAuthRequest(metadata.NewOutgoingContext(r.Context(), e.frontMD(r, "")), req)
	if err != nil {
		d := page.Details(err)
		e.kit.Note(r, d.Kind)
		code, _ := oauthKind(d.Kind)
		if code == "invalid_grant" || code == "invalid_client" || code == "unauthorized_client" {
			code = "invalid_request"
		}
		// Auth's message is for people (not ASCII, RFC 6749 4.1.2.1).
		e.redirect(w, r, back.err(code, oauthDescription(code, 0)))
		return
	}
	e.decide(w, r, created.GetAuthRequest().GetId(), authv1.Decision_DECISION_AUTO, e.frontMD(r, ""), back)
}

// problem is an authorization error that goes back to the client.
type problem struct{ code, desc string }

// authRequest checks the request parameters that auth stores as they are
// and builds CreateAuthRequest.
func authRequest(client *authv1.OIDCClient, q url.Values) (*authv1.CreateAuthRequestRequest, *problem) {
	if q.Get("request") != "" || q.Get("request_uri") != "" {
		return nil, &problem{"request_not_supported", "request objects are not supported"}
	}
	switch q.Get("response_type") {
	case "code":
	case "":
		// Missing is a malformed request, not an unsupported type (RFC
		// 6749 section 4.1.2.1).
		return nil, &problem{"invalid_request", "response_type is required"}
	default:
		return nil, &problem{"unsupported_response_type", "only response_type=code is supported"}
	}
	if m := q.Get("response_mode"); m != "" && m != "query" {
		return nil, &problem{"invalid_request", "only response_mode=query is supported"}
	}
	// Unknown scopes are ignored (OpenID Connect Core 3.1.2.1), as auth
	// ignores them: a relying party asking for more than is served still
	// signs in with what is.
	var scopes []string
	for _, s := range strings.Fields(q.Get("scope")) {
		if slices.Contains(knownScopes, s) && !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	if !slices.Contains(scopes, "openid") {
		return nil, &problem{"invalid_scope", "the openid scope is required"}
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return nil, &problem{"invalid_request", "code_challenge_method without code_challenge"}
	case challenge != "" && method != "S256":
		// An absent method means plain (RFC 7636 section 4.3), which
		// protects nothing against a reader of the request.
		return nil, &problem{"invalid_request", "code_challenge_method must be S256"}
	case challenge == "" && client.GetPublic():
		return nil, &problem{"invalid_request", "PKCE (S256) is required for public clients"}
	case challenge != "" && !validChallenge(challenge):
		return nil, &problem{"invalid_request", "code_challenge must be 43 base64url characters"}
	}
	asked := strings.Fields(q.Get("prompt"))
	var prompt []string
	for _, p := range asked {
		switch p {
		case "none", "login", "consent":
			prompt = append(prompt, p)
		case "select_account":
			// One account per session: there is nothing to choose, so it
			// reads as no prompt, and auth, which knows only the other
			// three, never sees it.
		default:
			return nil, &problem{"invalid_request", "unsupported prompt " + descValue(p)}
		}
	}
	if slices.Contains(asked, "none") && len(asked) > 1 {
		return nil, &problem{"invalid_request", "prompt=none cannot be combined"}
	}
	req := &authv1.CreateAuthRequestRequest{
		ClientId: client.GetClientId(), RedirectUri: q.Get("redirect_uri"), Scopes: scopes,
		State: q.Get("state"), Nonce: q.Get("nonce"), CodeChallenge: challenge, Prompt: prompt,
		LoginHint: q.Get("login_hint"),
	}
	if challenge != "" {
		req.CodeChallengeMethod = "S256"
	}
	if s := q.Get("max_age"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, &problem{"invalid_request", "max_age must be a non-negative integer"}
		}
		req.MaxAge = &n
	}
	return req, nil
}

// validChallenge: an S256 challenge is the base64url SHA-256, 43 characters.
func validChallenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// decide asks auth what the request needs next and sends the browser
// there. md is the call's metadata (a fresh session right after sign-in).
func (e *Edge) decide(w http.ResponseWriter, r *http.Request, id string, d authv1.Decision, md metadata.MD, back redirect) {
	res, err := e.front.Decide(metadata.NewOutgoingContext(r.Context(), md), &authv1.DecideRequest{AuthRequestId: id, Decision: d})
	if err != nil {
		if page.Details(err).Kind == apierr.Unauthenticated {
			e.see(w, r, LoginPath+"?id="+url.QueryEscape(id))
			return
		}
		e.kit.Fail(w, r, err)
		return
	}
	switch res.GetNext() {
	case authv1.Next_NEXT_LOGIN:
		e.see(w, r, LoginPath+"?id="+url.QueryEscape(id))
	case authv1.Next_NEXT_CONSENT:
		e.see(w, r, ConsentPath+"?id="+url.QueryEscape(id))
	case authv1.Next_NEXT_REDIRECT:
		// The request auth stored holds the checked redirect URI; a
		// request finished on a page has no other copy of it here.
		to := redirect{uri: res.GetRedirectUri(), state: res.GetState(), issuer: e.issuer}
		if to.uri == "" {
			to.uri = back.uri
		}
		if to.uri == "" {
			e.kit.FailKind(w, r, apierr.Internal)
			return
		}
		if res.GetError() != "" {
			// auth's description is for people; the client gets the
			// code's fixed ASCII one (RFC 6749 section 4.1.2.1).
			e.redirect(w, r, to.err(res.GetError(), oauthDescription(res.GetError(), 0)))
			return
		}
		e.redirect(w, r, to.code(res.GetCode()))
	default:
		e.kit.FailKind(w, r, apierr.Internal)
	}
}

// redirect is where an authorization answer goes.
type redirect struct{ uri, state, issuer string }

func (b redirect) with(v url.Values) string {
	if b.state != "" {
		v.Set("state", b.state)
	}
	v.Set("iss", b.issuer)
	u, err := url.Parse(b.uri)
	if err != nil {
		return b.uri
	}
	// Keep the registered URI's own query (RFC 6749 section 3.1.2).
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func (b redirect) code(code string) string { return b.with(url.Values{"code": {code}}) }

func (b redirect) err(code, desc string) string {
	v := url.Values{"error": {code}}
	if desc != "" {
		v.Set("error_description", desc)
	}
	return b.with(v)
}

// redirect sends the browser to the client: 302 from a GET, 303 from a
// POST (so the browser does not repost the form there).
func (e *Edge) redirect(w http.ResponseWriter, r *http.Request, to string) {
	code := http.StatusFound
	if r.Method == http.MethodPost {
		code = http.StatusSeeOther
	}
	http.Redirect(w, r, to, code)
}

// see sends the browser to one of the edge's own pages.
func (e *Edge) see(w http.ResponseWriter, r *http.Request, path string) {
	code := http.StatusFound
	if r.Method == http.MethodPost {
		code = http.StatusSeeOther
	}
	http.Redirect(w, r, path, code)
}

func (e *Edge) authorizeErrorPage(w http.ResponseWriter, r *http.Request, msg string) {
	e.kit.ErrorPage(w, r, apierr.InvalidRequest, http.StatusBadRequest, "无法继续登录", msg,
		"请回到应用重新发起登录；如果问题持续，请联系该应用的开发者。")
}

// login is /oidc/login?id=AUTHREQ: the sign-in form of an authorization
// request. GET shows it; POST signs in (the same web session as the
// confirmation page) and asks Decide where to go next.
func (e *Edge) login(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		e.loginPost(w, r)
		return
	}
	id := r.URL.Query().Get("id")
	ar, ok := e.authRequestFor(w, r, id)
	if !ok {
		return
	}
	e.loginForm(w, r, ar, http.StatusOK, "", ar.GetLoginHint())
}

func (e *Edge) loginForm(w http.ResponseWriter, r *http.Request, ar *authv1.AuthRequest, code int, notice, userID string) {
	token := e.kit.FormToken(w, r, loginCookie, LoginPath, "oidc:"+ar.GetId())
	// A remembered consent answers the sign-in with the redirect to the
	// client.
	e.kit.AllowFormTarget(w, ar.GetRedirectUri())
	e.kit.Render(w, r, code, &page.View{
		Kind: "oidc_login", Title: "登录", App: ar.GetAppName(), Post: LoginPath,
		Request: ar.GetId(), CSRF: token, UserID: userID, Notice: notice,
	})
}

// authRequestFor fetches the pending request for a page, answering the
// error page itself when it cannot.
func (e *Edge) authRequestFor(w http.ResponseWriter, r *http.Request, id string) (*authv1.AuthRequest, bool) {
	if id == "" || !page.Sendable("", id) {
		e.kit.ErrorPage(w, r, apierr.InvalidRequest, http.StatusBadRequest, "链接不完整",
			"链接中缺少授权请求标识。", "请回到应用重新发起登录。")
		return nil, false
	}
	res, err := e.front.GetAuthRequest(metadata.NewOutgoingContext(r.Context(), e.frontMD(r, "")), &authv1.GetAuthRequestRequest{Id: id})
	if err != nil {
		if k := page.Details(err).Kind; k == apierr.InvalidState || k == apierr.NotFound {
			e.kit.ErrorPage(w, r, k, http.StatusBadRequest, "授权请求无效",
				"该授权请求不存在、已过期或已完成。", "请回到应用重新发起登录。")
			return nil, false
		}
		e.kit.Fail(w, r, err)
		return nil, false
	}
	return res.GetAuthRequest(), true
}

// postForm checks what every page POST must pass first: same origin, a
// bounded form, values a backend call can carry.
func (e *Edge) postForm(w http.ResponseWriter, r *http.Request) bool {
	if !page.SameOrigin(r) {
		e.kit.ErrorPage(w, r, apierr.Forbidden, http.StatusForbidden, "操作被拒绝", "请求来源不被允许", "请回到应用重新发起登录。")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, page.MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		e.kit.FailKind(w, r, apierr.InvalidRequest)
		return false
	}
	f := r.PostForm
	if !page.Sendable(f.Get("csrf_token"), f.Get("id"), f.Get("user_id"), f.Get("password"), f.Get("user_code"), f.Get("action")) {
		e.kit.FailKind(w, r, apierr.InvalidRequest)
		return false
	}
	return true
}

func (e *Edge) loginPost(w http.ResponseWriter, r *http.Request) {
	if !e.postForm(w, r) {
		return
	}
	id := r.PostForm.Get("id")
	if id == "" {
		e.kit.FailKind(w, r, apierr.InvalidRequest)
		return
	}
	if !e.kit.FormTokenValid(r, loginCookie, "oidc:"+id) {
		e.kit.FailKind(w, r, apierr.CSRFFailed)
		return
	}
	userID := r.PostForm.Get("user_id")
	res, err := e.front.SignIn(metadata.NewOutgoingContext(r.Context(), e.frontMD(r, "")), &authv1.OIDCServiceSignInRequest{
		AuthRequestId: id, UserId: userID, Password: r.PostForm.Get("password"),
	})
	if err != nil {
		if d := page.Details(err); fixable(d.Kind) {
			e.kit.Note(r, d.Kind)
			if d.RetryAfter != "" {
				w.Header().Set("Retry-After", d.RetryAfter)
			}
			if ar, ok := e.authRequestFor(w, r, id); ok {
				e.loginForm(w, r, ar, d.HTTPStatus, d.Message, userID)
			}
			return
		}
		e.kit.Fail(w, r, err)
		return
	}
	e.kit.SetSession(w, r, res.GetSession(), int(res.GetExpiresIn()))
	e.kit.ClearCookie(w, r, loginCookie, LoginPath)
	// Decide must see the new session, not the cookie the browser sent.
	md := e.frontMD(r, "")
	md.Set(wire.Session, res.GetSession())
	e.decide(w, r, id, authv1.Decision_DECISION_AUTO, md, redirect{})
}

// fixable are the sign-in errors the person can fix on the same form.
func fixable(k apierr.Kind) bool {
	switch k {
	case apierr.InvalidCredentials, apierr.InvalidRequest, apierr.RateLimited, apierr.AccountDisabled:
		return true
	}
	return false
}

// consent is /oidc/consent?id=AUTHREQ: GET shows the app and the scopes
// with button#confirm and button#deny; POST is the person's answer,
// carrying the session's CSRF token, which auth checks.
func (e *Edge) consent(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		if !e.postForm(w, r) {
			return
		}
		id := r.PostForm.Get("id")
		var d authv1.Decision
		switch r.PostForm.Get("action") {
		case "confirm":
			d = authv1.Decision_DECISION_APPROVE
		case "deny":
			d = authv1.Decision_DECISION_DENY
		default:
			e.kit.FailKind(w, r, apierr.InvalidRequest)
			return
		}
		csrf := r.PostForm.Get("csrf_token")
		if id == "" || csrf == "" {
			e.kit.FailKind(w, r, apierr.CSRFFailed)
			return
		}
		e.decide(w, r, id, d, e.frontMD(r, csrf), redirect{})
		return
	}
	id := r.URL.Query().Get("id")
	ar, ok := e.authRequestFor(w, r, id)
	if !ok {
		return
	}
	if ar.GetUser() == nil {
		e.see(w, r, LoginPath+"?id="+url.QueryEscape(id))
		return
	}
	e.kit.AllowFormTarget(w, ar.GetRedirectUri())
	e.kit.Render(w, r, http.StatusOK, &page.View{
		Kind: "oidc_consent", Title: "授权确认", App: ar.GetAppName(), Post: ConsentPath,
		Request: ar.GetId(), User: ar.GetUser(), CSRF: ar.GetCsrfToken(), Scopes: scopeTexts(ar.GetScopes()),
	})
}

// scopeTexts says in words what each scope lets the app see.
func scopeTexts(scopes []string) []page.Scope {
	var out []page.Scope
	for _, s := range scopes {
		switch s {
		case "openid":
			out = append(out, page.Scope{Name: s, Text: "确认你的 MoreLine 账号身份"})
		case "profile":
			out = append(out, page.Scope{Name: s, Text: "读取你的用户ID、昵称、头像和简介"})
		case "email":
			out = append(out, page.Scope{Name: s, Text: "读取你的邮箱地址"})
		case "offline_access":
			out = append(out, page.Scope{Name: s, Text: "在你离开后继续访问（长期有效的刷新令牌）"})
		default:
			out = append(out, page.Scope{Name: s, Text: s})
		}
	}
	return out
}
