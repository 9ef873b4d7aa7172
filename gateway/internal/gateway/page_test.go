package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"google.golang.org/grpc"

	"github.com/moreline/moreid/gateway/internal/page"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/grpcx/grpctest"
	"github.com/moreline/moreid/platform/ipset"
	"github.com/moreline/moreid/proto/wire"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so that a test sees every answer (and its Set-Cookie).
type browser struct {
	t    *testing.T
	srv  *httptest.Server
	c    *http.Client
	base *url.URL
}

func newBrowser(t *testing.T, srv *httptest.Server) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	// A copy: srv.Client() is shared by every caller.
	c := *srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	base, _ := url.Parse(srv.URL + "/")
	return &browser{t: t, srv: srv, c: &c, base: base}
}

// htmlPage is one answer of the confirmation page.
type htmlPage struct {
	status int
	header http.Header
	body   string
	doc    *html.Node
}

func (b *browser) do(req *http.Request) htmlPage {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	p := htmlPage{status: res.StatusCode, header: res.Header, body: string(raw)}
	if res.StatusCode == http.StatusSeeOther {
		return p
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		b.t.Fatalf("%s %s: Content-Type %q: %s", req.Method, req.URL, ct, raw)
	}
	if p.doc, err = html.Parse(strings.NewReader(p.body)); err != nil {
		b.t.Fatal(err)
	}
	return p
}

func (b *browser) get(uca string) htmlPage {
	b.t.Helper()
	target := page.Path
	if uca != "" {
		target += "?uca=" + url.QueryEscape(uca)
	}
	req, err := http.NewRequest("GET", b.srv.URL+target, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post submits a form as a browser would, with this site's Origin unless
// headers say otherwise ("" removes a header).
func (b *browser) post(form url.Values, headers map[string]string) htmlPage {
	b.t.Helper()
	req, err := http.NewRequest("POST", b.srv.URL+page.Path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.srv.URL)
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return b.do(req)
}

// submit posts the form of the page that holds element id (a form or a
// button), with its hidden fields and extra values.
func (b *browser) submit(p htmlPage, id string, extra url.Values) htmlPage {
	b.t.Helper()
	form := ancestorForm(p.mustID(b.t, id))
	if form == nil {
		b.t.Fatalf("#%s is in no form", id)
	}
	values := url.Values{}
	for _, in := range findAll(form, func(n *html.Node) bool { return n.Data == "input" && attr(n, "type") == "hidden" }) {
		values.Set(attr(in, "name"), attr(in, "value"))
	}
	for k, v := range extra {
		values[k] = v
	}
	return b.post(values, nil)
}

func (b *browser) cookie(name string) string {
	for _, c := range b.c.Jar.Cookies(b.pageURL()) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) pageURL() *url.URL {
	u, _ := url.Parse(b.srv.URL + page.Path)
	return u
}

func (p htmlPage) byID(id string) *html.Node {
	found := findAll(p.doc, func(n *html.Node) bool { return attr(n, "id") == id })
	if len(found) == 0 {
		return nil
	}
	return found[0]
}

func (p htmlPage) mustID(t *testing.T, id string) *html.Node {
	t.Helper()
	n := p.byID(id)
	if n == nil {
		t.Fatalf("no #%s in page (status %d):\n%s", id, p.status, p.body)
	}
	return n
}

func (p htmlPage) setCookie(name string) *http.Cookie {
	for _, line := range p.header.Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(line); err == nil && c.Name == name {
			return c
		}
	}
	return nil
}

func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func ancestorForm(n *html.Node) *html.Node {
	for ; n != nil; n = n.Parent {
		if n.Type == html.ElementNode && n.Data == "form" {
			return n
		}
	}
	return nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var sb strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			sb.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(sb.String())
}

// assertPageBasics holds for every answer of the page: the security headers,
// inline code admitted only by its hash, and no external reference.
func assertPageBasics(t *testing.T, p htmlPage) {
	t.Helper()
	csp := p.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "form-action 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	for _, bad := range []string{"http:", "https:", "'unsafe-inline'", "*"} {
		if strings.Contains(csp, bad) {
			t.Errorf("Content-Security-Policy %q admits %q", csp, bad)
		}
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
		if got := p.header.Get(h); got != want {
			t.Errorf("%s %q, want %q", h, got, want)
		}
	}
	if p.doc == nil {
		return
	}
	for _, tag := range []string{"style", "script"} {
		for _, n := range findAll(p.doc, func(n *html.Node) bool { return n.Data == tag }) {
			sum := sha256.Sum256([]byte(text0(n)))
			h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
			if !strings.Contains(csp, tag+"-src "+h) {
				t.Errorf("inline <%s> (hash %s) not admitted by %q", tag, h, csp)
			}
		}
	}
	if strings.Contains(p.body, "http://") || strings.Contains(p.body, "https://") || strings.Contains(p.body, "//cdn") {
		t.Errorf("page references an external URL:\n%s", p.body)
	}
	if attr(findAll(p.doc, func(n *html.Node) bool { return n.Data == "html" })[0], "lang") != "zh-CN" {
		t.Error("page is not marked zh-CN")
	}
	if len(findAll(p.doc, func(n *html.Node) bool { return n.Data == "meta" && attr(n, "name") == "viewport" })) != 1 {
		t.Error("no viewport meta")
	}
}

// text0 is an element's raw text, untrimmed (what a CSP hash covers).
func text0(n *html.Node) string {
	if n.FirstChild == nil {
		return ""
	}
	return n.FirstChild.Data
}

func TestPageFlow(t *testing.T) {
	b := startBackend(t)
	srv := startGateway(t, b.conn, nil, discard())
	br := newBrowser(t, srv)
	const uca = "uca_flow000000000"

	signin := br.get(uca)
	assertPageBasics(t, signin)
	if signin.status != 200 {
		t.Fatalf("sign-in page status %d", signin.status)
	}
	form := signin.mustID(t, "login")
	if attr(form, "method") != "post" {
		t.Fatalf("form#login method %q", attr(form, "method"))
	}
	inputs := map[string]string{}
	for _, in := range findAll(form, func(n *html.Node) bool { return n.Data == "input" }) {
		inputs[attr(in, "name")] = attr(in, "type")
	}
	if inputs["user_id"] != "text" || inputs["password"] != "password" {
		t.Fatalf("form#login inputs %v", inputs)
	}
	if got := text(signin.mustID(t, "app-name")); got != appName {
		t.Fatalf("app name %q, want %q", got, appName)
	}
	if !strings.Contains(signin.body, "9:00") {
		t.Error("sign-in page does not show the time left (540 s)")
	}
	csrf := signin.setCookie("moreid_csrf")
	if csrf == nil || !csrf.HttpOnly || csrf.SameSite != http.SameSiteLaxMode || csrf.Secure {
		t.Fatalf("moreid_csrf cookie %+v, want HttpOnly, SameSite=Lax, not Secure over plain HTTP", csrf)
	}
	if _, md := b.confirm.last(); first(md, wire.ClientIP) != "127.0.0.1" || first(md, "x-request-id") == "" {
		t.Fatalf("GetConfirmation metadata %v lacks client IP or request id", md)
	}

	t.Run("wrong password shows the form again", func(t *testing.T) {
		p := br.submit(signin, "login", url.Values{"user_id": {"alice"}, "password": {"wrong"}})
		assertPageBasics(t, p)
		if p.status != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", p.status)
		}
		p.mustID(t, "login")
		if got := text(p.mustID(t, "error-message")); got != "用户ID或密码错误" {
			t.Fatalf("error message %q", got)
		}
		if p.setCookie(wire.SessionCookie) != nil || br.cookie(wire.SessionCookie) != "" {
			t.Fatal("a failed sign-in set a session")
		}
		if got := attr(p.mustID(t, "user_id"), "value"); got != "alice" {
			t.Fatalf("user_id not kept: %q", got)
		}
	})

	t.Run("rate limited sign-in", func(t *testing.T) {
		p := br.submit(signin, "login", url.Values{"user_id": {"throttled"}, "password": {"x"}})
		if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") != "60" {
			t.Fatalf("status %d Retry-After %q", p.status, p.header.Get("Retry-After"))
		}
		p.mustID(t, "login")
	})

	p := br.submit(signin, "login", url.Values{"user_id": {"alice"}, "password": {alicePass}})
	assertPageBasics(t, p)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != page.Path+"?uca="+uca {
		t.Fatalf("sign-in answered %d Location %q, want 303 to the page", p.status, p.header.Get("Location"))
	}
	sess := p.setCookie(wire.SessionCookie)
	if sess == nil || sess.Value != aliceSession || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode ||
		sess.Path != "/" || sess.MaxAge != 86400 || sess.Secure {
		t.Fatalf("moreid_session cookie %+v", sess)
	}
	if _, md := b.confirm.last(); first(md, wire.Session) != "" {
		t.Fatal("SignIn got a session it did not need")
	}

	confirm := br.get(uca)
	assertPageBasics(t, confirm)
	if confirm.status != 200 {
		t.Fatalf("confirm page status %d", confirm.status)
	}
	for _, id := range []string{"confirm", "deny"} {
		if n := confirm.mustID(t, id); n.Data != "button" {
			t.Fatalf("#%s is a <%s>", id, n.Data)
		}
	}
	if got := text(confirm.mustID(t, "app-name")); got != appName {
		t.Fatalf("app name %q", got)
	}
	if !strings.Contains(text(confirm.mustID(t, "signed-in")), "alice") {
		t.Fatal("confirm page does not say who is signed in")
	}
	if _, md := b.confirm.last(); first(md, wire.Session) != aliceSession {
		t.Fatalf("GetConfirmation did not get the session cookie: %v", md)
	}

	code := br.submit(confirm, "confirm", nil)
	assertPageBasics(t, code)
	if code.status != 200 {
		t.Fatalf("confirm answered %d:\n%s", code.status, code.body)
	}
	if got := text(code.mustID(t, "login-code")); got != loginCode {
		t.Fatalf("#login-code %q, want %q", got, loginCode)
	}
	code.mustID(t, "copy")
	if timers := findAll(code.doc, func(n *html.Node) bool { return attr(n, "data-expires-in") == "300" }); len(timers) != 1 {
		t.Fatal("no countdown of the code's 300 s")
	}
	method, md := b.confirm.last()
	if method != "GenerateLoginCode" || first(md, wire.CSRF) != wire.CSRFToken(aliceSession) || first(md, wire.Session) != aliceSession {
		t.Fatalf("%s with metadata %v", method, md)
	}

	t.Run("the UCA is spent", func(t *testing.T) {
		if p := br.get(uca); p.status != http.StatusConflict {
			t.Fatalf("status %d, want 409", p.status)
		}
		if p := br.submit(confirm, "confirm", nil); p.status != http.StatusConflict || p.byID("login-code") != nil {
			t.Fatalf("second confirm: status %d", p.status)
		}
	})

	t.Run("deny", func(t *testing.T) {
		const other = "uca_deny000000000"
		p := br.get(other)
		denied := br.submit(p, "deny", nil)
		assertPageBasics(t, denied)
		if denied.status != 200 || denied.byID("login-code") != nil {
			t.Fatalf("deny answered %d:\n%s", denied.status, denied.body)
		}
		if !strings.Contains(text(denied.mustID(t, "denied-message")), "拒绝") {
			t.Fatal("deny page does not say the request was refused")
		}
		if method, _ := b.confirm.last(); method != "DenyConfirmation" {
			t.Fatalf("deny ran %s", method)
		}
		if p := br.submit(p, "confirm", nil); p.status != http.StatusConflict || p.byID("login-code") != nil {
			t.Fatalf("confirm after deny: status %d", p.status)
		}
	})

	t.Run("expired session on confirm leads to the sign-in form", func(t *testing.T) {
		const other = "uca_expired000000"
		p := br.get(other)
		br.c.Jar.SetCookies(br.base, []*http.Cookie{{Name: wire.SessionCookie, Value: "sess_expired", Path: "/"}})
		again := br.submit(p, "confirm", nil)
		assertPageBasics(t, again)
		if again.status != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", again.status)
		}
		again.mustID(t, "login")
		if c := again.setCookie(wire.SessionCookie); c == nil || c.MaxAge >= 0 {
			t.Fatalf("dead session cookie not cleared: %+v", c)
		}
	})
}

func TestPageErrors(t *testing.T) {
	b := startBackend(t)
	srv := startGateway(t, b.conn, nil, discard())
	tests := []struct {
		name    string
		method  string
		target  string
		status  int
		message string
	}{
		{name: "missing uca", method: "GET", target: page.Path, status: 400, message: "链接中缺少确认码（uca）。"},
		{name: "empty uca", method: "GET", target: page.Path + "?uca=", status: 400, message: "链接中缺少确认码（uca）。"},
		{name: "used UCA", method: "GET", target: page.Path + "?uca=uca_used", status: 409, message: "该确认请求不存在、已过期、已被使用或已被拒绝。"},
		{name: "unknown UCA", method: "GET", target: page.Path + "?uca=nonsense", status: 409, message: "该确认请求不存在、已过期、已被使用或已被拒绝。"},
		{name: "auth unavailable", method: "GET", target: page.Path + "?uca=uca_down", status: 503, message: "服务暂时不可用，请稍后再试"},
		{name: "wrong method", method: "PUT", target: page.Path, status: 405, message: "请求方法不允许"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.target, nil)
			p := newBrowser(t, srv).do(req)
			assertPageBasics(t, p)
			if p.status != tt.status {
				t.Fatalf("status %d, want %d", p.status, tt.status)
			}
			if got := text(p.mustID(t, "error-message")); got != tt.message {
				t.Fatalf("message %q, want %q", got, tt.message)
			}
			if strings.Contains(p.body, "10.9.8.7") {
				t.Fatal("page reveals internals")
			}
		})
	}

	t.Run("backend unreachable", func(t *testing.T) {
		dead := startGateway(t, grpctest.Dial(t, closedAddr(t)), nil, discard())
		p := newBrowser(t, dead).get("uca_anything")
		if p.status != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", p.status)
		}
	})
}

// closedAddr returns a loopback address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	return addr
}

func TestPageCSRF(t *testing.T) {
	b := startBackend(t)
	srv := startGateway(t, b.conn, nil, discard())
	login := func(br *browser, uca string) url.Values {
		p := br.get(uca)
		return url.Values{"action": {"login"}, "uca": {uca}, "csrf_token": {attr(findAll(p.mustID(t, "login"),
			func(n *html.Node) bool { return attr(n, "name") == "csrf_token" })[0], "value")},
			"user_id": {"alice"}, "password": {alicePass}}
	}
	tests := []struct {
		name  string
		setup func(br *browser) url.Values
	}{
		{name: "login without the csrf cookie", setup: func(br *browser) url.Values {
			form := login(br, "uca_csrf1")
			br.c.Jar, _ = cookiejar.New(nil)
			return form
		}},
		{name: "login with a wrong csrf cookie", setup: func(br *browser) url.Values {
			form := login(br, "uca_csrf2")
			br.c.Jar.SetCookies(br.pageURL(), []*http.Cookie{{Name: "moreid_csrf", Value: strings.Repeat("A", 32), Path: page.Path}})
			return form
		}},
		{name: "login with a wrong csrf field", setup: func(br *browser) url.Values {
			form := login(br, "uca_csrf3")
			form.Set("csrf_token", strings.Repeat("B", 32))
			return form
		}},
		// Finding 12 of issue 11: whoever can plant a cookie (a sibling
		// subdomain, a plain-HTTP hop) chooses both halves of an unsigned
		// pair.
		{name: "login with an attacker-chosen cookie and field", setup: func(br *browser) url.Values {
			form := login(br, "uca_csrf7")
			forged := strings.Repeat("C", 32)
			br.c.Jar.SetCookies(br.pageURL(), []*http.Cookie{{Name: "moreid_csrf", Value: forged, Path: page.Path}})
			form.Set("csrf_token", forged)
			return form
		}},
		{name: "login with a pair in the signed shape but a made-up signature", setup: func(br *browser) url.Values {
			form := login(br, "uca_csrf8")
			forged := strings.Repeat("n", 22) + "." + strings.Repeat("A", 43)
			br.c.Jar.SetCookies(br.pageURL(), []*http.Cookie{{Name: "moreid_csrf", Value: forged, Path: page.Path}})
			form.Set("csrf_token", forged)
			return form
		}},
		{name: "login with a pair signed by another key", setup: func(br *browser) url.Values {
			form := login(br, "uca_csrf9")
			forged := formToken([]byte(strings.Repeat("k", 32)), "uca_csrf9", strings.Repeat("n", 22))
			br.c.Jar.SetCookies(br.pageURL(), []*http.Cookie{{Name: "moreid_csrf", Value: forged, Path: page.Path}})
			form.Set("csrf_token", forged)
			return form
		}},
		{name: "login with a pair the gateway minted for another UCA", setup: func(br *browser) url.Values {
			theirs := login(br, "uca_csrf10") // e.g. the attacker's own request
			form := url.Values{"action": {"login"}, "uca": {"uca_csrf11"}, "csrf_token": theirs["csrf_token"],
				"user_id": {"alice"}, "password": {alicePass}}
			return form
		}},
		{name: "login without a csrf field", setup: func(br *browser) url.Values {
			form := login(br, "uca_csrf4")
			form.Del("csrf_token")
			return form
		}},
		{name: "confirm with a wrong token", setup: func(br *browser) url.Values {
			br.c.Jar.SetCookies(br.base, []*http.Cookie{{Name: wire.SessionCookie, Value: aliceSession, Path: "/"}})
			return url.Values{"action": {"confirm"}, "uca": {"uca_csrf5"}, "csrf_token": {"wrong"}}
		}},
		{name: "deny without a token", setup: func(br *browser) url.Values {
			br.c.Jar.SetCookies(br.base, []*http.Cookie{{Name: wire.SessionCookie, Value: aliceSession, Path: "/"}})
			return url.Values{"action": {"deny"}, "uca": {"uca_csrf6"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := newBrowser(t, srv)
			p := br.post(tt.setup(br), nil)
			assertPageBasics(t, p)
			if p.status != http.StatusForbidden {
				t.Fatalf("status %d, want 403:\n%s", p.status, p.body)
			}
			if p.setCookie(wire.SessionCookie) != nil || p.byID("login-code") != nil {
				t.Fatal("a forged form had an effect")
			}
			if got := text(p.mustID(t, "error-message")); got != "页面已过期，请刷新后重试" {
				t.Fatalf("message %q", got)
			}
		})
	}
}

// TestPageCSRFAcrossReplicas: gateways sharing MOREID_CSRF_KEY accept each
// other's sign-in forms (a load balancer may send the GET to one and the
// POST to another).
func TestPageCSRFAcrossReplicas(t *testing.T) {
	b := startBackend(t)
	first := startGateway(t, b.conn, nil, discard())
	second := startGateway(t, b.conn, nil, discard())
	br := newBrowser(t, first)
	form := ancestorForm(br.get("uca_replicas").mustID(t, "login"))
	values := url.Values{"user_id": {"alice"}, "password": {alicePass}}
	for _, in := range findAll(form, func(n *html.Node) bool { return n.Data == "input" && attr(n, "type") == "hidden" }) {
		values.Set(attr(in, "name"), attr(in, "value"))
	}
	br.srv = second // the jar holds 127.0.0.1's cookies whatever the port
	if p := br.post(values, map[string]string{"Origin": second.URL}); p.status != http.StatusSeeOther {
		t.Fatalf("POST to the second replica: status %d, want 303:\n%s", p.status, p.body)
	}
}

// formToken signs a sign-in form token as the page does
// (docs/ARCHITECTURE.md): nonce "." base64url(HMAC-SHA256(key,
// "moreid-csrf-form\n" + uca + "\n" + nonce)).
func formToken(key []byte, uca, nonce string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("moreid-csrf-form\n" + uca + "\n" + nonce))
	return nonce + "." + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func TestPageSameOrigin(t *testing.T) {
	b := startBackend(t)
	srv := startGateway(t, b.conn, nil, discard())
	host := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name    string
		headers map[string]string
		ok      bool
	}{
		{name: "same Origin", headers: map[string]string{}, ok: true},
		{name: "no Origin nor Referer (not a browser)", headers: map[string]string{"Origin": ""}, ok: true},
		{name: "same-origin Referer", headers: map[string]string{"Origin": "", "Referer": srv.URL + page.Path}, ok: true},
		{name: "Origin null from the no-referrer page itself", headers: map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin"}, ok: true},
		{name: "foreign Origin", headers: map[string]string{"Origin": "http://evil.example"}},
		{name: "foreign Origin with our host as a port trick", headers: map[string]string{"Origin": "http://" + host + ".evil.example"}},
		{name: "foreign Referer", headers: map[string]string{"Origin": "", "Referer": "http://evil.example/x"}},
		{name: "Origin null from elsewhere", headers: map[string]string{"Origin": "null"}},
		{name: "Origin null cross-site", headers: map[string]string{"Origin": "null", "Sec-Fetch-Site": "cross-site"}},
		{name: "cross-site fetch without Origin", headers: map[string]string{"Origin": "", "Sec-Fetch-Site": "cross-site"}},
		{name: "same-site fetch", headers: map[string]string{"Sec-Fetch-Site": "same-site"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := newBrowser(t, srv)
			uca := "uca_origin" + string(rune('a'+i))
			br.get(uca) // only for the form's CSRF cookie
			form := url.Values{"action": {"login"}, "uca": {uca}, "user_id": {"alice"}, "password": {alicePass},
				"csrf_token": {br.cookie("moreid_csrf")}}
			p := br.post(form, tt.headers)
			if tt.ok {
				if p.status != http.StatusSeeOther {
					t.Fatalf("status %d, want 303:\n%s", p.status, p.body)
				}
				return
			}
			assertPageBasics(t, p)
			if p.status != http.StatusForbidden || p.setCookie(wire.SessionCookie) != nil {
				t.Fatalf("status %d, want 403 and no session", p.status)
			}
		})
	}
}

// TestPageSecureCookies: cookies are Secure exactly when the browser used
// HTTPS: TLS to us, or a trusted proxy saying so.
func TestPageSecureCookies(t *testing.T) {
	b := startBackend(t)
	loopback, err := ipset.ParseList("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		tls     bool
		trusted []netip.Prefix
		proto   string
		secure  bool
	}{
		{name: "TLS", tls: true, secure: true},
		{name: "plain HTTP", secure: false},
		{name: "trusted proxy terminated TLS", trusted: loopback, proto: "https", secure: true},
		{name: "trusted proxy over HTTP", trusted: loopback, proto: "http", secure: false},
		{name: "untrusted peer claims https", proto: "https", secure: false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startGatewayServer(t, b.conn, tt.trusted, tt.tls)
			br := newBrowser(t, srv)
			uca := "uca_secure" + string(rune('a'+i))
			headers := map[string]string{}
			if tt.proto != "" {
				headers["X-Forwarded-Proto"] = tt.proto
			}
			req, _ := http.NewRequest("GET", srv.URL+page.Path+"?uca="+uca, nil)
			for k, v := range headers {
				req.Header.Set(k, v)
			}
			p := br.do(req)
			csrf := p.setCookie("moreid_csrf")
			if csrf == nil || csrf.Secure != tt.secure {
				t.Fatalf("moreid_csrf %+v, want Secure=%v", csrf, tt.secure)
			}
			form := url.Values{"action": {"login"}, "uca": {uca}, "user_id": {"alice"}, "password": {alicePass}, "csrf_token": {csrf.Value}}
			req, _ = http.NewRequest("POST", srv.URL+page.Path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Cookie", "moreid_csrf="+csrf.Value)
			for k, v := range headers {
				req.Header.Set(k, v)
			}
			p = br.do(req)
			sess := p.setCookie(wire.SessionCookie)
			if p.status != http.StatusSeeOther || sess == nil || sess.Secure != tt.secure || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode {
				t.Fatalf("status %d, moreid_session %+v, want Secure=%v", p.status, sess, tt.secure)
			}
		})
	}
}

func startGatewayServer(t *testing.T, conn *grpc.ClientConn, trusted []netip.Prefix, tls bool) *httptest.Server {
	t.Helper()
	h, err := New(conn, trusted, testCSRFKey, discard(), nil, grpcx.ServiceProbe(healthpb.NewHealthClient(conn)))
	if err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv
}

// TestPageSecretsNotLogged: passwords, sessions, CSRF tokens, UCAs and
// login codes stay out of the access log.
func TestPageSecretsNotLogged(t *testing.T) {
	b := startBackend(t)
	var logs logBuffer
	srv := startGateway(t, b.conn, nil, newJSONLogger(&logs))
	br := newBrowser(t, srv)
	const uca = "uca_logsecret0000"
	p := br.get(uca)
	p = br.submit(p, "login", url.Values{"user_id": {"alice"}, "password": {alicePass}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("sign-in status %d", p.status)
	}
	code := br.submit(br.get(uca), "confirm", nil)
	if code.status != 200 {
		t.Fatalf("confirm status %d", code.status)
	}
	line := waitLogLine(t, &logs, page.Path)
	if line["status"] == nil {
		t.Fatalf("log line %v", line)
	}
	for _, s := range []string{alicePass, aliceSession, wire.CSRFToken(aliceSession), uca, loginCode} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("log contains secret %q", s)
		}
	}
}
