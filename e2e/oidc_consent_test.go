package e2e

import (
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// An operator withdraws a user's consent with `moreidctl user
// withdraw-consent` (SPEC section 8: consent is remembered "until the user
// or an operator withdraws it"). Withdrawing one app's consent ends that
// app's access and refresh tokens for the user, and prompt=none for it
// answers consent_required while the user's session lives on; another
// app's consent, and another user's tokens, are untouched.
func TestOIDCConsentWithdrawal(t *testing.T) {
	f := startOIDCSuite(t, nil)
	scopes := []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}
	alice := newOIDCPerson(t, f.BaseURL)
	// alice signs in and consents to both apps on the pages; bob to app.
	app := f.login(t, alice, f.app, "alice", alicePassword, scopes...)
	other := f.login(t, alice, f.other, "alice", alicePassword, scopes...)
	bob := f.login(t, newOIDCPerson(t, f.BaseURL), f.app, "bob", bobPassword, scopes...)
	for _, l := range []oidcLogin{app, other, bob} {
		if !strings.HasPrefix(l.token.RefreshToken, "mlrt_") {
			t.Fatalf("offline_access gave no mlrt_ refresh token: %q", l.token.RefreshToken)
		}
	}

	// silent is an authorization request for client c with prompt=none: the
	// callback's query, with no page shown on the way.
	silent := func(t *testing.T, c oidcClient) (authRequest, map[string][]string) {
		t.Helper()
		r := f.authURL(t, c, scopes, oauth2.SetAuthURLParam("prompt", "none"))
		pg, paths := alice.open(t, r.url)
		if !strings.HasPrefix(pg.URL.String(), f.rp.callback()) {
			t.Fatalf("prompt=none for %s landed on %s (via %v), want the callback", c.name, pg.URL, paths)
		}
		return r, f.rp.await(t, "/callback", r.state)
	}
	// ended asserts that a login's tokens are refused everywhere.
	ended := func(t *testing.T, what string, c oidcClient, l oidcLogin) {
		t.Helper()
		if u := f.userinfo(t, l.token.AccessToken); u.Status != 401 {
			t.Errorf("%s: /oidc/userinfo answers %d %s, want 401", what, u.Status, u.Raw)
		}
		expectBearerRefused(t, newClient(f.BaseURL, "").do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", "Bearer "+l.token.AccessToken))
		expectOAuthError(t, f.refresh(t, c, l.token.RefreshToken), 400, "invalid_grant")
	}
	// alive asserts that a login's access token still works on both
	// userinfo endpoints and its refresh token still refreshes; it returns
	// the login with the rotated refresh token.
	alive := func(t *testing.T, what string, c oidcClient, l oidcLogin) oidcLogin {
		t.Helper()
		if u := f.userinfo(t, l.token.AccessToken); u.Status != 200 || u.str("sub") != l.idToken.Subject {
			t.Errorf("%s: /oidc/userinfo answers %d %s, want 200 for sub %s", what, u.Status, u.Raw, l.idToken.Subject)
		}
		if u := newClient(f.BaseURL, "").do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", "Bearer "+l.token.AccessToken); u.Status != 200 {
			t.Errorf("%s: /api/oauth/userinfo answers %d %s, want 200", what, u.Status, u.Raw)
		}
		a := f.refresh(t, c, l.token.RefreshToken)
		if a.Status != 200 || !strings.HasPrefix(a.str("refresh_token"), "mlrt_") {
			t.Fatalf("%s: refresh answers %d %s, want 200 and a new refresh token", what, a.Status, a.Raw)
		}
		l.token = &oauth2.Token{AccessToken: a.str("access_token"), RefreshToken: a.str("refresh_token")}
		return l
	}

	// Withdrawing the other app's consent leaves app's.
	var again oidcLogin // app's second login, by prompt=none
	out := f.MustCtl(t, "", "user", "withdraw-consent", "alice", "--client", f.other.id)
	if want := "withdrew the consent of 1 app for user alice (client " + f.other.id + ")\n"; out != want {
		t.Errorf("withdraw-consent --client other printed %q, want %q", out, want)
	}
	t.Run("the other app's tokens end", func(t *testing.T) { ended(t, "other", f.other, other) })
	t.Run("the other app must ask again", func(t *testing.T) {
		r, q := silent(t, f.other)
		f.checkCallbackError(t, q, r, "consent_required")
	})
	t.Run("app keeps its consent and tokens", func(t *testing.T) {
		app = alive(t, "app", f.app, app)
		r, q := silent(t, f.app)
		again = f.exchange(t, f.app, r, f.checkCallback(t, q, r), scopes...)
	})
	if t.Failed() {
		t.FailNow()
	}

	// Withdrawing app's consent ends alice's tokens of app, and only hers.
	out = f.MustCtl(t, "", "user", "withdraw-consent", "alice", "--client", f.app.id)
	if want := "withdrew the consent of 1 app for user alice (client " + f.app.id + ")\n"; out != want {
		t.Errorf("withdraw-consent --client app printed %q, want %q", out, want)
	}
	t.Run("app's tokens end", func(t *testing.T) {
		ended(t, "app", f.app, app)
		ended(t, "app, second login", f.app, again)
	})
	t.Run("bob's tokens of app live on", func(t *testing.T) { bob = alive(t, "bob", f.app, bob) })
	t.Run("app must ask again, the session lives on", func(t *testing.T) {
		r, q := silent(t, f.app)
		f.checkCallbackError(t, q, r, "consent_required")
		// Without prompt=none the consent page comes straight away: alice
		// is still signed in, only her consent is gone.
		r = f.authURL(t, f.app, scopes)
		pg, paths := alice.open(t, r.url)
		if !f.onPage(pg, "/oidc/consent") {
			t.Fatalf("authorize after the withdrawal landed on %s (via %v), want the consent page", pg.URL, paths)
		}
		for _, p := range paths {
			if strings.HasPrefix(p, "/oidc/login") {
				t.Errorf("the sign-in page was shown: the withdrawal ended the session (via %v)", paths)
			}
		}
		alice.press(t, pg, "confirm")
		q = f.rp.await(t, "/callback", r.state)
		renewed := f.exchange(t, f.app, r, f.checkCallback(t, q, r), scopes...)
		alive(t, "app after consenting again", f.app, renewed)
	})

	// Without --client every app's consent ends; alice now holds only app's
	// (given again above).
	out = f.MustCtl(t, "", "user", "withdraw-consent", "alice")
	if want := "withdrew the consent of 1 app for user alice\n"; out != want {
		t.Errorf("withdraw-consent printed %q, want %q", out, want)
	}
	t.Run("after withdrawing every app", func(t *testing.T) {
		for _, c := range []oidcClient{f.app, f.other} {
			r, q := silent(t, c)
			f.checkCallbackError(t, q, r, "consent_required")
		}
	})
}
