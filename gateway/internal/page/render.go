package page

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"strconv"

	"github.com/moreline/moreid/platform/apierr"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
)

//go:embed assets/page.html assets/page.css assets/page.js
var assets embed.FS

// view is everything a state of a kit page shows. View is its exported
// name for the other pages built on the kit (gateway/internal/oidc).
type view = View

// View is everything a state of a kit page shows.
type View struct {
	Kind       string // signin, confirm, code, denied, error or an OIDC view; also <main>'s data-view
	Title      string
	App        string
	UCA        string
	ExpiresIn  int32
	TimerLabel string
	User       *authv1.User
	CSRF       string
	UserID     string
	Notice     string // a fixable error above the sign-in button
	Code       string
	Message    string // the error page's text
	Hint       string
	// Post is where the forms of a view post; empty means the
	// confirmation page (Path).
	Post string
	// The OIDC views: the authorization request or the device's user
	// code, the requested scopes, and where a "continue" link leads.
	Request  string
	UserCode string
	Scopes   []Scope
	Link     string
	// Hidden are the parameters a form carries on unchanged (the logout
	// confirmation's post_logout_redirect_uri, state and client_id).
	Hidden []Field
}

// Field is one hidden form field.
type Field struct{ Name, Value string }

// Scope is one line of the consent page: a scope and what it lets the app
// see, in words.
type Scope struct{ Name, Text string }

// Action is where every form of the view posts.
func (v View) Action() string {
	if v.Post != "" {
		return v.Post
	}
	return Path
}

// parse reads the embedded template, style and script. The style and the
// script are inline (one request, no external asset) and the
// Content-Security-Policy admits exactly them by their hashes, so no other
// inline code could run even if some markup were injected.
func parse() (*template.Template, string, error) {
	css, err := assets.ReadFile("assets/page.css")
	if err != nil {
		return nil, "", err
	}
	js, err := assets.ReadFile("assets/page.js")
	if err != nil {
		return nil, "", err
	}
	tmpl, err := template.New("page").Funcs(template.FuncMap{
		"style":  func() template.CSS { return template.CSS(css) },
		"script": func() template.JS { return template.JS(js) },
		"clock":  clock,
	}).ParseFS(assets, "assets/page.html")
	if err != nil {
		return nil, "", fmt.Errorf("page: parse template: %w", err)
	}
	csp := "default-src 'none'; style-src " + hash(css) + "; script-src " + hash(js) +
		"; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	return tmpl, csp, nil
}

func hash(b []byte) string {
	sum := sha256.Sum256(b)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// FaviconPath is where the page's icon is served. It is a path of the
// gateway's own origin, which the page's img-src 'self' admits; browsers
// also ask for it there on their own, for /api/docs too.
const FaviconPath = "/favicon.ico"

//go:embed assets/favicon.svg
var favicon []byte

// Favicon serves the icon: a small SVG, whatever the .ico name suggests
// (browsers go by the Content-Type). The caller has checked the method.
func Favicon(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml")
	h.Set("X-Content-Type-Options", "nosniff")
	// An SVG opened on its own is a document: no script, no loads.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("Content-Length", strconv.Itoa(len(favicon)))
	_, _ = w.Write(favicon)
}

// clock formats seconds as m:ss, the countdown's text before the script
// takes over (and without script).
func clock(s int32) string {
	if s < 0 {
		s = 0
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// secureHeaders go on every answer of the page. The URL carries the UCA, so
// no Referer may take it elsewhere; nothing is cached; no site may frame
// the page (clickjacking of the confirm button).
func (p *Kit) secureHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", p.csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// render writes a view. The page is executed into a buffer first so that a
// template failure still yields a clean 500 instead of half a page.
func (p *Kit) render(w http.ResponseWriter, r *http.Request, code int, v *view) {
	var buf bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&buf, "page", v); err != nil {
		p.log.Error("page: render", "view", v.Kind, "error", err.Error())
		p.note(r, apierr.Internal)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(apierr.DefaultMessage(apierr.Internal)))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// fail answers a failed backend call with the error page of its kind.
func (p *Kit) fail(w http.ResponseWriter, r *http.Request, err error) {
	if p.edge.Fault != nil && apierr.IsFault(err) && apierr.OriginatedHere(err) {
		p.edge.Fault(r, err)
	}
	d := details(err)
	if d.RetryAfter != "" {
		w.Header().Set("Retry-After", d.RetryAfter)
	}
	title, hint := texts(d.Kind)
	msg := d.Message
	if d.Kind == apierr.InvalidCode {
		// The API's text speaks of authorization codes; here it is the
		// confirmation request.
		msg = "该确认请求不存在、已过期、已被使用或已被拒绝。"
	}
	p.errorPage(w, r, d.Kind, d.HTTPStatus, title, msg, hint)
}

func (p *Kit) failKind(w http.ResponseWriter, r *http.Request, k apierr.Kind) {
	title, hint := texts(k)
	p.errorPage(w, r, k, apierr.HTTPStatus(k), title, apierr.DefaultMessage(k), hint)
}

func (p *Kit) failWith(w http.ResponseWriter, r *http.Request, k apierr.Kind, msg, hint string) {
	title, _ := texts(k)
	p.errorPage(w, r, k, apierr.HTTPStatus(k), title, msg, hint)
}

func (p *Page) missingUCA(w http.ResponseWriter, r *http.Request) {
	p.errorPage(w, r, apierr.InvalidRequest, http.StatusBadRequest, "链接不完整",
		"链接中缺少确认码（uca）。", "请回到应用重新发起登录，并完整打开应用给出的链接。")
}

func (p *Kit) errorPage(w http.ResponseWriter, r *http.Request, k apierr.Kind, code int, title, msg, hint string) {
	p.note(r, k)
	p.render(w, r, code, &view{Kind: "error", Title: title, Message: msg, Hint: hint})
}

// texts are the heading and the advice of each error page.
func texts(k apierr.Kind) (title, hint string) {
	switch k {
	case apierr.InvalidCode:
		return "确认请求无效", "请回到应用重新发起登录。"
	case apierr.InvalidRequest:
		return "请求无效", "请回到应用重新发起登录。"
	case apierr.CSRFFailed:
		return "页面已过期", "请刷新页面后重试。"
	case apierr.Forbidden:
		return "操作被拒绝", "请回到应用重新发起登录。"
	case apierr.RateLimited:
		return "尝试次数过多", "请稍后再试。"
	case apierr.Unavailable:
		return "服务暂时不可用", "请稍后刷新页面重试。"
	case apierr.MethodNotAllowed:
		return "请求方法不允许", ""
	}
	return "出错了", "请稍后再试，或回到应用重新发起登录。"
}
