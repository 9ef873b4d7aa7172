package oidc

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/moreline/moreid/proto/wire"
)

// signedIn is a browser holding the web session cookie sess.
func (r *rig) signedIn(t *testing.T, sess string) *http.Client {
	t.Helper()
	br := r.browser(t)
	u, err := url.Parse(r.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	br.Jar.SetCookies(u, []*http.Cookie{{Name: wire.SessionCookie, Value: sess, Path: "/"}})
	return br
}

func clearsSession(a answer) bool {
	for _, sc := range a.header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, wire.SessionCookie+"=;") && strings.Contains(sc, "Max-Age=0") {
			return true
		}
	}
	return false
}

// TestEndSessionAsksWithoutAHint: a logout request that does not prove
// itself with an id_token_hint only shows the confirmation page; nothing
// ends until the person confirms on it.
func TestEndSessionAsksWithoutAHint(t *testing.T) {
	cases := []struct {
		name   string
		params url.Values
		app    string
		fields map[string]string
		target string // form-action must admit its origin
	}{
		{"nothing", url.Values{}, "", nil, ""},
		{"client and post-logout URI", url.Values{"client_id": {confID}, "post_logout_redirect_uri": {confLogout}, "state": {"s1"}},
			"Example App", map[string]string{"client_id": confID, "post_logout_redirect_uri": confLogout, "state": "s1"}, "https://app.example"},
		{"client only", url.Values{"client_id": {confID}}, "Example App", map[string]string{"client_id": confID}, ""},
		{"unknown client without URI", url.Values{"client_id": {"mlc_gone"}}, "", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rg := newRig(t)
			for _, method := range []string{"GET", "POST"} {
				br := rg.signedIn(t, session)
				var a answer
				if method == "GET" {
					a = do(t, br, "GET", rg.srv.URL+EndSessionPath+"?"+c.params.Encode(), nil, nil)
				} else {
					// A relying party's own logout POST carries no action: it
					// asks like a GET.
					a = do(t, br, "POST", rg.srv.URL+EndSessionPath, c.params, map[string]string{"Sec-Fetch-Site": "cross-site"})
				}
				if a.status != 200 || a.header.Get("Location") != "" || clearsSession(a) {
					t.Fatalf("%s: %d %q %v", method, a.status, a.header.Get("Location"), a.header.Values("Set-Cookie"))
				}
				for _, want := range []string{`data-view="logout_confirm"`, "确定要退出 MoreLine 登录吗？", `id="confirm"`, `id="deny"`, `name="csrf_token"`} {
					if !strings.Contains(a.body, want) {
						t.Fatalf("%s: no %s in %s", method, want, a.body)
					}
				}
				if hidden(t, a.body, "csrf_token") == "" {
					t.Fatal("empty CSRF token")
				}
				if named := strings.Contains(a.body, `id="app-name"`); named != (c.app != "") || !strings.Contains(a.body, c.app) {
					t.Fatalf("app name %q shown %v", c.app, named)
				}
				for _, name := range []string{"client_id", "post_logout_redirect_uri", "state"} {
					if want, ok := c.fields[name]; ok {
						if got := hidden(t, a.body, name); got != want {
							t.Fatalf("%s = %q, want %q", name, got, want)
						}
					} else if strings.Contains(a.body, `name="`+name+`"`) {
						t.Fatalf("unexpected field %s", name)
					}
				}
				checkPageHeaders(t, a)
				if c.target != "" && !strings.Contains(a.header.Get("Content-Security-Policy"), "form-action 'self' "+c.target) {
					t.Fatalf("CSP %q", a.header.Get("Content-Security-Policy"))
				}
			}
			if n := rg.auth.count("EndSession"); n != 0 {
				t.Fatalf("EndSession called %d times", n)
			}
		})
	}
}

// TestEndSessionConfirmation: the confirmation's answer needs the page's
// origin and the form token of this very session; confirm ends the session
// and goes on, deny never ends it and never redirects.
func TestEndSessionConfirmation(t *testing.T) {
	params := url.Values{"client_id": {confID}, "post_logout_redirect_uri": {confLogout}, "state": {"s1"}}
	sameSite := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "null"}
	cases := []struct {
		name     string
		action   string
		token    func(good, other string) string
		cookie   func(good, other string) string // the logout form cookie the browser holds
		headers  map[string]string
		status   int
		location string
		ended    bool
		view     string
	}{
		{"confirm", "confirm", pickGood, pickGood, sameSite, 303, confLogout + "?state=s1", true, ""},
		{"confirm without origin headers", "confirm", pickGood, pickGood, nil, 303, confLogout + "?state=s1", true, ""},
		{"confirm without token", "confirm", func(string, string) string { return "" }, pickGood, sameSite, 403, "", false, "error"},
		{"confirm with a forged token", "confirm", func(g, _ string) string { return g[:len(g)-4] + "AAAA" }, pickGood, sameSite, 403, "", false, "error"},
		{"confirm with another session's pair", "confirm", pickOther, pickOther, sameSite, 403, "", false, "error"},
		{"confirm cross-site", "confirm", pickGood, pickGood, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "", false, "error"},
		{"confirm from a foreign origin", "confirm", pickGood, pickGood, map[string]string{"Origin": "https://evil.example"}, 403, "", false, "error"},
		{"deny", "deny", pickGood, pickGood, sameSite, 200, "", false, "logout_cancelled"},
		{"deny without token", "deny", func(string, string) string { return "" }, pickGood, sameSite, 403, "", false, "error"},
		{"unknown action", "maybe", pickGood, pickGood, sameSite, 400, "", false, "error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rg := newRig(t)
			// The other session's pair is what an attacker gets for their
			// own session.
			other := rg.signedIn(t, "sess_attacker")
			otherToken := hidden(t, mustGet(t, other, rg.srv.URL+EndSessionPath), "csrf_token")

			br := rg.signedIn(t, session)
			body := mustGet(t, br, rg.srv.URL+EndSessionPath+"?"+params.Encode())
			good := hidden(t, body, "csrf_token")
			u, _ := url.Parse(rg.srv.URL + EndSessionPath)
			br.Jar.SetCookies(u, []*http.Cookie{{Name: logoutCookie, Value: c.cookie(good, otherToken), Path: EndSessionPath}})

			form := url.Values{"action": {c.action}}
			for _, name := range []string{"client_id", "post_logout_redirect_uri", "state"} {
				form.Set(name, hidden(t, body, name))
			}
			if tok := c.token(good, otherToken); tok != "" {
				form.Set("csrf_token", tok)
			}
			a := do(t, br, "POST", rg.srv.URL+EndSessionPath, form, c.headers)
			if a.status != c.status || a.header.Get("Location") != c.location {
				t.Fatalf("%d %q: %s", a.status, a.header.Get("Location"), a.body)
			}
			if c.view != "" && !strings.Contains(a.body, `data-view="`+c.view+`"`) {
				t.Fatalf("not the %s view: %s", c.view, a.body)
			}
			if ended := rg.auth.count("EndSession") > 0; ended != c.ended {
				t.Fatalf("session ended %v", ended)
			}
			if clearsSession(a) != c.ended {
				t.Fatalf("cookie cleared %v: %v", clearsSession(a), a.header.Values("Set-Cookie"))
			}
			if c.ended && first(rg.auth.lastMD("EndSession"), wire.Session) != session {
				t.Fatal("EndSession did not get the session")
			}
			checkPageHeaders(t, a)
		})
	}
}

func pickGood(good, _ string) string   { return good }
func pickOther(_, other string) string { return other }

// TestEndSessionConfirmationKeepsTheTargetChecked: the confirm post is
// checked like the request itself, so a tampered hidden field cannot turn
// it into an open redirect.
func TestEndSessionConfirmationKeepsTheTargetChecked(t *testing.T) {
	cases := []struct {
		name   string
		form   url.Values
		status int
	}{
		{"unregistered URI", url.Values{"client_id": {confID}, "post_logout_redirect_uri": {"https://evil.example/"}}, 400},
		{"URI without client", url.Values{"post_logout_redirect_uri": {confLogout}}, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rg := newRig(t)
			br := rg.signedIn(t, session)
			c.form.Set("csrf_token", hidden(t, mustGet(t, br, rg.srv.URL+EndSessionPath), "csrf_token"))
			c.form.Set("action", "confirm")
			a := do(t, br, "POST", rg.srv.URL+EndSessionPath, c.form, map[string]string{"Sec-Fetch-Site": "same-origin"})
			if a.status != c.status || a.header.Get("Location") != "" {
				t.Fatalf("%d %q", a.status, a.header.Get("Location"))
			}
			if n := rg.auth.count("EndSession"); n != 0 {
				t.Fatalf("EndSession called %d times", n)
			}
		})
	}
}
