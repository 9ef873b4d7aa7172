package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/net/html/atom"
	"golang.org/x/oauth2"

	"github.com/moreline/moreid/e2e/harness"
)

// This file is the relying party's side of the OpenID Connect tests (SPEC
// section 8, the paths of prompts' paths.md): a callback server on a
// loopback httptest listener, clients registered with moreidctl, and
// golang.org/x/oauth2 + coreos/go-oidc doing what an off-the-shelf app
// does. The person is a pageClient (or Chromium where the test says so).

// relyingParty is the app's web server: it records every request to its
// redirect and post-logout URIs, by path, and answers a plain page.
type relyingParty struct {
	srv *httptest.Server
	mu  sync.Mutex
	got map[string][]url.Values
}

func startRelyingParty(t *testing.T) *relyingParty {
	t.Helper()
	rp := &relyingParty{got: map[string][]url.Values{}}
	rp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.mu.Lock()
		rp.got[r.URL.Path] = append(rp.got[r.URL.Path], r.URL.Query())
		rp.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html><html><body><p id=\"rp\">relying party "+r.URL.Path+"</p></body></html>")
	}))
	t.Cleanup(rp.srv.Close)
	return rp
}

// callback is the registered redirect URI; loggedOut the registered
// post-logout redirect URI.
func (rp *relyingParty) callback() string  { return rp.srv.URL + "/callback" }
func (rp *relyingParty) loggedOut() string { return rp.srv.URL + "/logged-out" }

// await waits up to 15 s for a request to path carrying state and returns
// its query.
func (rp *relyingParty) await(t testing.TB, path, state string) url.Values {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if q := rp.find(path, state); q != nil {
			return q
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relying party got no request to %s with state %q within 15 s (got %v)", path, state, rp.all())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (rp *relyingParty) find(path, state string) url.Values {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for _, q := range rp.got[path] {
		if q.Get("state") == state {
			return q
		}
	}
	return nil
}

func (rp *relyingParty) all() map[string][]url.Values {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return cloneCallbacks(rp.got)
}

func cloneCallbacks(m map[string][]url.Values) map[string][]url.Values {
	out := make(map[string][]url.Values, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

// oidcClient is an API key as an OAuth client. secret is empty for a
// public client.
type oidcClient struct {
	name, id, secret string
}

func (c oidcClient) public() bool { return c.secret == "" }

// createOIDCClient registers a client with moreidctl: `client_id: mlc_…`
// then the key alone on the last line, or, with --public, the client_id
// alone on the last line (SPEC section 8).
func createOIDCClient(t *testing.T, s *harness.Suite, name string, public bool, extra ...string) oidcClient {
	t.Helper()
	args := append([]string{"apikey", "create", "--name", name}, extra...)
	if public {
		args = append(args, "--public")
	}
	out := s.MustCtl(t, "", args...)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	c := oidcClient{name: name}
	for _, l := range lines {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "client_id: "); ok {
			c.id = strings.TrimSpace(v)
		}
	}
	if !strings.HasPrefix(c.id, "mlc_") {
		t.Fatalf("apikey create %v printed no client_id: mlc_… line:\n%s", args, out)
	}
	last := strings.TrimSpace(lines[len(lines)-1])
	switch {
	case public && last != c.id:
		t.Fatalf("apikey create --public: the last line is %q, want the client_id %q alone", last, c.id)
	case !public && !strings.HasPrefix(last, "ml_"):
		t.Fatalf("apikey create: the last line is %q, want the key", last)
	case !public:
		c.secret = last
	}
	return c
}

// oidcSuite is a running suite with alice and bob, a relying party and
// three clients of it: two confidential ones and a public one, all with
// the relying party's callback and post-logout URIs.
type oidcSuite struct {
	*harness.Suite
	rp                 *relyingParty
	app, other, native oidcClient
	// ctx makes x/oauth2 and go-oidc use a client with a timeout.
	ctx      context.Context
	provider *oidc.Provider
	hc       *http.Client
}

func startOIDCSuite(t *testing.T, env map[string]string) *oidcSuite {
	t.Helper()
	rp := startRelyingParty(t)
	s := harness.Start(t, harness.Options{Env: env})
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	s.CreateUser(t, "bob", "Bob", "bob@example.com", bobPassword)
	uris := []string{"--redirect-uri", rp.callback(), "--post-logout-redirect-uri", rp.loggedOut()}
	f := &oidcSuite{
		Suite:  s,
		rp:     rp,
		app:    createOIDCClient(t, s, "OIDC 示例应用", false, uris...),
		other:  createOIDCClient(t, s, "Other OIDC app", false, uris...),
		native: createOIDCClient(t, s, "Native app", true, uris...),
		hc:     &http.Client{Timeout: 10 * time.Second},
	}
	f.ctx = oidc.ClientContext(context.Background(), f.hc)
	ctx, cancel := context.WithTimeout(f.ctx, 15*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, s.BaseURL)
	if err != nil {
		t.Fatalf("go-oidc discovery of %s: %v", s.BaseURL, err)
	}
	f.provider = p
	return f
}

// config is the x/oauth2 configuration an app of client c writes:
// client_secret_basic for a confidential client, client_id in the form for
// a public one.
func (f *oidcSuite) config(c oidcClient, scopes ...string) *oauth2.Config {
	ep := f.provider.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	if c.public() {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	return &oauth2.Config{ClientID: c.id, ClientSecret: c.secret, Endpoint: ep, RedirectURL: f.rp.callback(), Scopes: scopes}
}

// verifier checks ID tokens for client c against the suite's JWKS.
func (f *oidcSuite) verifier(c oidcClient) *oidc.IDTokenVerifier {
	return f.provider.Verifier(&oidc.Config{ClientID: c.id})
}

// authRequest is one authorization request as the app makes it: its URL
// and the secrets the app keeps to finish it.
type authRequest struct {
	url, state, nonce, verifier string
}

// authURL builds an authorization request with state, nonce and PKCE S256,
// plus extra parameters (prompt, max_age…).
func (f *oidcSuite) authURL(t testing.TB, c oidcClient, scopes []string, extra ...oauth2.AuthCodeOption) authRequest {
	t.Helper()
	r := authRequest{state: randomHex(t, 16), nonce: randomHex(t, 16), verifier: oauth2.GenerateVerifier()}
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(r.verifier), oidc.Nonce(r.nonce)}, extra...)
	r.url = f.config(c, scopes...).AuthCodeURL(r.state, opts...)
	return r
}

// oidcPerson is a person's browser without a browser (a pageClient) that
// also records every URL it was redirected through.
type oidcPerson struct {
	*pageClient
	mu      sync.Mutex
	visited []*url.URL
}

func newOIDCPerson(t testing.TB, base string) *oidcPerson {
	t.Helper()
	p := &oidcPerson{pageClient: newPageClient(t, base)}
	p.hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return http.ErrUseLastResponse
		}
		p.mu.Lock()
		p.visited = append(p.visited, req.URL)
		p.mu.Unlock()
		return nil
	}
	return p
}

// open GETs rawURL and returns the page it lands on and the paths it was
// redirected through.
func (p *oidcPerson) open(t testing.TB, rawURL string) (webPage, []string) {
	t.Helper()
	p.mu.Lock()
	p.visited = nil
	p.mu.Unlock()
	pg := p.get(t, rawURL)
	return pg, p.paths()
}

func (p *oidcPerson) paths() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, u := range p.visited {
		out = append(out, u.Path)
	}
	return out
}

// onPage reports whether pg is the gateway's page at path.
func (f *oidcSuite) onPage(pg webPage, path string) bool {
	return strings.HasPrefix(pg.URL.String(), f.BaseURL+path)
}

// signIn submits form#login on pg as userID.
func (p *oidcPerson) signIn(t testing.TB, pg webPage, userID, password string) webPage {
	t.Helper()
	form := pg.byID("login")
	if form == nil || form.DataAtom != atom.Form {
		t.Fatalf("no form#login on %s (status %d):\n%s", pg.URL, pg.Status, pg.Body)
	}
	return p.submit(t, pg, form, url.Values{"user_id": {userID}, "password": {password}})
}

// authorize walks an authorization request as userID: the sign-in page if
// it comes, the consent page if it comes (confirm), and returns the query
// the relying party's callback got.
func (f *oidcSuite) authorize(t testing.TB, p *oidcPerson, r authRequest, userID, password string) url.Values {
	t.Helper()
	pg, _ := p.open(t, r.url)
	if f.onPage(pg, "/oidc/login") {
		pg = p.signIn(t, pg, userID, password)
	}
	if f.onPage(pg, "/oidc/consent") {
		pg = p.press(t, pg, "confirm")
	}
	if !strings.HasPrefix(pg.URL.String(), f.rp.callback()) {
		t.Fatalf("the authorization request did not end on the callback: %s (status %d)\n%s", pg.URL, pg.Status, pg.Body)
	}
	return f.rp.await(t, "/callback", r.state)
}

// checkCallback asserts a successful authorization response: code, the
// app's state and iss (RFC 9207), and returns the code.
func (f *oidcSuite) checkCallback(t testing.TB, q url.Values, r authRequest) string {
	t.Helper()
	if q.Get("error") != "" {
		t.Fatalf("the callback got error=%s (%s)", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != r.state {
		t.Errorf("callback state %q, want %q", q.Get("state"), r.state)
	}
	if q.Get("iss") != f.BaseURL {
		t.Errorf("callback iss %q, want the issuer %q", q.Get("iss"), f.BaseURL)
	}
	if q.Get("code") == "" {
		t.Fatalf("the callback has no code: %v", q)
	}
	return q.Get("code")
}

// checkCallbackError asserts an error authorization response to the
// redirect URI: the error code, the app's state and iss.
func (f *oidcSuite) checkCallbackError(t testing.TB, q url.Values, r authRequest, want string) {
	t.Helper()
	if q.Get("error") != want {
		t.Errorf("callback error=%q (%s), want %q", q.Get("error"), q.Get("error_description"), want)
	}
	if q.Get("code") != "" {
		t.Errorf("an error response carries a code")
	}
	if q.Get("state") != r.state {
		t.Errorf("callback state %q, want %q", q.Get("state"), r.state)
	}
	if q.Get("iss") != f.BaseURL {
		t.Errorf("callback iss %q, want %q", q.Get("iss"), f.BaseURL)
	}
}

// oidcLogin is what the app holds after a finished sign-in.
type oidcLogin struct {
	req     authRequest
	token   *oauth2.Token
	rawID   string
	idToken *oidc.IDToken
}

// exchange redeems code with x/oauth2 and verifies the ID token (and its
// nonce) with go-oidc.
func (f *oidcSuite) exchange(t testing.TB, c oidcClient, r authRequest, code string, scopes ...string) oidcLogin {
	t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, 15*time.Second)
	defer cancel()
	tok, err := f.config(c, scopes...).Exchange(ctx, code, oauth2.VerifierOption(r.verifier))
	if err != nil {
		t.Fatalf("token exchange for %s: %v", c.name, err)
	}
	l := oidcLogin{req: r, token: tok}
	l.rawID, _ = tok.Extra("id_token").(string)
	if l.rawID == "" {
		t.Fatalf("the token response has no id_token")
	}
	if l.idToken, err = f.verifier(c).Verify(ctx, l.rawID); err != nil {
		t.Fatalf("go-oidc verify of the ID token: %v", err)
	}
	if l.idToken.Nonce != r.nonce {
		t.Errorf("ID token nonce %q, want %q", l.idToken.Nonce, r.nonce)
	}
	return l
}

// login runs a whole sign-in of userID for client c through the pages
// (signing in and consenting as needed) and returns the app's tokens.
func (f *oidcSuite) login(t testing.TB, p *oidcPerson, c oidcClient, userID, password string, scopes ...string) oidcLogin {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}
	}
	r := f.authURL(t, c, scopes)
	code := f.checkCallback(t, f.authorize(t, p, r, userID, password), r)
	return f.exchange(t, c, r, code, scopes...)
}

// post sends a form to an OIDC back-channel endpoint as client c:
// client_secret_basic for a confidential client, client_id in the form for
// a public one. The body is JSON, or empty (revocation).
func (f *oidcSuite) post(t testing.TB, c oidcClient, path string, form url.Values) answer {
	t.Helper()
	form = cloneValues(form)
	if c.public() {
		form.Set("client_id", c.id)
	}
	req, err := http.NewRequest("POST", f.BaseURL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if !c.public() {
		req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	}
	return f.send(t, req)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func (f *oidcSuite) send(t testing.TB, req *http.Request) answer {
	t.Helper()
	resp, err := f.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if len(strings.TrimSpace(a.Raw)) > 0 {
		if err := json.Unmarshal(raw, &a.Body); err != nil {
			t.Fatalf("%s %s: answer %d is not a JSON object: %q", req.Method, req.URL.Path, resp.StatusCode, raw)
		}
	}
	return a
}

// refresh is the refresh_token grant.
func (f *oidcSuite) refresh(t testing.TB, c oidcClient, rt string) answer {
	t.Helper()
	return f.post(t, c, "/oidc/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// introspect is RFC 7662 as client c.
func (f *oidcSuite) introspect(t testing.TB, c oidcClient, token string) answer {
	t.Helper()
	a := f.post(t, c, "/oidc/introspect", url.Values{"token": {token}})
	if a.Status != 200 {
		t.Fatalf("introspection: %d %s", a.Status, a.Raw)
	}
	return a
}

// active reports whether the owner client c's introspection says the token
// is active.
func (f *oidcSuite) active(t testing.TB, c oidcClient, token string) bool {
	t.Helper()
	return f.introspect(t, c, token).Body["active"] == true
}

// userinfo calls the OIDC userinfo endpoint with the token as Bearer.
func (f *oidcSuite) userinfo(t testing.TB, token string) answer {
	t.Helper()
	req, err := http.NewRequest("GET", f.BaseURL+"/oidc/userinfo", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return f.send(t, req)
}

// expectOAuthError asserts an RFC 6749 section 5.2 error answer.
func expectOAuthError(t testing.TB, a answer, status int, code string) {
	t.Helper()
	if a.Status != status {
		t.Errorf("status %d, want %d; body %s", a.Status, status, a.Raw)
	}
	if a.str("error") != code {
		t.Errorf("error %q, want %q; body %s", a.str("error"), code, a.Raw)
	}
	if ct := a.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
}

// noRedirects is a client that shows redirects instead of following them.
func noRedirects() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// jwsPart decodes part i (0 header, 1 payload) of a compact JWS.
func jwsPart(t testing.TB, jws string, i int) []byte {
	t.Helper()
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("JWS part %d: %v", i, err)
	}
	return b
}
