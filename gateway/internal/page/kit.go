package page

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/proto/wire"
)

// Kit is what every browser page of the gateway shares: the templates with
// their Content-Security-Policy, the security headers, the error page, the
// signed double-submit tokens of sign-in forms and the web session cookie.
// The confirmation page is built on it, and so are the OpenID Connect pages
// (gateway/internal/oidc), so that one web session and one look serve both.
type Kit struct {
	edge  Edge
	log   *slog.Logger
	tmpl  *template.Template
	csp   string
	forms formTokens
}

// NewKit returns the kit. csrfKey signs the sign-in forms' double-submit
// tokens (at least MinCSRFKeyLen bytes, shared by every replica).
func NewKit(edge Edge, csrfKey []byte, log *slog.Logger) (*Kit, error) {
	if edge.Metadata == nil || edge.Secure == nil || log == nil {
		return nil, errors.New("page: edge metadata and secure functions and logger are required")
	}
	forms, err := newFormTokens(csrfKey)
	if err != nil {
		return nil, err
	}
	tmpl, csp, err := parse()
	if err != nil {
		return nil, err
	}
	return &Kit{edge: edge, log: log, tmpl: tmpl, csp: csp, forms: forms}, nil
}

// SecureHeaders sets the headers every page answer carries (CSP, no
// framing, no referrer, no-store).
func (p *Kit) SecureHeaders(w http.ResponseWriter) { p.secureHeaders(w) }

// AllowFormTarget widens the answer's form-action to the origin of uri
// (scheme://host, or scheme: for an app's custom scheme). A page whose form
// is answered with a redirect to a client's redirect_uri needs it: browsers
// apply form-action to the redirects that follow a submission too. A URI
// that makes no safe CSP source leaves the policy as it is.
func (p *Kit) AllowFormTarget(w http.ResponseWriter, uri string) {
	src, ok := cspSource(uri)
	if !ok {
		return
	}
	w.Header().Set("Content-Security-Policy", strings.Replace(p.csp, "form-action 'self'", "form-action 'self' "+src, 1))
}

func cspSource(uri string) (string, bool) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	for i, c := range scheme {
		if !(c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "", false
		}
	}
	if scheme != "http" && scheme != "https" {
		return scheme + ":", true
	}
	if u.Host == "" {
		return "", false
	}
	for _, c := range u.Host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			return "", false
		}
	}
	return scheme + "://" + u.Host, true
}

// Fault records a failed backend call that is the edge's own fault (auth
// not reached), for the access log's ERROR line.
func (p *Kit) Fault(r *http.Request, err error) {
	if p.edge.Fault != nil && apierr.IsFault(err) && apierr.OriginatedHere(err) {
		p.edge.Fault(r, err)
	}
}

// Render writes a view with status code.
func (p *Kit) Render(w http.ResponseWriter, r *http.Request, code int, v *View) {
	p.render(w, r, code, v)
}

// Fail answers a failed backend call with the error page of its kind.
func (p *Kit) Fail(w http.ResponseWriter, r *http.Request, err error) { p.fail(w, r, err) }

// FailKind answers with the error page of k and its default text.
func (p *Kit) FailKind(w http.ResponseWriter, r *http.Request, k apierr.Kind) { p.failKind(w, r, k) }

// ErrorPage answers with an error page of the given texts.
func (p *Kit) ErrorPage(w http.ResponseWriter, r *http.Request, k apierr.Kind, code int, title, msg, hint string) {
	p.errorPage(w, r, k, code, title, msg, hint)
}

// FormToken returns the sign-in form token for bind held in the cookie
// name (when still valid, so that every open form stays valid) or a new one,
// and sets the cookie on path.
func (p *Kit) FormToken(w http.ResponseWriter, r *http.Request, name, path, bind string) string {
	token := ""
	if c, err := r.Cookie(name); err == nil && p.forms.valid(c.Value, bind) {
		token = c.Value
	} else {
		token = p.forms.mint(bind)
	}
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: token, Path: path,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: p.edge.Secure(r),
	})
	return token
}

// FormTokenValid reports whether the posted csrf_token equals the cookie
// name and was minted by a gateway for bind.
func (p *Kit) FormTokenValid(r *http.Request, name, bind string) bool {
	c, err := r.Cookie(name)
	return err == nil && c.Value != "" && secret.Equal(c.Value, r.PostForm.Get("csrf_token")) && p.forms.valid(c.Value, bind)
}

// SetSession sets the web session cookie, exactly as the confirmation page
// does, so that one session serves every page.
func (p *Kit) SetSession(w http.ResponseWriter, r *http.Request, session string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: wire.SessionCookie, Value: session, Path: "/",
		MaxAge: maxAge, HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: p.edge.Secure(r),
	})
}

// ClearCookie removes the cookie name set on path.
func (p *Kit) ClearCookie(w http.ResponseWriter, r *http.Request, name, path string) {
	p.clearCookie(w, r, name, path)
}

// Call is the context of a backend call: the edge's metadata, plus the
// CSRF token for the calls that change something.
func (p *Kit) Call(r *http.Request, csrf string) context.Context { return p.call(r, csrf) }

// Note records the error kind of an answer for the access log.
func (p *Kit) Note(r *http.Request, k apierr.Kind) { p.note(r, k) }

// Metadata is the edge's gRPC metadata of r.
func (p *Kit) Metadata(r *http.Request) metadata.MD { return p.edge.Metadata(r) }

// SameOrigin is the origin check of every page POST (see sameOrigin).
func SameOrigin(r *http.Request) bool { return sameOrigin(r) }

// Sendable reports whether a backend call can carry the values (see
// sendable).
func Sendable(meta string, texts ...string) bool { return sendable(meta, texts...) }

// Details are the apierr details of a backend call's error.
func Details(err error) apierr.Details { return details(err) }

// MaxFormBytes bounds a posted form.
const MaxFormBytes = maxFormBytes

func (p *Kit) clearCookie(w http.ResponseWriter, r *http.Request, name, path string) {
	http.SetCookie(w, &http.Cookie{Name: name, Path: path, MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: p.edge.Secure(r)})
}

// call is the context of a backend call: the edge's metadata, plus the
// CSRF token for the calls that change something.
func (p *Kit) call(r *http.Request, csrf string) context.Context {
	md := p.edge.Metadata(r)
	if csrf != "" {
		md.Set(wire.CSRF, csrf)
	}
	return metadata.NewOutgoingContext(r.Context(), md)
}

func details(err error) apierr.Details { return apierr.FromStatus(status.Convert(err)) }

func (p *Kit) note(r *http.Request, k apierr.Kind) {
	if p.edge.Failed != nil {
		p.edge.Failed(r, k)
	}
}

// sendable reports whether the backend call can carry the values at all:
// protobuf strings must be UTF-8 and gRPC metadata (the CSRF token) printable
// ASCII. Otherwise the call fails inside the gRPC client, which would read
// as an internal error, while it is the client's mistake. Each text is
// checked alone: two invalid halves of a character would pass when joined.
func sendable(meta string, texts ...string) bool {
	for _, s := range texts {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for i := 0; i < len(meta); i++ {
		if meta[i] < 0x20 || meta[i] > 0x7e {
			return false
		}
	}
	return true
}
