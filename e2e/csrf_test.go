package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/moreline/moreid/e2e/harness"
	"github.com/moreline/moreid/proto/wire"
)

// TestSignInFormRefusesPlantedCSRFPair is finding 12 of issue 11: someone
// who can set a cookie in the victim's browser (a sibling subdomain, a
// plain-HTTP hop) plants moreid_csrf and makes the browser post the sign-in
// form with the same value. The gateway must answer 403 csrf_failed and
// open no session, while the real form, whose pair the gateway signed,
// still signs in (and does on a second gateway sharing MOREID_CSRF_KEY).
func TestSignInFormRefusesPlantedCSRFPair(t *testing.T) {
	s := harness.Start(t, harness.Options{Instances: 2, Env: map[string]string{
		"MOREID_CSRF_KEY": "e2e-shared-csrf-key-0123456789abcdefghij",
	}})
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	app := newClient(s.BaseURL, s.CreateKey(t, "CSRF app"))

	planted := []struct{ name, value string }{
		{"an unsigned value", strings.Repeat("C", 32)},
		{"the signed shape with a made-up signature", strings.Repeat("n", 22) + "." + strings.Repeat("A", 43)},
	}
	for _, tc := range planted {
		t.Run(tc.name, func(t *testing.T) {
			_, uca := app.startSafeLogin(t)
			victim := newPageClient(t, s.BaseURL)
			page, _ := url.Parse(s.BaseURL + "/api/oauth/user_confirmation")
			victim.hc.Jar.SetCookies(page, []*http.Cookie{{Name: "moreid_csrf", Value: tc.value, Path: page.Path}})
			form := url.Values{"action": {"login"}, "uca": {uca}, "csrf_token": {tc.value},
				"user_id": {"alice"}, "password": {alicePassword}}
			req, err := http.NewRequest("POST", page.String(), strings.NewReader(form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Request-Id", "csrf-planted-"+strings.ReplaceAll(tc.name, " ", "-"))
			got := victim.send(t, req)
			if got.Status != http.StatusForbidden {
				t.Fatalf("planted pair: status %d, want 403:\n%s", got.Status, got.Body)
			}
			for _, ck := range victim.hc.Jar.Cookies(page) {
				if ck.Name == wire.SessionCookie {
					t.Fatal("a planted pair opened a session")
				}
			}
			lines := loggedRequest(t, s, "gateway", req.Header.Get("X-Request-Id"))
			if len(lines) != 1 || lines[0]["error"] != "csrf_failed" {
				t.Fatalf("gateway logged %v for the planted pair, want one line with error csrf_failed", lines)
			}
		})
	}

	t.Run("the real form, posted to another gateway", func(t *testing.T) {
		_, uca := app.startSafeLogin(t)
		person := newPageClient(t, s.BaseURL)
		p := person.get(t, confirmationURL(s.BaseURL, uca))
		form := p.byID("login")
		if form == nil {
			t.Fatalf("no sign-in form:\n%s", p.Body)
		}
		// The second gateway is on another port of the same host: the jar
		// sends it the cookie the first one set, as a browser behind one
		// load balancer would.
		other, _ := url.Parse(s.BaseURLs[1] + p.URL.RequestURI())
		p.URL = other
		after := person.submit(t, p, form, url.Values{"user_id": {"alice"}, "password": {alicePassword}})
		if after.Status != http.StatusOK || after.byID("confirm") == nil {
			t.Fatalf("real form on the second gateway: status %d:\n%s", after.Status, after.Body)
		}
	})
}

// loggedRequest waits (logs are written in batches) for the access log line
// of a request and returns every line with its id.
func loggedRequest(t *testing.T, s *harness.Suite, component, id string) []logLine {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines := byRequest(componentLog(t, s, component), "http")[id]
		if len(lines) > 0 || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(20 * time.Millisecond)
	}
}
