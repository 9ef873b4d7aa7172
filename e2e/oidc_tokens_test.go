package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Refresh tokens rotate on every use: each refresh answers a new refresh
// token and a new access token, and the presented one is spent. Presenting
// a rotated-out one kills the family (RFC 9700 4.14.2): the current refresh
// token and every access token of the family stop working.
func TestOIDCRefreshRotationAndReuse(t *testing.T) {
	f := startOIDCSuite(t, nil)
	l := f.login(t, newOIDCPerson(t, f.BaseURL), f.app, "alice", alicePassword)
	rts := []string{l.token.RefreshToken}
	ats := []string{l.token.AccessToken}
	for i := range 3 {
		a := f.refresh(t, f.app, rts[len(rts)-1])
		if a.Status != 200 {
			t.Fatalf("refresh %d: %d %s", i+1, a.Status, a.Raw)
		}
		rt, at := a.str("refresh_token"), a.str("access_token")
		if !strings.HasPrefix(rt, "mlrt_") || !strings.HasPrefix(at, "token_") {
			t.Fatalf("refresh %d answered refresh_token %q, access_token %q", i+1, rt, at)
		}
		for _, old := range rts {
			if rt == old {
				t.Fatalf("refresh %d answered a refresh token already used", i+1)
			}
		}
		for _, old := range ats {
			if at == old {
				t.Fatalf("refresh %d answered an access token already issued", i+1)
			}
		}
		if id := a.str("id_token"); id != "" {
			tok, err := f.verifier(f.app).Verify(f.ctx, id)
			if err != nil || tok.Subject != l.idToken.Subject {
				t.Errorf("refresh %d's ID token: %v (sub %v), want alice's", i+1, err, tok)
			}
		}
		if u := f.userinfo(t, at); u.Status != 200 || u.str("sub") != l.idToken.Subject {
			t.Errorf("refresh %d's access token on userinfo: %d %s", i+1, u.Status, u.Raw)
		}
		rts, ats = append(rts, rt), append(ats, at)
	}
	// Another client cannot use alice's refresh token, and trying does
	// not hurt her family.
	expectOAuthError(t, f.refresh(t, f.other, rts[len(rts)-1]), 400, "invalid_grant")
	if !f.active(t, f.app, ats[len(ats)-1]) {
		t.Fatal("another client's attempt revoked the family")
	}

	// The reuse: the first, rotated-out refresh token.
	expectOAuthError(t, f.refresh(t, f.app, rts[0]), 400, "invalid_grant")
	expectOAuthError(t, f.refresh(t, f.app, rts[len(rts)-1]), 400, "invalid_grant")
	for i, at := range ats {
		if f.active(t, f.app, at) {
			t.Errorf("access token %d of the family is still active after the reuse", i)
		}
		if u := f.userinfo(t, at); u.Status != 401 {
			t.Errorf("access token %d on userinfo after the reuse: %d %s", i, u.Status, u.Raw)
		}
	}
	for i, rt := range rts {
		if f.active(t, f.app, rt) {
			t.Errorf("refresh token %d introspects active after the reuse", i)
		}
	}
	// Alice signs in again and gets a new, working family.
	again := f.login(t, newOIDCPerson(t, f.BaseURL), f.app, "alice", alicePassword)
	if a := f.refresh(t, f.app, again.token.RefreshToken); a.Status != 200 {
		t.Errorf("a new family after the reuse: %d %s", a.Status, a.Raw)
	}
	// Without offline_access there is no refresh token.
	if l := f.login(t, newOIDCPerson(t, f.BaseURL), f.app, "bob", bobPassword, oidc.ScopeOpenID); l.token.RefreshToken != "" {
		t.Errorf("a grant without offline_access has a refresh token")
	}
}

// Introspection (RFC 7662) answers the owner client with active, sub,
// client_id and scope, and any other client, or any unknown token, with
// exactly {"active":false}. Revocation (RFC 7009) of an access token ends
// it; of a refresh token, its family; another client's revocation changes
// nothing and still answers 200.
func TestOIDCIntrospectionAndRevocation(t *testing.T) {
	f := startOIDCSuite(t, nil)
	l := f.login(t, newOIDCPerson(t, f.BaseURL), f.app, "alice", alicePassword)
	at, rt := l.token.AccessToken, l.token.RefreshToken

	a := f.introspect(t, f.app, at)
	if a.Body["active"] != true || a.str("sub") != l.idToken.Subject || a.str("client_id") != f.app.id {
		t.Errorf("the owner's introspection: %s, want active, sub %s, client_id %s", a.Raw, l.idToken.Subject, f.app.id)
	}
	for _, s := range []string{"openid", "profile", "email", "offline_access"} {
		if !strings.Contains(" "+a.str("scope")+" ", " "+s+" ") {
			t.Errorf("introspected scope %q lacks %s", a.str("scope"), s)
		}
	}
	if a.Body["exp"] == nil {
		t.Errorf("introspection has no exp: %s", a.Raw)
	}
	if r := f.introspect(t, f.app, rt); r.Body["active"] != true || r.str("client_id") != f.app.id {
		t.Errorf("the owner's introspection of the refresh token: %s", r.Raw)
	}
	inactive := []struct {
		name   string
		client oidcClient
		token  string
	}{
		{"another client, access token", f.other, at},
		{"another client, refresh token", f.other, rt},
		{"public client, access token", f.native, at},
		{"unknown token", f.app, "token_" + strings.Repeat("a", 56)},
		{"garbage", f.app, "x"},
	}
	for _, tc := range inactive {
		a := f.post(t, tc.client, "/oidc/introspect", url.Values{"token": {tc.token}})
		if tc.client.public() && a.Status == 401 && a.str("error") == "invalid_client" {
			// A public client cannot authenticate, and RFC 7662 2.1
			// lets the endpoint refuse it outright: it learns nothing.
			continue
		}
		if a.Status != 200 {
			t.Errorf("%s: %d %s", tc.name, a.Status, a.Raw)
			continue
		}
		if strings.ReplaceAll(a.Raw, " ", "") != `{"active":false}` && !(len(a.Body) == 1 && a.Body["active"] == false) {
			t.Errorf("%s: %s, want exactly {\"active\":false}", tc.name, a.Raw)
		}
	}
	// Introspection is client-authenticated.
	req, _ := http.NewRequest("POST", f.BaseURL+"/oidc/introspect", strings.NewReader(url.Values{"token": {at}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if a := f.send(t, req); a.Status != 401 || a.Body["active"] == true {
		t.Errorf("introspection without client authentication: %d %s, want 401", a.Status, a.Raw)
	}

	// Another client's revocation: 200, and nothing changes.
	for _, tok := range []string{at, rt} {
		if a := f.post(t, f.other, "/oidc/revoke", url.Values{"token": {tok}}); a.Status != 200 {
			t.Errorf("another client's revocation: %d %s, want 200", a.Status, a.Raw)
		}
	}
	if !f.active(t, f.app, at) || !f.active(t, f.app, rt) {
		t.Fatal("another client's revocation ended the tokens")
	}
	// An unknown token: 200 (RFC 7009 2.2).
	if a := f.post(t, f.app, "/oidc/revoke", url.Values{"token": {"token_unknown"}}); a.Status != 200 {
		t.Errorf("revoking an unknown token: %d %s", a.Status, a.Raw)
	}

	// Revoking the access token ends it, and only it.
	if a := f.post(t, f.app, "/oidc/revoke", url.Values{"token": {at}, "token_type_hint": {"access_token"}}); a.Status != 200 {
		t.Fatalf("revoke the access token: %d %s", a.Status, a.Raw)
	}
	if f.active(t, f.app, at) {
		t.Error("the revoked access token is still active")
	}
	if u := f.userinfo(t, at); u.Status != 401 {
		t.Errorf("the revoked access token on userinfo: %d %s", u.Status, u.Raw)
	}
	r := f.refresh(t, f.app, rt)
	if r.Status != 200 {
		t.Fatalf("refresh after revoking only the access token: %d %s", r.Status, r.Raw)
	}
	rt2, at2 := r.str("refresh_token"), r.str("access_token")

	// Revoking the refresh token ends its family.
	if a := f.post(t, f.app, "/oidc/revoke", url.Values{"token": {rt2}, "token_type_hint": {"refresh_token"}}); a.Status != 200 {
		t.Fatalf("revoke the refresh token: %d %s", a.Status, a.Raw)
	}
	expectOAuthError(t, f.refresh(t, f.app, rt2), 400, "invalid_grant")
	if f.active(t, f.app, rt2) {
		t.Error("the revoked refresh token introspects active")
	}
	if f.active(t, f.app, at2) {
		t.Error("the access token of a revoked refresh family is still active")
	}
	// A wrong hint does not save a token (RFC 7009 2.1).
	l = f.login(t, newOIDCPerson(t, f.BaseURL), f.app, "alice", alicePassword)
	f.post(t, f.app, "/oidc/revoke", url.Values{"token": {l.token.RefreshToken}, "token_type_hint": {"access_token"}})
	expectOAuthError(t, f.refresh(t, f.app, l.token.RefreshToken), 400, "invalid_grant")
}

// client_credentials: a token for the app itself, with no user. It
// introspects active for the client (without sub), is nobody's on
// /api/oauth/userinfo and /oidc/userinfo, and has no refresh or ID token.
func TestOIDCClientCredentials(t *testing.T) {
	f := startOIDCSuite(t, nil)
	tests := []struct {
		name string
		form url.Values
		post bool // client_secret_post instead of basic
	}{
		{"client_secret_basic", url.Values{"grant_type": {"client_credentials"}}, false},
		{"client_secret_post", url.Values{"grant_type": {"client_credentials"}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a answer
			if tc.post {
				form := cloneValues(tc.form)
				form.Set("client_id", f.app.id)
				form.Set("client_secret", f.app.secret)
				req, _ := http.NewRequest("POST", f.BaseURL+"/oidc/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				a = f.send(t, req)
			} else {
				a = f.post(t, f.app, "/oidc/token", tc.form)
			}
			if a.Status != 200 {
				t.Fatalf("client_credentials: %d %s", a.Status, a.Raw)
			}
			tok := a.str("access_token")
			if !strings.HasPrefix(tok, "token_") || !strings.EqualFold(a.str("token_type"), "Bearer") {
				t.Errorf("client_credentials answered %s", a.Raw)
			}
			if a.str("refresh_token") != "" || a.str("id_token") != "" {
				t.Errorf("client_credentials answered a refresh or ID token: %s", a.Raw)
			}
			if n, _ := a.Body["expires_in"].(float64); n <= 0 {
				t.Errorf("expires_in %v", a.Body["expires_in"])
			}
			in := f.introspect(t, f.app, tok)
			if in.Body["active"] != true || in.str("client_id") != f.app.id || in.str("sub") != "" && in.str("sub") != f.app.id {
				t.Errorf("the client's introspection of its own token: %s", in.Raw)
			}
			if o := f.introspect(t, f.other, tok); o.Body["active"] != false {
				t.Errorf("another client's introspection: %s", o.Raw)
			}
			expectBearerRefused(t, newClient(f.BaseURL, "").do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", "Bearer "+tok))
			if u := f.userinfo(t, tok); u.Status != 401 {
				t.Errorf("a client token on /oidc/userinfo: %d %s, want 401", u.Status, u.Raw)
			}
		})
	}
	// A public client has no credentials to present: unauthorized_client
	// (RFC 6749 5.2: not allowed this grant) or invalid_client.
	if a := f.post(t, f.native, "/oidc/token", url.Values{"grant_type": {"client_credentials"}}); !(a.Status == 400 && a.str("error") == "unauthorized_client") &&
		!(a.Status == 401 && a.str("error") == "invalid_client") {
		t.Errorf("client_credentials by a public client: %d %s, want 400 unauthorized_client or 401 invalid_client", a.Status, a.Raw)
	}
	// The password grant does not exist.
	a := f.post(t, f.app, "/oidc/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}})
	expectOAuthError(t, a, 400, "unsupported_grant_type")
}

// The OIDC access token is Moreid's token: it works on /api/oauth/userinfo
// and, with the same key, /api/oauth/token/user; another key's call is
// refused. `moreidctl user revoke-tokens` ends OIDC access and refresh
// tokens.
func TestOIDCTokenOnAPIOAuth(t *testing.T) {
	f := startOIDCSuite(t, nil)
	l := f.login(t, newOIDCPerson(t, f.BaseURL), f.app, "alice", alicePassword)
	bob := f.login(t, newOIDCPerson(t, f.BaseURL), f.app, "bob", bobPassword)
	bearer := "Bearer " + l.token.AccessToken

	u := newClient(f.BaseURL, "").do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", bearer)
	if p := expectProfile(t, u); p["user_id"] != "alice" {
		t.Errorf("/api/oauth/userinfo with the OIDC token: %s", u.Raw)
	}
	tu := newClient(f.BaseURL, f.app.secret).do(t, "GET", "/api/oauth/token/user", nil, "Authorization", bearer)
	if tu.Status != 200 {
		t.Fatalf("/api/oauth/token/user with the client's key: %d %s", tu.Status, tu.Raw)
	}
	if user, _ := tu.Body["user"].(map[string]any); user["user_id"] != "alice" || jsonNumber(user["id"]) != l.idToken.Subject {
		t.Errorf("/api/oauth/token/user: %s, want alice with id = sub %s", tu.Raw, l.idToken.Subject)
	}
	if o := newClient(f.BaseURL, f.other.secret).do(t, "GET", "/api/oauth/token/user", nil, "Authorization", bearer); o.Status != 401 {
		t.Errorf("/api/oauth/token/user with another key: %d %s, want 401", o.Status, o.Raw)
	}

	f.MustCtl(t, "", "user", "revoke-tokens", "alice")
	expectBearerRefused(t, newClient(f.BaseURL, "").do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", bearer))
	if u := f.userinfo(t, l.token.AccessToken); u.Status != 401 {
		t.Errorf("/oidc/userinfo after revoke-tokens: %d %s", u.Status, u.Raw)
	}
	if f.active(t, f.app, l.token.AccessToken) {
		t.Error("the OIDC access token introspects active after revoke-tokens")
	}
	expectOAuthError(t, f.refresh(t, f.app, l.token.RefreshToken), 400, "invalid_grant")
	// Bob's are untouched.
	if a := f.refresh(t, f.app, bob.token.RefreshToken); a.Status != 200 {
		t.Errorf("bob's refresh after alice's revoke-tokens: %d %s", a.Status, a.Raw)
	}
	if !f.active(t, f.app, bob.token.AccessToken) {
		t.Error("bob's access token ended with alice's")
	}
}

// raceAnswer is one racer's answer, without the testing.T (racers must not
// call t.Fatal off the test's goroutine).
type raceAnswer struct {
	status int
	body   map[string]any
	err    error
}

func (f *oidcSuite) racePost(c oidcClient, form url.Values) raceAnswer {
	req, err := http.NewRequest("POST", f.BaseURL+"/oidc/token", strings.NewReader(form.Encode()))
	if err != nil {
		return raceAnswer{err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	resp, err := f.hc.Do(req)
	if err != nil {
		return raceAnswer{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	a := raceAnswer{status: resp.StatusCode, err: err}
	if err == nil {
		a.err = json.Unmarshal(raw, &a.body)
	}
	return a
}

// 64 concurrent redemptions of one code, and 64 concurrent uses of one
// refresh token: exactly one 200 each time, every other answer
// invalid_grant, and afterwards the winner's tokens are inactive, since the
// replays revoke what the code (or the refresh token) issued.
func TestOIDCConcurrentRedemption(t *testing.T) {
	f := startOIDCSuite(t, nil)
	const n = 64
	race := func(t *testing.T, form url.Values) (winner map[string]any) {
		t.Helper()
		answers := atOnce(n, func(int) raceAnswer { return f.racePost(f.app, form) })
		wins := 0
		for _, a := range answers {
			switch {
			case a.err != nil:
				t.Errorf("a racer failed: %v", a.err)
			case a.status == 200:
				wins++
				winner = a.body
			case a.status != 400 || a.body["error"] != "invalid_grant":
				t.Errorf("a loser got %d %v, want 400 invalid_grant", a.status, a.body)
			}
		}
		if wins != 1 {
			t.Fatalf("%d of %d concurrent redemptions succeeded, want exactly 1", wins, n)
		}
		return winner
	}
	tokenOf := func(m map[string]any, field string) string { s, _ := m[field].(string); return s }

	t.Run("code", func(t *testing.T) {
		p := newOIDCPerson(t, f.BaseURL)
		r := f.authURL(t, f.app, []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess})
		code := f.checkCallback(t, f.authorize(t, p, r, "alice", alicePassword), r)
		w := race(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {f.rp.callback()}, "code_verifier": {r.verifier}})
		if at := tokenOf(w, "access_token"); f.active(t, f.app, at) {
			t.Error("the winner's access token is still active after 63 replays")
		}
		expectOAuthError(t, f.refresh(t, f.app, tokenOf(w, "refresh_token")), 400, "invalid_grant")
	})
	t.Run("refresh token", func(t *testing.T) {
		l := f.login(t, newOIDCPerson(t, f.BaseURL), f.app, "alice", alicePassword)
		w := race(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {l.token.RefreshToken}})
		if at := tokenOf(w, "access_token"); f.active(t, f.app, at) {
			t.Error("the winner's access token is still active after 63 reuses")
		}
		expectOAuthError(t, f.refresh(t, f.app, tokenOf(w, "refresh_token")), 400, "invalid_grant")
		if f.active(t, f.app, l.token.AccessToken) {
			t.Error("the family's first access token is still active after the reuse")
		}
	})
}

// A key's whitelist applies to the back channel (token, introspection,
// revocation, device authorization), never to the browser's front channel:
// a client whitelisted elsewhere still gets its person through the pages
// and a code, and every back-channel call from here is refused.
func TestOIDCWhitelistBackChannelOnly(t *testing.T) {
	f := startOIDCSuite(t, nil)
	office := createOIDCClient(t, f.Suite, "Office OIDC app", false, "--redirect-uri", f.rp.callback(), "--whitelist", "203.0.113.7,2001:db8::/32")
	r := f.authURL(t, office, []string{oidc.ScopeOpenID})
	code := f.checkCallback(t, f.authorize(t, newOIDCPerson(t, f.BaseURL), r, "alice", alicePassword), r)

	calls := []struct {
		name, path string
		form       url.Values
	}{
		{"code", "/oidc/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {f.rp.callback()}, "code_verifier": {r.verifier}}},
		{"client_credentials", "/oidc/token", url.Values{"grant_type": {"client_credentials"}}},
		{"introspection", "/oidc/introspect", url.Values{"token": {"token_x"}}},
		{"revocation", "/oidc/revoke", url.Values{"token": {"token_x"}}},
		{"device authorization", "/oidc/device_authorization", url.Values{"scope": {"openid"}}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			a := f.post(t, office, c.path, c.form)
			expectOAuthError(t, a, 401, "invalid_client")
			if a.str("access_token") != "" || a.Body["active"] == true {
				t.Errorf("a whitelisted-out call was answered: %s", a.Raw)
			}
		})
	}
}

// Every grant, refusal and revocation is in the audit trail, and the trail
// names no secret.
func TestOIDCAuditTrail(t *testing.T) {
	f := startOIDCSuite(t, nil)
	l := f.login(t, newOIDCPerson(t, f.BaseURL), f.app, "alice", alicePassword)
	code := f.rp.find("/callback", l.req.state).Get("code")
	expectOAuthError(t, f.post(t, f.app, "/oidc/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {f.rp.callback()}, "code_verifier": {l.req.verifier}}), 400, "invalid_grant")
	l = f.login(t, newOIDCPerson(t, f.BaseURL), f.app, "alice", alicePassword)
	rotated := f.refresh(t, f.app, l.token.RefreshToken)
	if rotated.Status != 200 {
		t.Fatalf("refresh: %d %s", rotated.Status, rotated.Raw)
	}
	expectOAuthError(t, f.refresh(t, f.app, l.token.RefreshToken), 400, "invalid_grant")
	l = f.login(t, newOIDCPerson(t, f.BaseURL), f.app, "alice", alicePassword)
	f.post(t, f.app, "/oidc/revoke", url.Values{"token": {l.token.AccessToken}})
	cc := f.post(t, f.app, "/oidc/token", url.Values{"grant_type": {"client_credentials"}})
	d := f.startDevice(t, f.app, "openid")

	want := []string{"oidc.authorize", "oidc.signin", "oidc.consent", "oidc.code", "oidc.token", "oidc.code_replay",
		"oidc.refresh_reuse", "oidc.revoke", "oidc.client_credentials", "oidc.device"}
	var out string
	var missing []string
	// The trail is written in batches (250 ms): wait for it, boundedly.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out = f.MustCtl(t, "", "audit", "list", "--since", "1h", "--limit", "1000", "--json")
		var rows []auditRow
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("audit list --json: %v\n%s", err, out)
		}
		missing = missing[:0]
		for _, w := range want {
			if !slices.ContainsFunc(rows, func(r auditRow) bool { return r.Event == w }) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(missing) > 0 {
		t.Errorf("the audit trail lacks %v:\n%s", missing, out)
	}
	for name, s := range map[string]string{"code": code, "access token": l.token.AccessToken, "refresh token": l.token.RefreshToken,
		"rotated refresh token": rotated.str("refresh_token"), "client token": cc.str("access_token"), "device code": d.code,
		"user code": d.userCode, "client secret": f.app.secret, "password": alicePassword} {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("the audit trail holds the %s", name)
		}
	}
}
