package e2e

import (
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// TestOIDCLogsHoldNoSecrets is TestLogsHoldNoSecrets for the OpenID Connect
// provider (SPEC sections 5 and 8): a suite logging at debug level runs the
// code flow, a code replay, refresh rotation and reuse, introspection,
// revocation, userinfo and a device authorization, then stops, and no
// secret it handled is in anything it logged.
func TestOIDCLogsHoldNoSecrets(t *testing.T) {
	f := startOIDCSuite(t, nil)
	if f.Env["MOREID_LOG_LEVEL"] != "debug" {
		t.Fatalf("the suite logs at %q, want debug", f.Env["MOREID_LOG_LEVEL"])
	}
	secrets := map[string]string{}
	keep := func(name, value string) {
		t.Helper()
		if value == "" {
			t.Fatalf("the %s is empty", name)
		}
		secrets[name] = value
	}
	keep("password", alicePassword)
	keep("client secret", f.app.secret)
	keep("other client's secret", f.other.secret)
	scopes := []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}

	// The code flow through the pages, keeping the code (replayed below).
	p := newOIDCPerson(t, f.BaseURL)
	r := f.authURL(t, f.app, scopes)
	code := f.checkCallback(t, f.authorize(t, p, r, "alice", alicePassword), r)
	l := f.exchange(t, f.app, r, code, scopes...)
	keep("authorization code", code)
	keep("PKCE verifier", r.verifier)
	keep("access token", l.token.AccessToken)
	keep("refresh token", l.token.RefreshToken)
	keep("ID token signature", l.rawID[strings.LastIndex(l.rawID, ".")+1:])

	// A second client's login, its tokens introspected by the first and
	// revoked by their own client.
	other := f.login(t, p, f.other, "alice", alicePassword, scopes...)
	keep("other client's access token", other.token.AccessToken)
	keep("other client's refresh token", other.token.RefreshToken)
	if f.active(t, f.app, other.token.AccessToken) {
		t.Error("one client introspected another's token as active")
	}
	if a := f.post(t, f.other, "/oidc/revoke", url.Values{"token": {other.token.RefreshToken}}); a.Status != 200 {
		t.Errorf("revoke: %d %s", a.Status, a.Raw)
	}

	// Refresh rotation, then the rotated-out token again (reuse).
	a := f.refresh(t, f.app, l.token.RefreshToken)
	keep("rotated refresh token", a.str("refresh_token"))
	keep("refreshed access token", a.str("access_token"))
	if u := f.userinfo(t, a.str("access_token")); u.Status != 200 {
		t.Errorf("userinfo: %d %s", u.Status, u.Raw)
	}
	expectOAuthError(t, f.refresh(t, f.app, l.token.RefreshToken), 400, "invalid_grant")
	// And the code once more: a replay (it revokes what the code issued).
	expectOAuthError(t, f.post(t, f.app, "/oidc/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {r.verifier}, "redirect_uri": {f.rp.callback()},
	}), 400, "invalid_grant")

	// A device authorization and a poll before approval.
	d := f.startDevice(t, f.app, "openid")
	keep("device code", d.code)
	keep("user code", d.userCode)
	keep("user code without its dash", strings.ReplaceAll(d.userCode, "-", ""))
	expectOAuthError(t, f.poll(t, d), 400, "authorization_pending")

	base, err := url.Parse(f.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.hc.Jar.Cookies(base) {
		keep("cookie "+c.Name, c.Value)
	}

	// Stop the suite so that every line is on disk.
	procs := f.Processes()
	for i := len(procs) - 1; i >= 0; i-- {
		proc := f.Proc(procs[i], 0)
		if err := proc.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := proc.Wait(10 * time.Second); code != 0 {
			t.Errorf("%s exited with %d", procs[i], code)
		}
	}
	logs := f.Logs()
	for _, want := range []string{`"path":"/oidc/token"`, `"path":"/oidc/authorize"`, `"path":"/oidc/device_authorization"`, `"level":"DEBUG"`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("the suite's logs lack %s: not the logs of this run?", want)
		}
	}
	for name, value := range secrets {
		if i := strings.Index(logs, value); i >= 0 {
			context := logs[max(0, i-200):min(len(logs), i+len(value)+50)]
			t.Errorf("the logs hold the %s: …%s…", name, strings.ReplaceAll(context, value, "<"+name+">"))
		}
	}
	t.Logf("%d secrets checked against %d bytes of logs", len(secrets), len(logs))
}
