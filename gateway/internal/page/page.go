// Package page is the confirmation page of the safe login (SPEC section 4),
// GET and POST /api/oauth/user_confirmation: the browser end of a UCA. It
// calls ConfirmationService over gRPC and answers HTML only, errors included.
//
// One path serves every step. GET ?uca=... shows the sign-in form (no valid
// session) or the confirm / deny buttons (a session). Every form posts back
// to the same path with the fields `action` (login, confirm or deny), `uca`
// and `csrf_token`:
//
//   - login: user_id and password. Its csrf_token is a signed double-submit
//     value (formTokens), also held in the moreid_csrf cookie that the GET
//     set (there is no session yet). Success sets the moreid_session cookie
//     and redirects (303) to the GET page.
//   - confirm: makes the login code and shows it.
//   - deny: ends the UCA.
//
// confirm and deny carry the session's CSRF token (from GetConfirmation),
// which auth checks. Every POST must also be same-origin (sameOrigin).
package page

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"google.golang.org/grpc/metadata"

	"github.com/moreline/moreid/platform/apierr"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

// Path is where the page is served (the documented URL).
const Path = "/api/oauth/user_confirmation"

// csrfCookie is the double-submit cookie of the sign-in form, the page's own
// (the session cookie and the metadata keys are the wire contract, proto/wire).
const csrfCookie = "moreid_csrf"

// maxFormBytes bounds a posted form, as the JSON API bounds its bodies.
const maxFormBytes = 64 << 10

// Edge is what the page needs from the HTTP edge it is mounted in.
type Edge struct {
	// Metadata is the gRPC metadata of a request's backend calls: client
	// address, request id and the web session from the cookie.
	Metadata func(r *http.Request) metadata.MD
	// Secure reports whether the browser reached the edge over HTTPS, which
	// makes the cookies Secure.
	Secure func(r *http.Request) bool
	// Failed records the error kind of an answer (for the access log).
	// Optional.
	Failed func(r *http.Request, k apierr.Kind)
	// Fault records a failed backend call that is the edge's own fault
	// (auth not reached), for the one ERROR line of it. Optional.
	Fault func(r *http.Request, err error)
}

// Page serves the confirmation page.
type Page struct {
	*Kit
	client authv1.ConfirmationServiceClient
}

// New returns the page over a ConfirmationService client. csrfKey signs the
// sign-in form's double-submit tokens (MOREID_CSRF_KEY, at least
// MinCSRFKeyLen bytes); every gateway replica must share it.
func New(client authv1.ConfirmationServiceClient, edge Edge, csrfKey []byte, log *slog.Logger) (*Page, error) {
	if client == nil {
		return nil, errors.New("page: client is required")
	}
	kit, err := NewKit(edge, csrfKey, log)
	if err != nil {
		return nil, err
	}
	return &Page{Kit: kit, client: client}, nil
}

// OnKit returns the page over a kit the gateway shares with its other
// pages (the OpenID Connect ones).
func OnKit(client authv1.ConfirmationServiceClient, kit *Kit) (*Page, error) {
	if client == nil || kit == nil {
		return nil, errors.New("page: client and kit are required")
	}
	return &Page{Kit: kit, client: client}, nil
}

// ServeHTTP implements http.Handler for Path.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.secureHeaders(w)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		p.show(w, r)
	case http.MethodPost:
		p.post(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		p.failKind(w, r, apierr.MethodNotAllowed)
	}
}

// show is the GET page: sign-in form or confirm / deny.
func (p *Page) show(w http.ResponseWriter, r *http.Request) {
	uca := r.URL.Query().Get("uca")
	if uca == "" {
		p.missingUCA(w, r)
		return
	}
	if !sendable("", uca) {
		p.failKind(w, r, apierr.InvalidRequest)
		return
	}
	conf, err := p.client.GetConfirmation(p.call(r, ""), &authv1.GetConfirmationRequest{Uca: uca})
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if conf.GetUser() == nil {
		p.signIn(w, r, conf, uca, http.StatusOK, "", "")
		return
	}
	p.render(w, r, http.StatusOK, &view{
		Kind: "confirm", Title: "确认登录", App: conf.GetAppName(), UCA: uca,
		ExpiresIn: conf.GetExpiresIn(), TimerLabel: "请求剩余有效时间", User: conf.GetUser(), CSRF: conf.GetCsrfToken(),
	})
}

func (p *Page) post(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		p.failWith(w, r, apierr.Forbidden, "请求来源不被允许", "请回到确认页面重新操作。")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		p.failKind(w, r, apierr.InvalidRequest)
		return
	}
	uca := r.PostForm.Get("uca")
	if uca == "" {
		p.missingUCA(w, r)
		return
	}
	if !sendable(r.PostForm.Get("csrf_token"), uca, r.PostForm.Get("user_id"), r.PostForm.Get("password")) {
		p.failKind(w, r, apierr.InvalidRequest)
		return
	}
	switch r.PostForm.Get("action") {
	case "login":
		p.login(w, r, uca)
	case "confirm":
		p.confirm(w, r, uca)
	case "deny":
		p.deny(w, r, uca)
	default:
		p.failKind(w, r, apierr.InvalidRequest)
	}
}

// login checks the double-submit token (cookie and field equal, and signed
// by a gateway for this UCA), signs in and opens the session.
func (p *Page) login(w http.ResponseWriter, r *http.Request, uca string) {
	if !p.FormTokenValid(r, csrfCookie, uca) {
		p.failKind(w, r, apierr.CSRFFailed)
		return
	}
	userID := r.PostForm.Get("user_id")
	res, err := p.client.SignIn(p.call(r, ""), &authv1.SignInRequest{
		Uca: uca, UserId: userID, Password: r.PostForm.Get("password"),
	})
	if err != nil {
		switch d := details(err); d.Kind {
		case apierr.InvalidCredentials, apierr.InvalidRequest, apierr.RateLimited, apierr.AccountDisabled:
			// The user can fix these on the same form.
			p.note(r, d.Kind)
			if d.RetryAfter != "" {
				w.Header().Set("Retry-After", d.RetryAfter)
			}
			p.signInAgain(w, r, uca, d.HTTPStatus, d.Message, userID)
		default:
			p.fail(w, r, err)
		}
		return
	}
	p.SetSession(w, r, res.GetSession(), int(res.GetExpiresIn()))
	// The form token has done its job; the session's own token takes over.
	p.clearCookie(w, r, csrfCookie, Path)
	http.Redirect(w, r, Path+"?uca="+url.QueryEscape(uca), http.StatusSeeOther)
}

// confirm makes the login code.
func (p *Page) confirm(w http.ResponseWriter, r *http.Request, uca string) {
	res, err := p.client.GenerateLoginCode(p.call(r, r.PostForm.Get("csrf_token")), &authv1.GenerateLoginCodeRequest{Uca: uca})
	if err != nil {
		p.sessionFailure(w, r, uca, err)
		return
	}
	p.render(w, r, http.StatusOK, &view{
		Kind: "code", Title: "登录码", Code: res.GetLoginCode(),
		ExpiresIn: res.GetExpiresIn(), TimerLabel: "登录码剩余有效时间",
	})
}

// deny ends the UCA.
func (p *Page) deny(w http.ResponseWriter, r *http.Request, uca string) {
	if _, err := p.client.DenyConfirmation(p.call(r, r.PostForm.Get("csrf_token")), &authv1.DenyConfirmationRequest{Uca: uca}); err != nil {
		p.sessionFailure(w, r, uca, err)
		return
	}
	p.render(w, r, http.StatusOK, &view{Kind: "denied", Title: "已拒绝"})
}

// sessionFailure answers a failed confirm or deny: an expired session
// leads back to the sign-in form, anything else to an error page.
func (p *Page) sessionFailure(w http.ResponseWriter, r *http.Request, uca string, err error) {
	if d := details(err); d.Kind == apierr.Unauthenticated {
		p.note(r, d.Kind)
		p.clearCookie(w, r, wire.SessionCookie, "/")
		// GetConfirmation must not see the dead session either.
		r.Header.Del("Cookie")
		p.signInAgain(w, r, uca, http.StatusUnauthorized, "登录已过期，请重新登录。", "")
		return
	}
	p.fail(w, r, err)
}

// signInAgain shows the sign-in form after a POST, with the app's name
// fetched again (the form does not carry it, so it cannot be spoofed).
func (p *Page) signInAgain(w http.ResponseWriter, r *http.Request, uca string, code int, notice, userID string) {
	conf, err := p.client.GetConfirmation(p.call(r, ""), &authv1.GetConfirmationRequest{Uca: uca})
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.signIn(w, r, conf, uca, code, notice, userID)
}

// signIn renders the sign-in form and makes sure the browser holds the
// double-submit cookie the form's token must match. A cookie already set
// for this UCA (another tab, a failed attempt) is kept, so that every open
// form of the request stays valid; any other (another UCA's, a forged one)
// is replaced.
func (p *Page) signIn(w http.ResponseWriter, r *http.Request, conf *authv1.GetConfirmationResponse, uca string, code int, notice, userID string) {
	token := p.FormToken(w, r, csrfCookie, Path, uca)
	p.render(w, r, code, &view{
		Kind: "signin", Title: "登录", App: conf.GetAppName(), UCA: uca,
		ExpiresIn: conf.GetExpiresIn(), TimerLabel: "请求剩余有效时间", CSRF: token, UserID: userID, Notice: notice,
	})
}
