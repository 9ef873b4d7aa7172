package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Discovery lists every endpoint of the fixed surface under the issuer and
// offers only what Moreid does: the code flow, S256, query mode, the four
// grants, the three client authentications, and the RFC 9207 flag. go-oidc
// accepts it (startOIDCSuite's NewProvider checks the issuer matches).
func TestOIDCDiscovery(t *testing.T) {
	f := startOIDCSuite(t, nil)
	a := newClient(f.BaseURL, "").do(t, "GET", "/.well-known/openid-configuration", nil)
	if a.Status != 200 {
		t.Fatalf("discovery: %d %s", a.Status, a.Raw)
	}
	d := a.Body
	iss := f.BaseURL
	endpoints := map[string]string{
		"issuer":                        iss,
		"authorization_endpoint":        iss + "/oidc/authorize",
		"token_endpoint":                iss + "/oidc/token",
		"userinfo_endpoint":             iss + "/oidc/userinfo",
		"jwks_uri":                      iss + "/oidc/jwks",
		"introspection_endpoint":        iss + "/oidc/introspect",
		"revocation_endpoint":           iss + "/oidc/revoke",
		"device_authorization_endpoint": iss + "/oidc/device_authorization",
		"end_session_endpoint":          iss + "/oidc/end_session",
	}
	for field, want := range endpoints {
		if got, _ := d[field].(string); got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	exactly := []struct {
		field string
		want  []string
	}{
		{"response_types_supported", []string{"code"}},
		{"code_challenge_methods_supported", []string{"S256"}},
		{"response_modes_supported", []string{"query"}},
		{"grant_types_supported", []string{"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"}},
		{"token_endpoint_auth_methods_supported", []string{"client_secret_basic", "client_secret_post", "none"}},
	}
	for _, e := range exactly {
		got := strs(d[e.field])
		if !sameSet(got, e.want) {
			t.Errorf("%s = %q, want exactly %q", e.field, got, e.want)
		}
	}
	containing := []struct {
		field string
		want  []string
	}{
		{"scopes_supported", []string{"openid", "profile", "email", "offline_access"}},
		{"id_token_signing_alg_values_supported", []string{"RS256"}},
		{"subject_types_supported", []string{"public"}},
	}
	for _, c := range containing {
		got := strs(d[c.field])
		for _, w := range c.want {
			if !slices.Contains(got, w) {
				t.Errorf("%s = %q lacks %q", c.field, got, w)
			}
		}
	}
	if d["authorization_response_iss_parameter_supported"] != true {
		t.Errorf("authorization_response_iss_parameter_supported = %v, want true", d["authorization_response_iss_parameter_supported"])
	}
	for _, never := range []string{"implicit", "password", "urn:ietf:params:oauth:grant-type:jwt-bearer"} {
		if slices.Contains(strs(d["grant_types_supported"]), never) {
			t.Errorf("grant_types_supported offers %q", never)
		}
	}

	// The JWKS: RS256 public keys with a kid, cached for a minute, and no
	// private part.
	req, _ := http.NewRequest("GET", iss+"/oidc/jwks", nil)
	j := f.send(t, req)
	if j.Status != 200 {
		t.Fatalf("jwks: %d %s", j.Status, j.Raw)
	}
	// A relying party caching the JWKS must see a rotated-in key before it
	// signs: its max-age, plus the gateway's 5 s and auth's 10 s caches,
	// must stay under the default 60 s propagation.
	cc := j.Header.Get("Cache-Control")
	_, age, _ := strings.Cut(cc, "max-age=")
	if n, err := strconv.Atoi(strings.TrimSpace(strings.Split(age, ",")[0])); err != nil || n <= 0 || n+5+10 >= 60 {
		t.Errorf("jwks Cache-Control %q, want a max-age under 45 s", cc)
	}
	keys := jwksKeys(t, j)
	if len(keys) == 0 {
		t.Fatalf("the JWKS has no key: %s", j.Raw)
	}
	for _, k := range keys {
		if k["kid"] == "" || k["kty"] != "RSA" || k["n"] == "" || k["e"] == "" {
			t.Errorf("a JWKS key lacks kid/kty/n/e: %v", k)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Errorf("the JWKS publishes the private field %q", private)
			}
		}
	}
}

func strs(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b)) && len(a) == len(b)
}

// jwksKeys decodes a JWKS answer's keys, their fields as strings.
func jwksKeys(t testing.TB, a answer) []map[string]string {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(a.Raw), &set); err != nil {
		t.Fatalf("the JWKS is not JSON: %v\n%s", err, a.Raw)
	}
	var out []map[string]string
	for _, k := range set.Keys {
		m := map[string]string{}
		for name, v := range k {
			s, _ := v.(string)
			m[name] = s
		}
		out = append(out, m)
	}
	return out
}

// The code flow with PKCE as a person lives it in Chromium at phone size:
// the app's request leads to the sign-in page, then consent naming the app,
// then the callback with code, state and iss. The app verifies the ID
// token with go-oidc against the JWKS (nonce, at_hash, aud/azp,
// auth_time), and userinfo's sub is the ID token's.
func TestOIDCCodeFlowInBrowser(t *testing.T) {
	ctx := newBrowser(t)
	f := startOIDCSuite(t, nil)
	scopes := []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}
	r := f.authURL(t, f.app, scopes)
	before := time.Now().Add(-2 * time.Second) // the machine's clock vs the suite's: same clock, a margin for rounding

	browse(t, ctx, "authorization request",
		chromedp.Navigate(r.url),
		chromedp.WaitVisible(chromedp.CSS(`form#login`)),
	)
	if loc := location(t, ctx); !strings.HasPrefix(loc, f.BaseURL+"/oidc/login?id=") {
		t.Errorf("the sign-in page is %s, want %s/oidc/login?id=…", loc, f.BaseURL)
	}
	browse(t, ctx, "sign-in form",
		chromedp.SendKeys(chromedp.CSS(`form#login input[name="user_id"]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`form#login input[name="password"]`), alicePassword),
	)
	screenshot(t, ctx, "oidc-signin")
	navigate(t, ctx, "sign in", 200, chromedp.SendKeys(chromedp.CSS(`form#login input[name="password"]`), "\r"))
	browse(t, ctx, "consent", chromedp.WaitVisible(chromedp.CSS(`button#confirm`)), chromedp.WaitVisible(chromedp.CSS(`button#deny`)))
	if loc := location(t, ctx); !strings.HasPrefix(loc, f.BaseURL+"/oidc/consent?id=") {
		t.Errorf("the consent page is %s, want %s/oidc/consent?id=…", loc, f.BaseURL)
	}
	if text := pageText(t, ctx); !strings.Contains(text, f.app.name) {
		t.Errorf("the consent page does not name the app (%q):\n%s", f.app.name, text)
	}
	screenshot(t, ctx, "oidc-consent")
	navigate(t, ctx, "confirm", 200, chromedp.Click(chromedp.CSS(`button#confirm`)))
	q := f.rp.await(t, "/callback", r.state)
	code := f.checkCallback(t, q, r)
	if loc := location(t, ctx); !strings.HasPrefix(loc, f.rp.callback()+"?") {
		t.Errorf("the browser is at %s, want the app's callback", loc)
	}

	l := f.exchange(t, f.app, r, code, scopes...)
	if !strings.HasPrefix(l.token.AccessToken, "token_") {
		t.Errorf("access token %q, want Moreid's token_…", l.token.AccessToken)
	}
	if rt := l.token.RefreshToken; !strings.HasPrefix(rt, "mlrt_") {
		t.Errorf("refresh token %q, want mlrt_… (offline_access was asked)", rt)
	}
	if !strings.EqualFold(l.token.TokenType, "Bearer") {
		t.Errorf("token_type %q", l.token.TokenType)
	}
	id := l.idToken
	if err := id.VerifyAccessToken(l.token.AccessToken); err != nil {
		t.Errorf("at_hash does not match the access token: %v", err)
	}
	if id.AccessTokenHash == "" {
		t.Errorf("the ID token has no at_hash")
	}
	var claims struct {
		AZP      string   `json:"azp"`
		AuthTime int64    `json:"auth_time"`
		Aud      audience `json:"aud"`
	}
	if err := id.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.AZP != f.app.id {
		t.Errorf("azp %q, want the client_id %q", claims.AZP, f.app.id)
	}
	if !slices.Contains([]string(claims.Aud), f.app.id) {
		t.Errorf("aud %q lacks the client_id %q", claims.Aud, f.app.id)
	}
	if at := time.Unix(claims.AuthTime, 0); at.Before(before) || at.After(time.Now().Add(2*time.Second)) {
		t.Errorf("auth_time %v, want the sign-in just now (after %v)", at, before)
	}
	if id.Issuer != f.BaseURL {
		t.Errorf("iss %q", id.Issuer)
	}
	if _, err := strconv.ParseInt(id.Subject, 10, 64); err != nil {
		t.Errorf("sub %q is not the decimal users.id", id.Subject)
	}
	if kid := jwsKid(t, l.rawID); kid == "" {
		t.Errorf("the ID token header has no kid")
	}

	info, err := f.provider.UserInfo(f.ctx, oauth2.StaticTokenSource(l.token))
	if err != nil {
		t.Fatalf("go-oidc userinfo: %v", err)
	}
	if info.Subject != id.Subject {
		t.Errorf("userinfo sub %q, ID token sub %q", info.Subject, id.Subject)
	}
	var profile map[string]any
	if err := info.Claims(&profile); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"preferred_username": "alice", "name": "Alice", "email": "alice@example.com", "email_verified": false}
	for k, v := range want {
		if profile[k] != v {
			t.Errorf("userinfo %s = %v, want %v", k, profile[k], v)
		}
	}
	if pic, _ := profile["picture"].(string); !strings.HasPrefix(pic, "http") {
		t.Errorf("userinfo picture %q, want an absolute URL", pic)
	}
	// The same userinfo by POST (OpenID Connect Core 5.3.1).
	req, _ := http.NewRequest("POST", f.BaseURL+"/oidc/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+l.token.AccessToken)
	if a := f.send(t, req); a.Status != 200 || a.str("sub") != id.Subject {
		t.Errorf("POST userinfo: %d %s", a.Status, a.Raw)
	}
	// A scope narrows userinfo: without email, no email claim.
	narrow := f.login(t, newOIDCPerson(t, f.BaseURL), f.app, "bob", bobPassword, oidc.ScopeOpenID, "profile")
	if a := f.userinfo(t, narrow.token.AccessToken); a.Status != 200 || a.Body["email"] != nil || a.str("preferred_username") != "bob" {
		t.Errorf("userinfo for openid profile: %d %s, want bob's profile and no email", a.Status, a.Raw)
	}
	// Bob's sub differs from Alice's: sub names the user.
	if narrow.idToken.Subject == id.Subject {
		t.Errorf("alice and bob share sub %q", id.Subject)
	}
}

// audience is aud as a string or an array.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = []string{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// location is the browser's current URL.
func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(timeout(t, ctx), chromedp.Location())
	if err != nil {
		t.Fatalf("location: %v", err)
	}
	return loc
}

// jwsKid is the kid of a compact JWS's protected header.
func jwsKid(t testing.TB, jws string) string {
	t.Helper()
	var h struct {
		Kid string `json:"kid"`
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(jwsPart(t, jws, 0), &h); err != nil {
		t.Fatalf("the JWS header is not JSON: %v", err)
	}
	if h.Alg != "RS256" {
		t.Errorf("JWS alg %q, want RS256", h.Alg)
	}
	return h.Kid
}

// Remembered consent: once alice has consented, prompt=none returns a code
// with no page shown; prompt=none without a session answers login_required
// on the redirect; prompt=consent asks again even though consent is
// remembered; prompt=login asks for the password again.
func TestOIDCPrompt(t *testing.T) {
	f := startOIDCSuite(t, nil)
	scopes := []string{oidc.ScopeOpenID, "profile"}
	alice := newOIDCPerson(t, f.BaseURL)
	f.login(t, alice, f.app, "alice", alicePassword, scopes...)
	signedIn := time.Now()

	tests := []struct {
		name   string
		person *oidcPerson
		prompt string
		// page is where the person lands: "" for straight back to the
		// app, else the gateway's page path.
		page  string
		error string
	}{
		{"remembered consent, prompt=none", alice, "none", "", ""},
		{"remembered consent, no prompt", alice, "", "", ""},
		{"no session, prompt=none", newOIDCPerson(t, f.BaseURL), "none", "", "login_required"},
		{"prompt=consent asks again", alice, "consent", "/oidc/consent", ""},
		{"prompt=login asks for the password", alice, "login", "/oidc/login", ""},
		{"no session, no prompt", newOIDCPerson(t, f.BaseURL), "", "/oidc/login", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var extra []oauth2.AuthCodeOption
			if tc.prompt == "login" {
				// Auth counts a session signed in during the request's
				// own second as signed in for it (times are whole
				// seconds): the request must come a second later to
				// find the session older than itself.
				time.Sleep(time.Until(signedIn.Truncate(time.Second).Add(time.Second + 100*time.Millisecond)))
			}
			if tc.prompt != "" {
				extra = append(extra, oauth2.SetAuthURLParam("prompt", tc.prompt))
			}
			r := f.authURL(t, f.app, scopes, extra...)
			pg, paths := tc.person.open(t, r.url)
			if tc.page != "" {
				if !f.onPage(pg, tc.page) {
					t.Fatalf("landed on %s (via %v), want the %s page", pg.URL, paths, tc.page)
				}
				// Finishing the page gets a code.
				q := f.authorize(t, tc.person, r, "alice", alicePassword)
				f.exchange(t, f.app, r, f.checkCallback(t, q, r), scopes...)
				return
			}
			for _, p := range paths {
				if strings.HasPrefix(p, "/oidc/login") || strings.HasPrefix(p, "/oidc/consent") {
					t.Errorf("a page was shown: redirected through %v", paths)
				}
			}
			if !strings.HasPrefix(pg.URL.String(), f.rp.callback()) {
				t.Fatalf("landed on %s (via %v), want the callback", pg.URL, paths)
			}
			q := f.rp.await(t, "/callback", r.state)
			if tc.error != "" {
				f.checkCallbackError(t, q, r, tc.error)
				return
			}
			f.exchange(t, f.app, r, f.checkCallback(t, q, r), scopes...)
		})
	}

	// A scope beyond the remembered ones needs consent again: with
	// prompt=none that is consent_required.
	r := f.authURL(t, f.app, []string{oidc.ScopeOpenID, "profile", "email"}, oauth2.SetAuthURLParam("prompt", "none"))
	pg, _ := alice.open(t, r.url)
	if !strings.HasPrefix(pg.URL.String(), f.rp.callback()) {
		t.Fatalf("prompt=none with a new scope landed on %s", pg.URL)
	}
	f.checkCallbackError(t, f.rp.await(t, "/callback", r.state), r, "consent_required")
	// Consent is per client: the other app has none.
	r = f.authURL(t, f.other, scopes, oauth2.SetAuthURLParam("prompt", "none"))
	alice.open(t, r.url)
	f.checkCallbackError(t, f.rp.await(t, "/callback", r.state), r, "consent_required")
}

// Denying on the consent page sends access_denied to the app, with state
// and iss, and no code.
func TestOIDCConsentDenied(t *testing.T) {
	f := startOIDCSuite(t, nil)
	p := newOIDCPerson(t, f.BaseURL)
	r := f.authURL(t, f.app, []string{oidc.ScopeOpenID})
	pg, _ := p.open(t, r.url)
	pg = p.signIn(t, pg, "alice", alicePassword)
	if !f.onPage(pg, "/oidc/consent") {
		t.Fatalf("after signing in: %s\n%s", pg.URL, pg.Body)
	}
	p.press(t, pg, "deny")
	f.checkCallbackError(t, f.rp.await(t, "/callback", r.state), r, "access_denied")
	// Denial is not remembered as consent.
	r = f.authURL(t, f.app, []string{oidc.ScopeOpenID}, oauth2.SetAuthURLParam("prompt", "none"))
	p.open(t, r.url)
	f.checkCallbackError(t, f.rp.await(t, "/callback", r.state), r, "consent_required")
}

// An unknown client or a redirect URI that is not exactly a registered one
// gets the kit's error page, status 400, and never a redirect (no Location
// header); in the browser the person stays on the gateway.
func TestOIDCUnregisteredRedirect(t *testing.T) {
	f := startOIDCSuite(t, nil)
	cb := f.rp.callback()
	u, _ := url.Parse(cb)
	otherPort := "http://127.0.0.1:1" + u.Path
	tests := []struct {
		name, clientID, redirect string
	}{
		{"unregistered URI", f.app.id, "http://127.0.0.1:1/evil"},
		{"another port", f.app.id, otherPort},
		{"trailing slash", f.app.id, cb + "/"},
		{"extra query", f.app.id, cb + "?x=1"},
		{"localhost for 127.0.0.1", f.app.id, strings.Replace(cb, "127.0.0.1", "localhost", 1)},
		{"https for http", f.app.id, strings.Replace(cb, "http://", "https://", 1)},
		{"unknown client", "mlc_00000000000000000000000000000000", cb},
		{"malformed client", "not-a-client", cb},
		{"no client", "", cb},
	}
	hc := noRedirects()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"response_type": {"code"}, "client_id": {tc.clientID}, "redirect_uri": {tc.redirect},
				"scope": {"openid"}, "state": {"s1"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())},
				"code_challenge_method": {"S256"}}
			for _, method := range []string{"GET", "POST"} {
				var req *http.Request
				if method == "GET" {
					req, _ = http.NewRequest("GET", f.BaseURL+"/oidc/authorize?"+q.Encode(), nil)
				} else {
					req, _ = http.NewRequest("POST", f.BaseURL+"/oidc/authorize", strings.NewReader(q.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 400 {
					t.Errorf("%s: status %d, want 400", method, resp.StatusCode)
				}
				if loc := resp.Header.Get("Location"); loc != "" {
					t.Errorf("%s: Location %q: an invalid client or redirect URI must never be redirected to", method, loc)
				}
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
					t.Errorf("%s: Content-Type %q, want the kit's HTML error page", method, ct)
				}
			}
			pg := newPageClient(t, f.BaseURL).get(t, f.BaseURL+"/oidc/authorize?"+q.Encode())
			if pg.Status != 400 || !strings.Contains(strings.ToLower(pg.Body), "<html") || pg.byID("login") != nil {
				t.Errorf("error page: status %d, want 400 and an HTML page without form#login:\n%s", pg.Status, pg.Body)
			}
			if !hasHan(pg.text()) {
				t.Errorf("the error page is not in Chinese: %q", pg.text())
			}
		})
	}
	if n := len(f.rp.all()["/evil"]) + len(f.rp.all()["/callback"]); n != 0 {
		t.Errorf("the relying party was reached %d times", n)
	}

	// In the browser too, the person stays on the gateway's page.
	ctx := newBrowser(t)
	q := url.Values{"response_type": {"code"}, "client_id": {f.app.id}, "redirect_uri": {f.rp.srv.URL + "/evil"}, "scope": {"openid"}, "state": {"s2"}}
	resp, err := chromedp.Run(timeout(t, ctx), chromedp.NavigateResponse(f.BaseURL+"/oidc/authorize?"+q.Encode()))
	if err != nil || resp.Status != 400 {
		t.Errorf("browser: %v (status %v), want 400", err, statusOf(resp))
	}
	if loc := location(t, ctx); !strings.HasPrefix(loc, f.BaseURL+"/") {
		t.Errorf("the browser left the gateway for %s", loc)
	}
	if n := len(f.rp.all()["/evil"]); n != 0 {
		t.Errorf("the browser reached the unregistered URI")
	}
}

// hasHan reports whether s holds a Chinese character.
func hasHan(s string) bool {
	for _, r := range s {
		if r >= 0x4e00 && r <= 0x9fff {
			return true
		}
	}
	return false
}

// PKCE: a public client without a challenge, and any client with
// code_challenge_method=plain, get invalid_request on the redirect URI; a
// public client with S256 signs in with no secret, and its code is
// refused without the right verifier.
func TestOIDCPKCERequired(t *testing.T) {
	f := startOIDCSuite(t, nil)
	alice := newOIDCPerson(t, f.BaseURL)
	// Alice is signed in and has consented for both clients, so that a
	// refusal cannot be a sign-in page.
	f.login(t, alice, f.native, "alice", alicePassword, oidc.ScopeOpenID)
	f.login(t, alice, f.app, "alice", alicePassword, oidc.ScopeOpenID)

	verifier := oauth2.GenerateVerifier()
	tests := []struct {
		name   string
		client oidcClient
		params url.Values
	}{
		{"public client without PKCE", f.native, url.Values{}},
		{"public client with plain", f.native, url.Values{"code_challenge": {verifier}, "code_challenge_method": {"plain"}}},
		{"public client with a challenge and no method (plain)", f.native, url.Values{"code_challenge": {verifier}}},
		{"confidential client with plain", f.app, url.Values{"code_challenge": {verifier}, "code_challenge_method": {"plain"}}},
		{"unknown method", f.native, url.Values{"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S512"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			state := randomHex(t, 16)
			q := url.Values{"response_type": {"code"}, "client_id": {tc.client.id}, "redirect_uri": {f.rp.callback()},
				"scope": {"openid"}, "state": {state}, "nonce": {"n"}}
			for k, v := range tc.params {
				q[k] = v
			}
			pg, _ := alice.open(t, f.BaseURL+"/oidc/authorize?"+q.Encode())
			if !strings.HasPrefix(pg.URL.String(), f.rp.callback()) {
				t.Fatalf("landed on %s (status %d), want an error redirect to the callback", pg.URL, pg.Status)
			}
			f.checkCallbackError(t, f.rp.await(t, "/callback", state), authRequest{state: state}, "invalid_request")
		})
	}

	// With S256 the public client gets tokens, sending only its client_id.
	r := f.authURL(t, f.native, []string{oidc.ScopeOpenID})
	code := f.checkCallback(t, f.authorize(t, alice, r, "alice", alicePassword), r)
	wrong := f.post(t, f.native, "/oidc/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {f.rp.callback()}, "code_verifier": {oauth2.GenerateVerifier()}})
	expectOAuthError(t, wrong, 400, "invalid_grant")
	// A wrong verifier is a failed redemption: the code may be spent
	// (RFC 7636 4.6 leaves it to the server), so a second request is made.
	r = f.authURL(t, f.native, []string{oidc.ScopeOpenID})
	code = f.checkCallback(t, f.authorize(t, alice, r, "alice", alicePassword), r)
	none := f.post(t, f.native, "/oidc/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {f.rp.callback()}})
	expectOAuthError(t, none, 400, "invalid_grant")
	r = f.authURL(t, f.native, []string{oidc.ScopeOpenID})
	code = f.checkCallback(t, f.authorize(t, alice, r, "alice", alicePassword), r)
	l := f.exchange(t, f.native, r, code, oidc.ScopeOpenID)
	if a := f.userinfo(t, l.token.AccessToken); a.Status != 200 || a.str("sub") != l.idToken.Subject {
		t.Errorf("the public client's token on userinfo: %d %s", a.Status, a.Raw)
	}
	// A public client cannot pretend to be confidential, and a
	// confidential one must authenticate.
	expectOAuthError(t, f.post(t, oidcClient{name: "app without secret", id: f.app.id}, "/oidc/token",
		url.Values{"grant_type": {"client_credentials"}}), 401, "invalid_client")
	expectOAuthError(t, f.post(t, oidcClient{name: "wrong secret", id: f.app.id, secret: f.other.secret}, "/oidc/token",
		url.Values{"grant_type": {"client_credentials"}}), 401, "invalid_client")
}

// RP-initiated logout ends the web session and sends the browser to the
// registered post-logout URI with the app's state; afterwards a new
// authorization asks for the password again, and the old session cookie is
// dead on the server too. An unregistered post-logout URI is never
// redirected to.
func TestOIDCEndSession(t *testing.T) {
	f := startOIDCSuite(t, nil)
	alice := newOIDCPerson(t, f.BaseURL)
	l := f.login(t, alice, f.app, "alice", alicePassword, oidc.ScopeOpenID)

	// An unregistered post-logout URI first: no redirect there, and it
	// must not be taken as a reason to keep anyone signed in elsewhere.
	hc := noRedirects()
	hc.Jar = alice.hc.Jar
	bad := url.Values{"id_token_hint": {l.rawID}, "post_logout_redirect_uri": {f.rp.srv.URL + "/evil"}, "state": {"bad"}}
	resp, err := hc.Get(f.BaseURL + "/oidc/end_session?" + bad.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); strings.Contains(loc, "/evil") {
		t.Errorf("end_session redirected to the unregistered post-logout URI: %s", loc)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, f.BaseURL+"/") {
			t.Errorf("end_session with an unregistered URI redirected off the gateway: %s", loc)
		}
	} else if resp.StatusCode != 400 {
		t.Errorf("end_session with an unregistered URI: status %d, want 400 or a redirect to the gateway's own page", resp.StatusCode)
	}
	if n := len(f.rp.all()["/evil"]); n != 0 {
		t.Errorf("the unregistered post-logout URI was reached")
	}

	// A fresh sign-in (the unregistered attempt may have ended the
	// session: either is safe).
	l = f.login(t, alice, f.app, "alice", alicePassword, oidc.ScopeOpenID)
	session := alice.session(t)
	state := randomHex(t, 8)
	good := url.Values{"id_token_hint": {l.rawID}, "post_logout_redirect_uri": {f.rp.loggedOut()}, "state": {state}, "client_id": {f.app.id}}
	pg, _ := alice.open(t, f.BaseURL+"/oidc/end_session?"+good.Encode())
	if !strings.HasPrefix(pg.URL.String(), f.rp.loggedOut()) {
		t.Fatalf("after end_session the browser is at %s, want the post-logout URI", pg.URL)
	}
	if q := f.rp.await(t, "/logged-out", state); q.Get("state") != state {
		t.Errorf("post-logout state %q, want %q", q.Get("state"), state)
	}
	base, _ := url.Parse(f.BaseURL)
	for _, c := range alice.hc.Jar.Cookies(base) {
		if c.Name == "moreid_session" && c.Value == session {
			t.Errorf("the browser still holds the ended session cookie")
		}
	}
	r := f.authURL(t, f.app, []string{oidc.ScopeOpenID})
	if pg, _ := alice.open(t, r.url); !f.onPage(pg, "/oidc/login") {
		t.Errorf("after logout an authorization lands on %s, want the sign-in page", pg.URL)
	}
	// The old cookie replayed by someone who kept it: no session.
	thief := newOIDCPerson(t, f.BaseURL)
	thief.hc.Jar.SetCookies(base, []*http.Cookie{{Name: "moreid_session", Value: session, Path: "/"}})
	r = f.authURL(t, f.app, []string{oidc.ScopeOpenID}, oauth2.SetAuthURLParam("prompt", "none"))
	thief.open(t, r.url)
	f.checkCallbackError(t, f.rp.await(t, "/callback", r.state), r, "login_required")

	// With no post-logout URI the person lands on the kit's page.
	l = f.login(t, alice, f.app, "alice", alicePassword, oidc.ScopeOpenID)
	pg, _ = alice.open(t, f.BaseURL+"/oidc/end_session?"+url.Values{"id_token_hint": {l.rawID}}.Encode())
	if !f.onPage(pg, "/oidc/logged-out") || pg.Status != 200 {
		t.Errorf("end_session without a post-logout URI: %s (status %d), want /oidc/logged-out", pg.URL, pg.Status)
	}
}
