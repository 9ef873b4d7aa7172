package oidc

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/proto/wire"
)

const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" // S256 of the RFC 7636 example verifier

// TestDiscoveryAdvertisesOnlyWhatIsServed, at the OpenID Connect path and
// at RFC 8414's.
func TestDiscoveryAdvertisesOnlyWhatIsServed(t *testing.T) {
	for _, path := range []string{DiscoveryPath, ServerMetadataPath} {
		t.Run(path, func(t *testing.T) { checkDiscovery(t, path) })
	}
}

func checkDiscovery(t *testing.T, path string) {
	rg := newRig(t)
	a := do(t, http.DefaultClient, "GET", rg.srv.URL+path, nil, map[string]string{"Origin": "https://spa.example"})
	if a.status != 200 {
		t.Fatalf("status %d", a.status)
	}
	doc := a.json(t)
	want := map[string]any{
		"issuer":                        testIssuer,
		"authorization_endpoint":        testIssuer + "/oidc/authorize",
		"token_endpoint":                testIssuer + "/oidc/token",
		"userinfo_endpoint":             testIssuer + "/oidc/userinfo",
		"jwks_uri":                      testIssuer + "/oidc/jwks",
		"introspection_endpoint":        testIssuer + "/oidc/introspect",
		"revocation_endpoint":           testIssuer + "/oidc/revoke",
		"end_session_endpoint":          testIssuer + "/oidc/end_session",
		"device_authorization_endpoint": testIssuer + "/oidc/device_authorization",
		"authorization_response_iss_parameter_supported": true,
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}
	lists := map[string][]string{
		"response_types_supported":                      {"code"},
		"response_modes_supported":                      {"query"},
		"code_challenge_methods_supported":              {"S256"},
		"grant_types_supported":                         {"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"},
		"token_endpoint_auth_methods_supported":         {"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":    {"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post"},
		"id_token_signing_alg_values_supported":         {"RS256"},
	}
	for k, v := range lists {
		got, _ := json.Marshal(doc[k])
		exp, _ := json.Marshal(v)
		if string(got) != string(exp) {
			t.Errorf("%s = %s, want %s", k, got, exp)
		}
	}
	if a.header.Get("Access-Control-Allow-Origin") != "*" || a.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("CORS headers: %v", a.header)
	}
}

func TestCORSOnlyOnPublicEndpoints(t *testing.T) {
	rg := newRig(t)
	cases := []struct {
		path string
		cors bool
	}{
		{DiscoveryPath, true}, {ServerMetadataPath, true}, {JWKSPath, true}, {TokenPath, true}, {UserinfoPath, true},
		{IntrospectPath, false}, {RevokePath, false}, {DeviceAuthPath, false}, {AuthorizePath, false}, {LoginPath, false},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			a := do(t, http.DefaultClient, "OPTIONS", rg.srv.URL+c.path, nil,
				map[string]string{"Origin": "https://spa.example", "Access-Control-Request-Method": "POST"})
			if got := a.header.Get("Access-Control-Allow-Origin") == "*"; got != c.cors {
				t.Fatalf("allow-origin %q (status %d), want CORS %v", a.header.Get("Access-Control-Allow-Origin"), a.status, c.cors)
			}
			if a.header.Get("Access-Control-Allow-Credentials") != "" {
				t.Fatal("credentials allowed")
			}
		})
	}
	// A browser app must be able to read the refusals too, the edge's own
	// (before the library) and the library's.
	refusals := []struct {
		name, method, path string
		form               url.Values
		status             int
	}{
		{"edge: no client", "POST", TokenPath, url.Values{"grant_type": {"client_credentials"}}, 401},
		{"library: no code", "POST", TokenPath, url.Values{"grant_type": {"authorization_code"}, "client_id": {pubID}}, 400},
		{"edge: no token", "GET", UserinfoPath, nil, 401},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, http.DefaultClient, c.method, rg.srv.URL+c.path, c.form, map[string]string{"Origin": "https://spa.example"})
			if a.status != c.status || a.header.Get("Access-Control-Allow-Origin") != "*" || a.header.Get("Access-Control-Allow-Credentials") != "" {
				t.Fatalf("%d, allow-origin %q", a.status, a.header.Get("Access-Control-Allow-Origin"))
			}
		})
	}
}

// TestAuthorizeNeverRedirectsToAnUnknownPlace: without a known client and
// an exactly registered redirect_uri there is an error page and no
// Location.
func TestAuthorizeNeverRedirectsToAnUnknownPlace(t *testing.T) {
	rg := newRig(t)
	good := url.Values{"response_type": {"code"}, "scope": {"openid"}, "state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	with := func(kv ...string) string {
		v := url.Values{}
		for k, vs := range good {
			v[k] = vs
		}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return rg.srv.URL + AuthorizePath + "?" + v.Encode()
	}
	cases := []struct{ name, target string }{
		{"no client", with("redirect_uri", confRedirect)},
		{"unknown client", with("client_id", "mlc_nobody", "redirect_uri", confRedirect)},
		{"no redirect_uri", with("client_id", confID)},
		{"unregistered", with("client_id", confID, "redirect_uri", "https://evil.example/cb")},
		{"prefix only", with("client_id", confID, "redirect_uri", confRedirect+"&x=1")},
		{"other port, confidential", with("client_id", confLoopID, "redirect_uri", "http://127.0.0.1:7778/cb")},
		{"loopback, other path", with("client_id", pubID, "redirect_uri", "http://127.0.0.1:7778/other")},
		{"localhost, other port", with("client_id", pubID, "redirect_uri", "http://localhost:7778/cb")},
		{"trailing slash", with("client_id", pubID, "redirect_uri", pubRedirect+"/")},
		{"bad response_type with bad redirect", with("client_id", confID, "redirect_uri", "https://evil.example/cb", "response_type", "token")},
		{"repeated redirect_uri", with("client_id", confID, "redirect_uri", confRedirect) + "&redirect_uri=" + url.QueryEscape("https://evil.example/cb")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, rg.browser(t), "GET", c.target, nil, nil)
			if a.status != http.StatusBadRequest || a.header.Get("Location") != "" {
				t.Fatalf("status %d, Location %q", a.status, a.header.Get("Location"))
			}
			if !strings.Contains(a.body, `data-view="error"`) || !strings.Contains(a.body, "无法继续登录") {
				t.Fatalf("not the kit error page: %s", a.body)
			}
			checkPageHeaders(t, a)
		})
	}
	if n := rg.auth.count("CreateAuthRequest"); n != 0 {
		t.Fatalf("%d auth requests created", n)
	}
}

// checkDescription: an OAuth error_description is there and printable
// ASCII (RFC 6749 sections 4.1.2.1 and 5.2), never auth's Chinese message.
func checkDescription(t *testing.T, desc string) {
	t.Helper()
	if desc == "" {
		t.Error("no error_description")
	}
	for _, c := range desc {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			t.Errorf("error_description %q is not printable ASCII", desc)
			return
		}
	}
}

func checkPageHeaders(t *testing.T, a answer) {
	t.Helper()
	if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if a.header.Get("Cache-Control") != "no-store" || a.header.Get("X-Frame-Options") != "DENY" || a.header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers %v", a.header)
	}
}

// TestAuthorizeErrorsGoBackWithIss: once client and redirect_uri are good,
// errors go to the redirect URI with error, state and iss.
func TestAuthorizeErrorsGoBackWithIss(t *testing.T) {
	rg := newRig(t)
	cases := []struct {
		name   string
		client string
		params map[string]string
		code   string
	}{
		{"public loopback, any port", pubID, map[string]string{"response_type": "id_token", "redirect_uri": "http://127.0.0.1:51234/cb"}, "unsupported_response_type"},
		{"implicit", confID, map[string]string{"response_type": "id_token"}, "unsupported_response_type"},
		{"no response_type", confID, map[string]string{"response_type": ""}, "invalid_request"},
		{"plain PKCE", confID, map[string]string{"code_challenge_method": "plain", "code_challenge": challenge}, "invalid_request"},
		{"PKCE without method", confID, map[string]string{"code_challenge_method": "", "code_challenge": challenge}, "invalid_request"},
		{"method without challenge", confID, map[string]string{"code_challenge": ""}, "invalid_request"},
		{"public client without PKCE", pubID, map[string]string{"code_challenge": "", "code_challenge_method": ""}, "invalid_request"},
		{"no openid", confID, map[string]string{"scope": "profile"}, "invalid_scope"},
		{"only unknown scopes", confID, map[string]string{"scope": "admin write"}, "invalid_scope"},
		{"prompt none with login", confID, map[string]string{"prompt": "none login"}, "invalid_request"},
		{"prompt none with select_account", confID, map[string]string{"prompt": "none select_account"}, "invalid_request"},
		{"unknown prompt", confID, map[string]string{"prompt": "create"}, "invalid_request"},
		{"non-ASCII prompt", confID, map[string]string{"prompt": "创建\""}, "invalid_request"},
		{"bad max_age", confID, map[string]string{"max_age": "-1"}, "invalid_request"},
		{"fragment mode", confID, map[string]string{"response_mode": "fragment"}, "invalid_request"},
		{"request object", confID, map[string]string{"request": "eyJ"}, "request_not_supported"},
		{"prompt=none without session", confID, map[string]string{"prompt": "none"}, "login_required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			redirectURI := clients[c.client].GetRedirectUris()[0]
			if r, ok := c.params["redirect_uri"]; ok {
				redirectURI = r
			}
			v := url.Values{"client_id": {c.client}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"openid"},
				"state": {"st&ate"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
			for k, val := range c.params {
				if val == "" {
					v.Del(k)
				} else {
					v.Set(k, val)
				}
			}
			a := do(t, rg.browser(t), "GET", rg.srv.URL+AuthorizePath+"?"+v.Encode(), nil, nil)
			if a.status != http.StatusFound {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			loc, err := url.Parse(a.header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			q := loc.Query()
			base := *loc
			base.RawQuery = ""
			reg, _ := url.Parse(redirectURI)
			regQ := reg.Query()
			reg.RawQuery = ""
			if base.String() != reg.String() {
				t.Fatalf("redirected to %s", loc)
			}
			for k := range regQ {
				if q.Get(k) != regQ.Get(k) {
					t.Errorf("registered query %s lost", k)
				}
			}
			if q.Get("error") != c.code || q.Get("state") != "st&ate" || q.Get("iss") != testIssuer || q.Get("code") != "" {
				t.Fatalf("query %v", q)
			}
			checkDescription(t, q.Get("error_description"))
		})
	}
}

// TestAuthorizeIgnoresUnknownScopes: unknown scopes are dropped (OpenID
// Connect Core 3.1.2.1), the known ones reach auth.
func TestAuthorizeIgnoresUnknownScopes(t *testing.T) {
	cases := []struct {
		scope string
		want  []string
	}{
		{"openid admin", []string{"openid"}},
		{"admin openid email write:all", []string{"openid", "email"}},
		{"openid profile openid", []string{"openid", "profile"}},
	}
	for _, c := range cases {
		t.Run(c.scope, func(t *testing.T) {
			rg := newRig(t)
			v := url.Values{"client_id": {confID}, "redirect_uri": {confRedirect}, "response_type": {"code"}, "scope": {c.scope},
				"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
			a := do(t, rg.browser(t), "GET", rg.srv.URL+AuthorizePath+"?"+v.Encode(), nil, nil)
			loc := a.header.Get("Location")
			if a.status != http.StatusFound || !strings.HasPrefix(loc, LoginPath+"?id=") {
				t.Fatalf("%d %q", a.status, loc)
			}
			req := rg.auth.request(strings.TrimPrefix(loc, LoginPath+"?id="))
			if req == nil || !slices.Equal(req.GetScopes(), c.want) {
				t.Fatalf("scopes sent to auth %v, want %v", req.GetScopes(), c.want)
			}
		})
	}
}

// TestAuthorizePrompts: select_account is accepted and read as no prompt
// (one account per session); auth gets only the prompts it knows.
func TestAuthorizePrompts(t *testing.T) {
	cases := []struct {
		prompt string
		want   []string
	}{
		{"select_account", nil},
		{"select_account login", []string{"login"}},
		{"consent login", []string{"consent", "login"}},
	}
	for _, c := range cases {
		t.Run(c.prompt, func(t *testing.T) {
			rg := newRig(t)
			v := url.Values{"client_id": {confID}, "redirect_uri": {confRedirect}, "response_type": {"code"}, "scope": {"openid"},
				"prompt": {c.prompt}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
			a := do(t, rg.browser(t), "GET", rg.srv.URL+AuthorizePath+"?"+v.Encode(), nil, nil)
			loc := a.header.Get("Location")
			if a.status != http.StatusFound || !strings.HasPrefix(loc, LoginPath+"?id=") {
				t.Fatalf("%d %q", a.status, loc)
			}
			req := rg.auth.request(strings.TrimPrefix(loc, LoginPath+"?id="))
			if req == nil || !slices.Equal(req.GetPrompt(), c.want) {
				t.Fatalf("prompt sent to auth %q, want %q", req.GetPrompt(), c.want)
			}
		})
	}
}

// signIn walks a browser through authorize → login → (consent) and
// returns the final answer.
func TestAuthorizeCodeFlowThroughThePages(t *testing.T) {
	for _, deny := range []bool{false, true} {
		name := map[bool]string{false: "approve", true: "deny"}[deny]
		t.Run(name, func(t *testing.T) {
			rg := newRig(t)
			br := rg.browser(t)
			v := url.Values{"client_id": {confID}, "redirect_uri": {confRedirect}, "response_type": {"code"}, "scope": {"openid profile"},
				"state": {"xyz"}, "nonce": {"n-0S6"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
				"prompt": {"consent"}, "max_age": {"300"}, "login_hint": {"alice"}}
			a := do(t, br, "GET", rg.srv.URL+AuthorizePath+"?"+v.Encode(), nil, nil)
			if a.status != http.StatusFound || !strings.HasPrefix(a.header.Get("Location"), LoginPath+"?id=") {
				t.Fatalf("authorize: %d %q", a.status, a.header.Get("Location"))
			}
			id := strings.TrimPrefix(a.header.Get("Location"), LoginPath+"?id=")
			stored := rg.auth.request(id)
			if stored.GetCodeChallengeMethod() != "S256" || stored.GetNonce() != "n-0S6" || stored.GetMaxAge() != 300 ||
				!slices.Equal(stored.GetPrompt(), []string{"consent"}) || !slices.Equal(stored.GetScopes(), []string{"openid", "profile"}) {
				t.Fatalf("stored request %v", stored)
			}
			a = do(t, br, "GET", rg.srv.URL+LoginPath+"?id="+id, nil, nil)
			if a.status != 200 || !strings.Contains(a.body, `<form id="login"`) || !strings.Contains(a.body, "Example App") ||
				!strings.Contains(a.body, `value="alice"`) {
				t.Fatalf("login page %d: %s", a.status, a.body)
			}
			checkPageHeaders(t, a)
			// The sign-in may be answered with the redirect to the client,
			// which form-action must admit.
			if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://app.example;") {
				t.Fatalf("login CSP %q", csp)
			}
			csrf := hidden(t, a.body, "csrf_token")
			form := url.Values{"id": {id}, "csrf_token": {csrf}, "user_id": {"alice"}, "password": {"wrong"}}
			a = do(t, br, "POST", rg.srv.URL+LoginPath, form, nil)
			if a.status != http.StatusUnauthorized || !strings.Contains(a.body, `id="error-message"`) {
				t.Fatalf("wrong password: %d %s", a.status, a.body)
			}
			form.Set("password", "pw")
			a = do(t, br, "POST", rg.srv.URL+LoginPath, form, nil)
			if a.status != http.StatusSeeOther || a.header.Get("Location") != ConsentPath+"?id="+id {
				t.Fatalf("sign-in: %d %q", a.status, a.header.Get("Location"))
			}
			if !setsSession(a) {
				t.Fatalf("no session cookie: %v", a.header.Values("Set-Cookie"))
			}
			if first(rg.auth.lastMD("Decide"), wire.Session) != session {
				t.Fatal("Decide after sign-in did not carry the new session")
			}
			a = do(t, br, "GET", rg.srv.URL+ConsentPath+"?id="+id, nil, nil)
			if a.status != 200 || !strings.Contains(a.body, `id="confirm"`) || !strings.Contains(a.body, `id="deny"`) ||
				!strings.Contains(a.body, `data-scope="profile"`) {
				t.Fatalf("consent page %d: %s", a.status, a.body)
			}
			checkPageHeaders(t, a)
			if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://app.example;") {
				t.Fatalf("consent CSP %q", csp)
			}
			action := "confirm"
			if deny {
				action = "deny"
			}
			// The consent POST without the session's CSRF token is refused.
			a = do(t, br, "POST", rg.srv.URL+ConsentPath, url.Values{"id": {id}, "action": {action}, "csrf_token": {"forged"}}, nil)
			if a.status != http.StatusForbidden || a.header.Get("Location") != "" {
				t.Fatalf("forged CSRF: %d %q", a.status, a.header.Get("Location"))
			}
			a = do(t, br, "POST", rg.srv.URL+ConsentPath, url.Values{"id": {id}, "action": {action}, "csrf_token": {hidden(t, mustGet(t, br, rg.srv.URL+ConsentPath+"?id="+id), "csrf_token")}},
				map[string]string{"Origin": rg.srv.URL, "Sec-Fetch-Site": "same-origin"})
			if a.status != http.StatusSeeOther {
				t.Fatalf("consent: %d %s", a.status, a.body)
			}
			loc, _ := url.Parse(a.header.Get("Location"))
			q := loc.Query()
			if q.Get("iss") != testIssuer || q.Get("state") != "xyz" || q.Get("tenant") != "1" || loc.Host != "app.example" {
				t.Fatalf("redirect %s", loc)
			}
			if deny && (q.Get("error") != "access_denied" || q.Get("code") != "") {
				t.Fatalf("deny redirect %s", loc)
			}
			if !deny && (q.Get("code") != "code_ok" || q.Get("error") != "") {
				t.Fatalf("approve redirect %s", loc)
			}
		})
	}
}

func TestRememberedConsentRedirectsAtOnce(t *testing.T) {
	rg := newRig(t)
	rg.auth.consent = true
	br := rg.browser(t)
	u, _ := url.Parse(rg.srv.URL)
	br.Jar.SetCookies(u, []*http.Cookie{{Name: wire.SessionCookie, Value: session, Path: "/"}})
	v := url.Values{"client_id": {pubID}, "redirect_uri": {pubRedirect}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"s1"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	for _, c := range []struct {
		method string
		status int
	}{{"GET", http.StatusFound}, {"POST", http.StatusSeeOther}} {
		var a answer
		if c.method == "GET" {
			a = do(t, br, "GET", rg.srv.URL+AuthorizePath+"?"+v.Encode(), nil, nil)
		} else {
			a = do(t, br, "POST", rg.srv.URL+AuthorizePath, v, nil)
		}
		loc, _ := url.Parse(a.header.Get("Location"))
		if a.status != c.status || loc.Host != "127.0.0.1:7777" || loc.Query().Get("code") != "code_ok" ||
			loc.Query().Get("iss") != testIssuer || loc.Query().Get("state") != "s1" {
			t.Fatalf("%s: %d %s", c.method, a.status, loc)
		}
	}
}

func TestPagePostsNeedSameOriginAndFormToken(t *testing.T) {
	rg := newRig(t)
	br := rg.browser(t)
	v := url.Values{"client_id": {confID}, "redirect_uri": {confRedirect}, "response_type": {"code"}, "scope": {"openid"}}
	a := do(t, br, "GET", rg.srv.URL+AuthorizePath+"?"+v.Encode(), nil, nil)
	id := strings.TrimPrefix(a.header.Get("Location"), LoginPath+"?id=")
	csrf := hidden(t, mustGet(t, br, rg.srv.URL+LoginPath+"?id="+id), "csrf_token")
	cases := []struct {
		name    string
		form    url.Values
		headers map[string]string
		status  int
	}{
		{"cross-site", url.Values{"id": {id}, "csrf_token": {csrf}, "user_id": {"alice"}, "password": {"pw"}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"foreign origin", url.Values{"id": {id}, "csrf_token": {csrf}, "user_id": {"alice"}, "password": {"pw"}}, map[string]string{"Origin": "https://evil.example"}, 403},
		{"no token", url.Values{"id": {id}, "user_id": {"alice"}, "password": {"pw"}}, nil, 403},
		{"token of another request", url.Values{"id": {"ar_other"}, "csrf_token": {csrf}, "user_id": {"alice"}, "password": {"pw"}}, nil, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, br, "POST", rg.srv.URL+LoginPath, c.form, c.headers)
			if a.status != c.status || setsSession(a) {
				t.Fatalf("%d, session set %v", a.status, setsSession(a))
			}
		})
	}
	if n := rg.auth.count("SignIn"); n != 0 {
		t.Fatalf("SignIn called %d times", n)
	}
}

func mustGet(t *testing.T, c *http.Client, target string) string {
	t.Helper()
	a := do(t, c, "GET", target, nil, nil)
	if a.status != 200 {
		t.Fatalf("GET %s: %d", target, a.status)
	}
	return a.body
}

func hidden(t *testing.T, body, name string) string {
	t.Helper()
	marker := `name="` + name + `" value="`
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("no %s in %s", name, body)
	}
	rest := body[i+len(marker):]
	return rest[:strings.Index(rest, `"`)]
}

func setsSession(a answer) bool {
	for _, c := range a.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, wire.SessionCookie+"="+session) {
			return true
		}
	}
	return false
}

func basic(id, secret string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))}
}

func TestTokenEndpointGrants(t *testing.T) {
	rg := newRig(t)
	code := url.Values{"grant_type": {"authorization_code"}, "code": {"code_ok"}, "code_verifier": {"verifier"}, "redirect_uri": {confRedirect}}
	plus := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = vs
		}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	cases := []struct {
		name    string
		form    url.Values
		headers map[string]string
		status  int
		err     string
		idToken bool
		access  string
	}{
		{"code, basic", code, basic(confID, confSecret), 200, "", true, accessToken},
		{"code, post", plus(code, "client_id", confID, "client_secret", confSecret), nil, 200, "", true, accessToken},
		{"code, public", plus(code, "client_id", pubID, "redirect_uri", pubRedirect), nil, 200, "", true, accessToken},
		{"code replayed", plus(code, "code", "code_used"), basic(confID, confSecret), 400, "invalid_grant", false, ""},
		{"wrong verifier", plus(code, "code_verifier", "nope"), basic(confID, confSecret), 400, "invalid_grant", false, ""},
		{"wrong secret, basic", code, basic(confID, "ml_wrong"), 401, "invalid_client", false, ""},
		{"wrong secret, post", plus(code, "client_id", confID, "client_secret", "ml_wrong"), nil, 401, "invalid_client", false, ""},
		{"confidential without secret", plus(code, "client_id", confID), nil, 401, "invalid_client", false, ""},
		{"no client", code, nil, 401, "invalid_client", false, ""},
		{"two methods", plus(code, "client_secret", confSecret), basic(confID, confSecret), 400, "invalid_request", false, ""},
		{"missing code", plus(code, "code", ""), basic(confID, confSecret), 400, "invalid_request", false, ""},
		{"refresh", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"mlrt_live"}}, basic(confID, confSecret), 200, "", true, accessToken},
		{"refresh reused", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"mlrt_old"}}, basic(confID, confSecret), 400, "invalid_grant", false, ""},
		{"client credentials", url.Values{"grant_type": {"client_credentials"}}, basic(confID, confSecret), 200, "", false, "token_app"},
		{"client credentials, bad scope", url.Values{"grant_type": {"client_credentials"}, "scope": {"bogus"}}, basic(confID, confSecret), 400, "invalid_scope", false, ""},
		{"client credentials, public", url.Values{"grant_type": {"client_credentials"}, "client_id": {pubID}}, nil, 400, "unauthorized_client", false, ""},
		{"password grant", url.Values{"grant_type": {"password"}}, basic(confID, confSecret), 400, "unsupported_grant_type", false, ""},
		{"no grant", url.Values{}, basic(confID, confSecret), 400, "invalid_request", false, ""},
		{"repeated non-ASCII parameter", url.Values{"grant_type": {"authorization_code"}, "参\"数": {"a", "b"}}, basic(confID, confSecret), 400, "invalid_request", false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, http.DefaultClient, "POST", rg.srv.URL+TokenPath, c.form, c.headers)
			if a.status != c.status {
				t.Fatalf("status %d, want %d: %s", a.status, c.status, a.body)
			}
			if a.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", a.header.Get("Cache-Control"))
			}
			m := a.json(t)
			if c.err != "" {
				if m["error"] != c.err {
					t.Fatalf("error %v, want %s", m["error"], c.err)
				}
				desc, _ := m["error_description"].(string)
				checkDescription(t, desc)
				_, isBasic := c.headers["Authorization"]
				if c.err == "invalid_client" && isBasic != strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Basic") {
					t.Fatalf("WWW-Authenticate %q (basic %v)", a.header.Get("WWW-Authenticate"), isBasic)
				}
				return
			}
			// The access token is auth's record, passed through.
			if m["access_token"] != c.access || m["token_type"] != "Bearer" {
				t.Fatalf("token answer %v", m)
			}
			if _, has := m["id_token"]; has != c.idToken {
				t.Fatalf("id_token present %v, want %v", has, c.idToken)
			}
		})
	}
	// A browser-held session never reaches the back channel.
	h := basic(confID, confSecret)
	h["Cookie"] = wire.SessionCookie + "=" + session
	if a := do(t, http.DefaultClient, "POST", rg.srv.URL+TokenPath, code, h); a.status != 200 {
		t.Fatalf("code with a cookie: %d", a.status)
	}
	for _, m := range []string{"AuthenticateClient", "RedeemCode", "SignJWT"} {
		if md := rg.auth.lastMD(m); first(md, wire.Session) != "" || first(md, wire.ClientIP) == "" {
			t.Fatalf("%s metadata %v", m, md)
		}
	}
}

// TestBackChannelReadsTheBodyOnly: parameters in the query string of a
// back-channel POST are not read (RFC 6749 section 3.2 wants the body; the
// library would merge the query in).
func TestBackChannelReadsTheBodyOnly(t *testing.T) {
	rg := newRig(t)
	cases := []struct {
		name, path, query string
		form              url.Values
	}{
		{"code", TokenPath, "code=code_ok", url.Values{"grant_type": {"authorization_code"}, "code_verifier": {"verifier"}, "redirect_uri": {confRedirect}}},
		{"introspected token", IntrospectPath, "token=" + accessToken, url.Values{}},
		{"revoked token", RevokePath, "token=mlrt_next", url.Values{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, http.DefaultClient, "POST", rg.srv.URL+c.path+"?"+c.query, c.form, basic(confID, confSecret))
			if a.status != 400 || a.json(t)["error"] != "invalid_request" {
				t.Fatalf("%d %s", a.status, a.body)
			}
		})
	}
}

// TestIDTokenVerifiesAgainstTheJWKS: the ID token is signed through the
// OpaqueSigner (SignJWT with the fake's RSA key) and verifies against what
// /oidc/jwks publishes, with the SPEC's claims.
func TestIDTokenVerifiesAgainstTheJWKS(t *testing.T) {
	rg := newRig(t)
	a := do(t, http.DefaultClient, "POST", rg.srv.URL+TokenPath,
		url.Values{"grant_type": {"authorization_code"}, "code": {"code_ok"}, "code_verifier": {"verifier"}, "redirect_uri": {confRedirect}},
		basic(confID, confSecret))
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	raw, _ := a.json(t)["id_token"].(string)
	j := do(t, http.DefaultClient, "GET", rg.srv.URL+JWKSPath, nil, nil)
	if j.header.Get("Cache-Control") != "public, max-age=30" {
		t.Errorf("JWKS Cache-Control %q", j.header.Get("Cache-Control"))
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(j.body), &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.Signatures[0].Header
	if hdr.KeyID != testKid || hdr.ExtraHeaders["typ"] != "JWT" {
		t.Fatalf("header %+v", hdr)
	}
	keys := set.Key(hdr.KeyID)
	if len(keys) != 1 || !keys[0].IsPublic() {
		t.Fatalf("JWKS %s", j.body)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(accessToken))
	now := rg.clock()
	want := map[string]any{
		"iss": testIssuer, "sub": "42", "azp": confID, "nonce": "n-0S6",
		"at_hash":   base64.RawURLEncoding.EncodeToString(sum[:16]),
		"auth_time": float64(authTime.Unix()), "iat": float64(now.Unix()), "exp": float64(now.Add(time.Hour).Unix()),
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("%s = %v, want %v", k, c[k], v)
		}
	}
	if aud, _ := json.Marshal(c["aud"]); string(aud) != `["`+confID+`"]` {
		t.Errorf("aud %s", aud)
	}
	// Another payload under the same signature does not verify.
	parts := strings.Split(raw, ".")
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"1"}`)) + "." + parts[2]
	if f, err := jose.ParseSignedCompact(forged, []jose.SignatureAlgorithm{jose.RS256}); err != nil {
		t.Fatal(err)
	} else if _, err := f.Verify(keys[0]); err == nil {
		t.Fatal("a forged token verified")
	}
}

func TestJWKSIsCachedBriefly(t *testing.T) {
	rg := newRig(t)
	for range 3 {
		a := do(t, http.DefaultClient, "GET", rg.srv.URL+JWKSPath, nil, nil)
		// 30 s at a relying party + 5 s here + 10 s in auth stay under
		// the 60 s a new key is published before it signs.
		if cc := a.header.Get("Cache-Control"); cc != "public, max-age=30" {
			t.Fatalf("Cache-Control %q", cc)
		}
	}
	if n := rg.auth.count("GetJWKS"); n != 1 {
		t.Fatalf("GetJWKS called %d times within the cache lifetime", n)
	}
	rg.advance(jwksCacheLifetime)
	do(t, http.DefaultClient, "GET", rg.srv.URL+JWKSPath, nil, nil)
	if n := rg.auth.count("GetJWKS"); n != 2 {
		t.Fatalf("GetJWKS called %d times after the cache lifetime", n)
	}
}

func TestDevicePollingErrors(t *testing.T) {
	rg := newRig(t)
	cases := []struct {
		kind       apierr.Kind
		status     int
		err        string
		retryAfter string
	}{
		{apierr.AuthorizationPending, 400, "authorization_pending", ""},
		{apierr.SlowDown, 400, "slow_down", ""},
		{apierr.AccessDenied, 400, "access_denied", ""},
		{apierr.ExpiredToken, 400, "expired_token", ""},
		{apierr.InvalidGrant, 400, "invalid_grant", ""},
		{apierr.Unavailable, 503, "temporarily_unavailable", ""},
		// The library cannot put a header on an error; the edge does.
		{apierr.RateLimited, 429, "invalid_request", "30"},
		{"", 200, "", ""},
	}
	for _, c := range cases {
		t.Run(string(c.kind), func(t *testing.T) {
			rg.auth.mu.Lock()
			rg.auth.pollErr = c.kind
			rg.auth.mu.Unlock()
			a := do(t, http.DefaultClient, "POST", rg.srv.URL+TokenPath,
				url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {"mldc_x"}, "client_id": {pubID}}, nil)
			if a.status != c.status || (c.err != "" && a.json(t)["error"] != c.err) {
				t.Fatalf("%d %s", a.status, a.body)
			}
			if c.err != "" {
				desc, _ := a.json(t)["error_description"].(string)
				checkDescription(t, desc)
			}
			if got := a.header.Get("Retry-After"); got != c.retryAfter {
				t.Fatalf("Retry-After %q, want %q", got, c.retryAfter)
			}
		})
	}
}

func TestDeviceAuthorization(t *testing.T) {
	rg := newRig(t)
	rg.auth.conflict = 2
	a := do(t, http.DefaultClient, "POST", rg.srv.URL+DeviceAuthPath, url.Values{"scope": {"openid profile"}}, basic(confID, confSecret))
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	m := a.json(t)
	started := rg.auth.started
	if len(started) != 3 {
		t.Fatalf("%d StartDevice calls, want 3 (two clashes)", len(started))
	}
	last := started[2]
	if started[0].GetUserCode() == last.GetUserCode() && started[1].GetUserCode() == last.GetUserCode() {
		t.Error("the user code was not drawn again after a clash")
	}
	uc := last.GetUserCode()
	if len(uc) != 9 || uc[4] != '-' || strings.Trim(uc[:4]+uc[5:], userCodeAlphabet) != "" {
		t.Fatalf("user code %q", uc)
	}
	if m["user_code"] != uc || m["device_code"] != last.GetDeviceCode() || !strings.HasPrefix(last.GetDeviceCode(), "mldc_") {
		t.Fatalf("answer %v vs %v", m, last)
	}
	if m["verification_uri"] != testIssuer+"/device" || m["verification_uri_complete"] != testIssuer+"/device?user_code="+uc ||
		m["interval"] != float64(7) || m["expires_in"] != float64(600) {
		t.Fatalf("answer %v", m)
	}
	if !slices.Equal(last.GetScopes(), []string{"openid", "profile"}) {
		t.Fatalf("scopes %v", last.GetScopes())
	}
}

func TestDevicePage(t *testing.T) {
	rg := newRig(t)
	br := rg.browser(t)
	a := do(t, br, "GET", rg.srv.URL+DevicePath+"?user_code=BCDF-GHJK", nil, nil)
	if a.status != 200 || !strings.Contains(a.body, `<form id="login"`) || strings.Contains(a.body, `id="device"`) {
		t.Fatalf("no session: %d %s", a.status, a.body)
	}
	checkPageHeaders(t, a)
	csrf := hidden(t, a.body, "csrf_token")
	a = do(t, br, "POST", rg.srv.URL+DevicePath, url.Values{"action": {"login"}, "csrf_token": {csrf}, "user_code": {"BCDF-GHJK"},
		"user_id": {"alice"}, "password": {"pw"}}, nil)
	if a.status != http.StatusSeeOther || !setsSession(a) || a.header.Get("Location") != DevicePath+"?user_code=BCDF-GHJK" {
		t.Fatalf("sign-in %d %q", a.status, a.header.Get("Location"))
	}
	a = do(t, br, "GET", rg.srv.URL+DevicePath+"?user_code=BCDF-GHJK", nil, nil)
	if !strings.Contains(a.body, `<form id="device"`) || !strings.Contains(a.body, `value="BCDF-GHJK"`) {
		t.Fatalf("device form %s", a.body)
	}
	a = do(t, br, "POST", rg.srv.URL+DevicePath, url.Values{"action": {"code"}, "user_code": {"zzzz-zzzz"}}, nil)
	if a.status != 400 || !strings.Contains(a.body, `id="error-message"`) {
		t.Fatalf("wrong code %d %s", a.status, a.body)
	}
	a = do(t, br, "POST", rg.srv.URL+DevicePath, url.Values{"action": {"code"}, "user_code": {"bcdfghjk"}}, nil)
	if a.status != 200 || !strings.Contains(a.body, `id="confirm"`) || !strings.Contains(a.body, "Example TV") {
		t.Fatalf("consent %d %s", a.status, a.body)
	}
	consent := a.body
	a = do(t, br, "POST", rg.srv.URL+DevicePath, url.Values{"action": {"confirm"}, "user_code": {"BCDF-GHJK"}, "csrf_token": {"forged"}}, nil)
	if a.status != 403 {
		t.Fatalf("forged CSRF %d", a.status)
	}
	a = do(t, br, "POST", rg.srv.URL+DevicePath, url.Values{"action": {"confirm"}, "user_code": {"BCDF-GHJK"}, "csrf_token": {hidden(t, consent, "csrf_token")}}, nil)
	if a.status != 200 || !strings.Contains(a.body, `data-view="device_done"`) || !strings.Contains(a.body, `id="done-message"`) {
		t.Fatalf("done %d %s", a.status, a.body)
	}
	if d := rg.auth.decided; len(d) != 1 || !d[0].GetApprove() {
		t.Fatalf("decided %v", d)
	}
}

func TestUserinfo(t *testing.T) {
	rg := newRig(t)
	cases := []struct {
		name, method, auth string
		form               url.Values
		status             int
		want               map[string]any
	}{
		{"GET bearer", "GET", "Bearer " + accessToken, nil, 200, map[string]any{"sub": "42", "preferred_username": "alice", "name": "Alice",
			"picture": "https://cdn.example/a.png", "email": "a@example.com", "email_verified": false}},
		{"POST form", "POST", "", url.Values{"access_token": {accessToken}}, 200, map[string]any{"sub": "42", "email_verified": false}},
		{"scopes limit claims", "GET", "Bearer token_openid_only", nil, 200, map[string]any{"sub": "42", "email": nil, "preferred_username": nil}},
		{"dead token", "GET", "Bearer token_dead", nil, 401, map[string]any{"error": "invalid_token"}},
		{"empty form token", "POST", "", url.Values{"access_token": {""}}, 401, map[string]any{"error": "invalid_token"}},
		// No credentials at all: the bare challenge (RFC 6750 section 3.1).
		{"no token", "GET", "", nil, 401, nil},
		{"no token, POST", "POST", "", url.Values{}, 401, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := map[string]string{}
			if c.auth != "" {
				h["Authorization"] = c.auth
			}
			a := do(t, http.DefaultClient, c.method, rg.srv.URL+UserinfoPath, c.form, h)
			if a.status != c.status {
				t.Fatalf("%d %s", a.status, a.body)
			}
			challenge := a.header.Get("WWW-Authenticate")
			if c.status == 401 && c.want == nil {
				if challenge != "Bearer" || strings.Contains(a.body, "error") {
					t.Fatalf("WWW-Authenticate %q, body %q", challenge, a.body)
				}
				return
			}
			m := a.json(t)
			for k, v := range c.want {
				if m[k] != v {
					t.Errorf("%s = %v, want %v", k, m[k], v)
				}
			}
			if c.status == 401 && !strings.HasPrefix(challenge, `Bearer error="invalid_token"`) {
				t.Errorf("WWW-Authenticate %q", challenge)
			}
		})
	}
}

func TestIntrospectAndRevoke(t *testing.T) {
	rg := newRig(t)
	a := do(t, http.DefaultClient, "POST", rg.srv.URL+IntrospectPath, url.Values{"token": {accessToken}}, basic(confID, confSecret))
	m := a.json(t)
	if a.status != 200 || m["active"] != true || m["sub"] != "42" || m["client_id"] != confID || m["exp"] != float64(authTime.Add(time.Hour).Unix()) {
		t.Fatalf("%d %v", a.status, m)
	}
	fields := []struct {
		token string
		want  map[string]any // nil: absent
	}{
		{accessToken, map[string]any{"aud": confID, "token_type": "Bearer", "iss": testIssuer}},
		// A refresh token has no access-token type.
		{"mlrt_live", map[string]any{"active": true, "aud": confID, "client_id": confID, "token_type": nil}},
	}
	for _, f := range fields {
		m := do(t, http.DefaultClient, "POST", rg.srv.URL+IntrospectPath, url.Values{"token": {f.token}}, basic(confID, confSecret)).json(t)
		for k, v := range f.want {
			if got, has := m[k]; got != v || (v == nil && has) {
				t.Errorf("%s: %s = %v, want %v", f.token, k, got, v)
			}
		}
	}
	// A token not issued to the caller is just inactive.
	a = do(t, http.DefaultClient, "POST", rg.srv.URL+IntrospectPath, url.Values{"token": {"token_other"}}, basic(confID, confSecret))
	if m := a.json(t); a.status != 200 || len(m) != 1 || m["active"] != false {
		t.Fatalf("other token: %d %v", a.status, m)
	}
	// A public client cannot authenticate, so it cannot introspect (the
	// library's rule, RFC 7662 section 2.1); auth is not asked.
	before := rg.auth.count("Introspect")
	a = do(t, http.DefaultClient, "POST", rg.srv.URL+IntrospectPath, url.Values{"token": {accessToken}, "client_id": {pubID}}, nil)
	if a.status != 401 || a.json(t)["error"] != "invalid_client" || rg.auth.count("Introspect") != before {
		t.Fatalf("public client: %d %s", a.status, a.body)
	}
	a = do(t, http.DefaultClient, "POST", rg.srv.URL+IntrospectPath, url.Values{}, basic(confID, confSecret))
	if a.status != 400 || a.json(t)["error"] != "invalid_request" {
		t.Fatalf("no token: %d %s", a.status, a.body)
	}
	a = do(t, http.DefaultClient, "POST", rg.srv.URL+IntrospectPath, url.Values{"token": {accessToken}}, basic(confID, "ml_bad"))
	if a.status != 401 || a.json(t)["error"] != "invalid_client" {
		t.Fatalf("bad secret %d %s", a.status, a.body)
	}
	a = do(t, http.DefaultClient, "POST", rg.srv.URL+RevokePath, url.Values{"token": {"mlrt_next"}, "token_type_hint": {"refresh_token"}}, basic(confID, confSecret))
	if a.status != 200 || a.body != "" || !slices.Equal(rg.auth.revoked, []string{"mlrt_next"}) {
		t.Fatalf("revoke %d %q %v", a.status, a.body, rg.auth.revoked)
	}
	if first(rg.auth.lastMD("Revoke"), wire.APIKey) != confSecret {
		t.Fatal("the secret did not reach auth as x-api-key")
	}
}

func TestEndSession(t *testing.T) {
	rg := newRig(t)
	tok := do(t, http.DefaultClient, "POST", rg.srv.URL+TokenPath,
		url.Values{"grant_type": {"authorization_code"}, "code": {"code_ok"}, "code_verifier": {"verifier"}, "redirect_uri": {confRedirect}},
		basic(confID, confSecret))
	hint, _ := tok.json(t)["id_token"].(string)
	// Without a hint a signed-in browser is asked first (200, the
	// confirmation page; TestEndSessionAsksWithoutAHint); a browser with no
	// session has nothing to end and goes straight on.
	cases := []struct {
		name      string
		params    url.Values
		noSession bool
		status    int
		location  string
		ended     bool
	}{
		{"hint, no redirect", url.Values{"id_token_hint": {hint}}, false, 302, LoggedOutPath, true},
		{"hint and post-logout URI", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {confLogout}, "state": {"bye1"}}, false, 302, confLogout + "?state=bye1", true},
		{"hint and redirect URI", url.Values{"id_token_hint": {hint}, "client_id": {confID}, "post_logout_redirect_uri": {confRedirect}}, false, 302, confRedirect, true},
		{"no hint asks", url.Values{}, false, 200, "", false},
		{"client_id and redirect URI asks", url.Values{"client_id": {confID}, "post_logout_redirect_uri": {confRedirect}}, false, 200, "", false},
		{"no session, no redirect", url.Values{}, true, 302, LoggedOutPath, false},
		{"no session, client_id and URI", url.Values{"client_id": {confID}, "post_logout_redirect_uri": {confLogout}, "state": {"s"}}, true, 302, confLogout + "?state=s", false},
		{"unregistered URI", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/"}}, false, 400, "", false},
		{"unregistered URI without hint", url.Values{"client_id": {confID}, "post_logout_redirect_uri": {"https://evil.example/"}}, false, 400, "", false},
		{"unregistered URI without session", url.Values{"client_id": {confID}, "post_logout_redirect_uri": {"https://evil.example/"}}, true, 400, "", false},
		{"URI without client", url.Values{"post_logout_redirect_uri": {confLogout}}, false, 400, "", false},
		{"other client's URI", url.Values{"client_id": {pubID}, "post_logout_redirect_uri": {confLogout}}, false, 400, "", false},
		{"forged hint", url.Values{"id_token_hint": {hint[:len(hint)-6] + "AAAAAA"}, "post_logout_redirect_uri": {confLogout}}, false, 400, "", false},
		{"hint of another client", url.Values{"id_token_hint": {hint}, "client_id": {pubID}}, false, 400, "", false},
		{"hint of another user asks", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {confLogout}}, false, 200, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := rg.auth.count("EndSession")
			rg.auth.mu.Lock()
			rg.auth.othersSession = strings.HasSuffix(c.name, "another user asks")
			rg.auth.mu.Unlock()
			br := rg.browser(t)
			if !c.noSession {
				u, _ := url.Parse(rg.srv.URL)
				br.Jar.SetCookies(u, []*http.Cookie{{Name: wire.SessionCookie, Value: session, Path: "/"}})
			}
			a := do(t, br, "GET", rg.srv.URL+EndSessionPath+"?"+c.params.Encode(), nil, nil)
			if a.status != c.status || a.header.Get("Location") != c.location {
				t.Fatalf("%d %q: %s", a.status, a.header.Get("Location"), a.body)
			}
			ended := rg.auth.count("EndSession") > before
			if ended != c.ended {
				t.Fatalf("session ended %v", ended)
			}
			cleared := false
			for _, sc := range a.header.Values("Set-Cookie") {
				if strings.HasPrefix(sc, wire.SessionCookie+"=;") && strings.Contains(sc, "Max-Age=0") {
					cleared = true
				}
			}
			if cleared != c.ended {
				t.Fatalf("cookie cleared %v: %v", cleared, a.header.Values("Set-Cookie"))
			}
			if c.ended && first(rg.auth.lastMD("EndSession"), wire.Session) != session {
				t.Fatal("EndSession did not get the session")
			}
		})
	}
	a := do(t, http.DefaultClient, "GET", rg.srv.URL+LoggedOutPath, nil, nil)
	if a.status != 200 || !strings.Contains(a.body, `data-view="logged_out"`) {
		t.Fatalf("logged-out page %d", a.status)
	}
	checkPageHeaders(t, a)
}

func TestMethodsAndUnknownPaths(t *testing.T) {
	rg := newRig(t)
	cases := []struct {
		method, path string
		status       int
	}{
		{"GET", TokenPath, 405}, {"PUT", AuthorizePath, 405}, {"POST", JWKSPath, 405}, {"POST", ServerMetadataPath, 405},
		{"POST", DiscoveryPath, 405}, {"HEAD", ServerMetadataPath, 200}, {"DELETE", UserinfoPath, 405},
		{"GET", RevokePath, 405}, {"POST", LoggedOutPath, 405}, {"GET", "/oidc/nothing", 404},
		// The library's router has these; the edge does not hand them over.
		{"GET", "/healthz", 404}, {"GET", "/ready", 404},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			if a := do(t, http.DefaultClient, c.method, rg.srv.URL+c.path, nil, nil); a.status != c.status {
				t.Fatalf("%d", a.status)
			}
		})
	}
}

func TestParseIssuer(t *testing.T) {
	cases := []struct {
		in, out string
		ok      bool
	}{
		{"http://localhost:8080", "http://localhost:8080", true},
		{"https://id.example/", "https://id.example", true},
		{"https://id.example/base", "", false},
		{"ftp://id.example", "", false},
		{"id.example", "", false},
		{"https://id.example?x=1", "", false},
	}
	for _, c := range cases {
		got, err := ParseIssuer(c.in)
		if (err == nil) != c.ok || got != c.out {
			t.Errorf("ParseIssuer(%q) = %q, %v", c.in, got, err)
		}
	}
}
