package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/proto/wire"
)

// This file plays the person on the confirmation page without a browser: a
// Go HTTP client with a cookie jar that reads the page's HTML and submits its
// forms as a browser would (hidden fields included, same-origin Origin
// header). It relies only on the page's stable hooks (SPEC section 4):
// form#login with user_id / password, button#confirm, button#deny and
// #login-code.

// loginCodeFormat is a login code as the suite issues it: SPEC section 2's
// 10 characters of [a-z0-9], drawn from the alphabet without look-alikes
// (secret.LoginCode), so that a person never has to tell 0 from o.
var loginCodeFormat = regexp.MustCompile(fmt.Sprintf(`^[%s]{%d}$`, secret.LoginCode, secret.LoginCodeLen))

// pageClient is one person's browser, reduced to cookies and forms.
type pageClient struct {
	base string
	hc   *http.Client
}

func newPageClient(t testing.TB, base string) *pageClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &pageClient{base: base, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// webPage is a page as the person's client received it.
type webPage struct {
	Status int
	URL    *url.URL // after redirects
	Body   string
	Doc    *html.Node
}

// byID finds the element with the given id, or nil.
func (p webPage) byID(id string) *html.Node {
	return findNode(p.Doc, func(n *html.Node) bool { return attr(n, "id") == id })
}

// text is the page's visible text, whitespace collapsed.
func (p webPage) text() string {
	body := findNode(p.Doc, func(n *html.Node) bool { return n.DataAtom == atom.Body })
	if body == nil {
		body = p.Doc
	}
	return strings.Join(strings.Fields(textOf(body, " ")), " ")
}

// confirmationURL is where an app sends its user for a UCA.
func confirmationURL(base, uca string) string {
	return base + "/api/oauth/user_confirmation?uca=" + url.QueryEscape(uca)
}

// get opens a page.
func (c *pageClient) get(t testing.TB, rawURL string) webPage {
	t.Helper()
	req, err := http.NewRequest("GET", rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.send(t, req)
}

func (c *pageClient) send(t testing.TB, req *http.Request) webPage {
	t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("%s %s: not HTML: %v", req.Method, req.URL, err)
	}
	return webPage{Status: resp.StatusCode, URL: resp.Request.URL, Body: string(raw), Doc: doc}
}

// submit sends the form that holds the element (a form itself, or a button
// inside one) as a browser does: every named input with its value, fields
// overridden by set, the pressed button's own name=value, to the form's
// action resolved against the page. Redirects are followed (303 → GET).
func (c *pageClient) submit(t testing.TB, p webPage, el *html.Node, set url.Values) webPage {
	t.Helper()
	form := el
	for form != nil && form.DataAtom != atom.Form {
		form = form.Parent
	}
	if form == nil {
		t.Fatalf("no form around <%s id=%q> on %s:\n%s", el.Data, attr(el, "id"), p.URL, p.Body)
	}
	values := url.Values{}
	walk(form, func(n *html.Node) {
		name := attr(n, "name")
		if n.DataAtom != atom.Input || name == "" {
			return
		}
		switch strings.ToLower(attr(n, "type")) {
		case "submit", "button", "image", "reset", "file":
			return
		case "checkbox", "radio":
			if !hasAttr(n, "checked") {
				return
			}
		}
		values.Add(name, attr(n, "value"))
	})
	for k, v := range set {
		values[k] = v
	}
	if el.DataAtom == atom.Button && attr(el, "name") != "" {
		values.Set(attr(el, "name"), attr(el, "value"))
	}
	action, err := p.URL.Parse(attr(form, "action"))
	if err != nil {
		t.Fatalf("form action %q: %v", attr(form, "action"), err)
	}
	method := strings.ToUpper(attr(form, "method"))
	if method == "" {
		method = "GET"
	}
	var req *http.Request
	if method == "GET" {
		action.RawQuery = values.Encode()
		req, err = http.NewRequest("GET", action.String(), nil)
	} else {
		req, err = http.NewRequest(method, action.String(), strings.NewReader(values.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if err != nil {
		t.Fatal(err)
	}
	// A browser sends the page's origin with every POST of a form.
	req.Header.Set("Origin", p.URL.Scheme+"://"+p.URL.Host)
	req.Header.Set("Referer", p.URL.String())
	return c.send(t, req)
}

// signIn opens the UCA's page, expects the sign-in form and submits it; it
// returns the page that follows (confirm / deny when the credentials are
// right).
func (c *pageClient) signIn(t testing.TB, uca, userID, password string) webPage {
	t.Helper()
	p := c.get(t, confirmationURL(c.base, uca))
	if p.Status != 200 {
		t.Fatalf("confirmation page: status %d\n%s", p.Status, p.Body)
	}
	form := p.byID("login")
	if form == nil || form.DataAtom != atom.Form {
		t.Fatalf("no form#login on the page of a fresh UCA without a session:\n%s", p.Body)
	}
	return c.submit(t, p, form, url.Values{"user_id": {userID}, "password": {password}})
}

// press submits the form of button#<id> on the page.
func (c *pageClient) press(t testing.TB, p webPage, id string) webPage {
	t.Helper()
	b := p.byID(id)
	if b == nil || b.DataAtom != atom.Button {
		t.Fatalf("no button#%s on %s (status %d):\n%s", id, p.URL, p.Status, p.Body)
	}
	return c.submit(t, p, b, nil)
}

// confirm signs in on the UCA's page, confirms, and returns the login code
// the page shows in #login-code.
func (c *pageClient) confirm(t testing.TB, uca, userID, password string) string {
	t.Helper()
	p := c.press(t, c.signIn(t, uca, userID, password), "confirm")
	if p.Status != 200 {
		t.Fatalf("after confirm: status %d\n%s", p.Status, p.Body)
	}
	el := p.byID("login-code")
	if el == nil {
		t.Fatalf("no #login-code after confirm:\n%s", p.Body)
	}
	return strings.TrimSpace(textOf(el, ""))
}

// session is the person's moreid_session cookie (HttpOnly: the page's
// scripts cannot read it, but the person's client holds it).
func (c *pageClient) session(t testing.TB) string {
	t.Helper()
	u, err := url.Parse(c.base)
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == wire.SessionCookie {
			return ck.Value
		}
	}
	t.Fatal("no moreid_session cookie after signing in")
	return ""
}

// startSafeLogin runs authorize and ucaoncecode and returns the state and the
// UCA.
func (c *apiClient) startSafeLogin(t testing.TB) (state, uca string) {
	t.Helper()
	state = c.authorize(t)
	a := c.do(t, "POST", "/api/oauth/ucaoncecode", map[string]string{"state": state})
	if a.Status != 200 || a.str("ucaoncecode") == "" {
		t.Fatalf("ucaoncecode: %d %s", a.Status, a.Raw)
	}
	return state, a.str("ucaoncecode")
}

// safeLoginCode runs a safe login up to the code the person reads off the
// page (through a fresh page client, signing in on the way), and returns the
// state and that login code.
func (c *apiClient) safeLoginCode(t testing.TB, userID, password string) (state, loginCode string) {
	t.Helper()
	state, uca := c.startSafeLogin(t)
	return state, newPageClient(t, c.base).confirm(t, uca, userID, password)
}

func walk(n *html.Node, fn func(*html.Node)) {
	if n == nil {
		return
	}
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func findNode(n *html.Node, match func(*html.Node) bool) *html.Node {
	var found *html.Node
	walk(n, func(n *html.Node) {
		if found == nil && n.Type == html.ElementNode && match(n) {
			found = n
		}
	})
	return found
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

// textOf is the text inside n, without scripts and styles, its text nodes
// joined with sep.
func textOf(n *html.Node, sep string) string {
	var b strings.Builder
	var rec func(*html.Node)
	rec = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.DataAtom == atom.Script || n.DataAtom == atom.Style) {
			return
		}
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteString(sep)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			rec(c)
		}
	}
	rec(n)
	return b.String()
}
