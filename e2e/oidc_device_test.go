package e2e

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// userCodeFormat is SPEC section 8's user code: 8 letters without vowels,
// shown as XXXX-XXXX.
var userCodeFormat = regexp.MustCompile(`^[B-DF-HJ-NP-TV-Z]{4}-[B-DF-HJ-NP-TV-Z]{4}$`)

const deviceGrant = "urn:ietf:params:oauth:grant-type:device_code"

// device is one device authorization as the device holds it.
type device struct {
	code, userCode, uri, uriComplete string
	interval                         time.Duration
	lastPoll                         time.Time
	client                           oidcClient
}

func (f *oidcSuite) startDevice(t *testing.T, c oidcClient, scope string) *device {
	t.Helper()
	a := f.post(t, c, "/oidc/device_authorization", url.Values{"scope": {scope}})
	if a.Status != 200 {
		t.Fatalf("device authorization: %d %s", a.Status, a.Raw)
	}
	d := &device{code: a.str("device_code"), userCode: a.str("user_code"), uri: a.str("verification_uri"),
		uriComplete: a.str("verification_uri_complete"), client: c}
	if d.code == "" || !userCodeFormat.MatchString(d.userCode) {
		t.Fatalf("device authorization answered device_code %q, user_code %q (want XXXX-XXXX without vowels)", d.code, d.userCode)
	}
	if d.uri != f.BaseURL+"/device" {
		t.Errorf("verification_uri %q, want %s/device", d.uri, f.BaseURL)
	}
	if u, err := url.Parse(d.uriComplete); err != nil || !strings.HasPrefix(d.uriComplete, d.uri+"?") ||
		strings.ReplaceAll(u.Query().Get("user_code"), "-", "") != strings.ReplaceAll(d.userCode, "-", "") {
		t.Errorf("verification_uri_complete %q, want %s?user_code=%s", d.uriComplete, d.uri, d.userCode)
	}
	if n, _ := a.Body["expires_in"].(float64); n <= 0 {
		t.Errorf("expires_in %v", a.Body["expires_in"])
	}
	n, _ := a.Body["interval"].(float64)
	if n <= 0 {
		n = 5 // RFC 8628 3.2: the default when absent
	}
	d.interval = time.Duration(n) * time.Second
	return d
}

// poll asks for the tokens once, now, and keeps the RFC's bookkeeping: a
// slow_down adds 5 s to the interval (RFC 8628 3.5).
func (f *oidcSuite) poll(t *testing.T, d *device) answer {
	t.Helper()
	a := f.post(t, d.client, "/oidc/token", url.Values{"grant_type": {deviceGrant}, "device_code": {d.code}})
	d.lastPoll = time.Now()
	if a.str("error") == "slow_down" {
		d.interval += 5 * time.Second
	}
	return a
}

// pollPolitely waits out the interval since the last poll, as a device
// must, then polls. The wait is the server's own minimum, not a guess at a
// race window.
func (f *oidcSuite) pollPolitely(t *testing.T, d *device) answer {
	t.Helper()
	if wait := time.Until(d.lastPoll.Add(d.interval + 200*time.Millisecond)); wait > 0 {
		time.Sleep(wait)
	}
	return f.poll(t, d)
}

// The device flow (RFC 8628): pending before approval, slow_down when
// polling too fast, approval in the browser on /device (sign-in, the code,
// consent), the tokens once, then invalid_grant or expired_token; a denied
// one, entered by hand in lower case without the dash, gives
// access_denied.
func TestOIDCDeviceFlow(t *testing.T) {
	ctx := newBrowser(t)
	f := startOIDCSuite(t, nil)

	d := f.startDevice(t, f.app, "openid profile offline_access")
	first := f.poll(t, d)
	if first.str("error") == "slow_down" {
		// A server may count the authorization itself as the first
		// poll; then the pending answer comes after the interval.
		first = f.pollPolitely(t, d)
	}
	expectOAuthError(t, first, 400, "authorization_pending")
	expectOAuthError(t, f.poll(t, d), 400, "slow_down")

	// Approval: the verification_uri_complete, a person without a session.
	browse(t, ctx, "device page", chromedp.Navigate(d.uriComplete), chromedp.WaitVisible(chromedp.CSS(`form#login`)))
	browse(t, ctx, "sign in on /device",
		chromedp.SendKeys(chromedp.CSS(`form#login input[name="user_id"]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`form#login input[name="password"]`), alicePassword),
	)
	navigate(t, ctx, "sign in on /device", 200, chromedp.SendKeys(chromedp.CSS(`form#login input[name="password"]`), "\r"))
	browse(t, ctx, "the code form", chromedp.WaitVisible(chromedp.CSS(`form#device input[name="user_code"]`)))
	prefilled, err := chromedp.Run(timeout(t, ctx), chromedp.Value(chromedp.CSS(`form#device input[name="user_code"]`)))
	if err != nil {
		t.Fatal(err)
	}
	if norm(prefilled) != norm(d.userCode) {
		t.Errorf("form#device is prefilled with %q, want %q", prefilled, d.userCode)
	}
	screenshot(t, ctx, "oidc-device")
	navigate(t, ctx, "submit the code", 200, chromedp.Submit(chromedp.CSS(`form#device`)))
	browse(t, ctx, "device consent", chromedp.WaitVisible(chromedp.CSS(`button#confirm`)), chromedp.WaitVisible(chromedp.CSS(`button#deny`)))
	if text := pageText(t, ctx); !strings.Contains(text, f.app.name) {
		t.Errorf("the device consent page does not name the app %q:\n%s", f.app.name, text)
	}
	navigate(t, ctx, "approve", 200, chromedp.Click(chromedp.CSS(`button#confirm`)))
	if n, err := chromedp.Run(timeout(t, ctx), chromedp.Evaluate[int](`document.querySelectorAll("button#confirm, form#device").length`)); err != nil || n != 0 {
		t.Errorf("after approval the page still asks (%d, %v)", n, err)
	}

	var tok answer
	for deadline := time.Now().Add(60 * time.Second); ; {
		tok = f.pollPolitely(t, d)
		if tok.Status == 200 || tok.str("error") != "slow_down" || time.Now().After(deadline) {
			break
		}
	}
	if tok.Status != 200 {
		t.Fatalf("polling after approval: %d %s", tok.Status, tok.Raw)
	}
	at := tok.str("access_token")
	if !strings.HasPrefix(at, "token_") || !strings.HasPrefix(tok.str("refresh_token"), "mlrt_") {
		t.Errorf("the device's tokens: %s", tok.Raw)
	}
	if id := tok.str("id_token"); id != "" {
		if _, err := f.verifier(f.app).Verify(f.ctx, id); err != nil {
			t.Errorf("the device's ID token: %v", err)
		}
	}
	if u := f.userinfo(t, at); u.Status != 200 || u.str("preferred_username") != "alice" {
		t.Errorf("the device's token on userinfo: %d %s", u.Status, u.Raw)
	}
	again := f.pollPolitely(t, d)
	if e := again.str("error"); again.Status != 400 || (e != "invalid_grant" && e != "expired_token") {
		t.Errorf("polling a redeemed device code: %d %s, want invalid_grant or expired_token", again.Status, again.Raw)
	}
	if !f.active(t, f.app, at) {
		t.Error("polling again revoked the device's token")
	}

	// Denial, by a public client (a TV app has no secret), the code typed
	// by hand in lower case without the dash; the browser is signed in.
	d2 := f.startDevice(t, f.native, "openid")
	browse(t, ctx, "device page, signed in", chromedp.Navigate(d2.uri), chromedp.WaitVisible(chromedp.CSS(`form#device input[name="user_code"]`)))
	browse(t, ctx, "type the code",
		chromedp.Clear(chromedp.CSS(`form#device input[name="user_code"]`)),
		chromedp.SendKeys(chromedp.CSS(`form#device input[name="user_code"]`), strings.ToLower(norm(d2.userCode))),
	)
	navigate(t, ctx, "submit the typed code", 200, chromedp.Submit(chromedp.CSS(`form#device`)))
	browse(t, ctx, "device consent", chromedp.WaitVisible(chromedp.CSS(`button#deny`)))
	navigate(t, ctx, "deny", 200, chromedp.Click(chromedp.CSS(`button#deny`)))
	expectOAuthError(t, f.pollPolitely(t, d2), 400, "access_denied")

	// A wrong code shows no consent.
	browse(t, ctx, "device page, wrong code", chromedp.Navigate(d2.uri), chromedp.WaitVisible(chromedp.CSS(`form#device input[name="user_code"]`)),
		chromedp.Clear(chromedp.CSS(`form#device input[name="user_code"]`)),
		chromedp.SendKeys(chromedp.CSS(`form#device input[name="user_code"]`), "BCDF-GHJK"))
	if _, err := chromedp.RunResponse(timeout(t, ctx), chromedp.Submit(chromedp.CSS(`form#device`))); err != nil {
		t.Fatal(err)
	}
	if n, err := chromedp.Run(timeout(t, ctx), chromedp.Evaluate[int](`document.querySelectorAll("button#confirm").length`)); err != nil || n != 0 {
		t.Errorf("a wrong user code led to a consent page (%d, %v)", n, err)
	}
}

// norm is a user code without its dash, in upper case.
func norm(code string) string { return strings.ToUpper(strings.ReplaceAll(code, "-", "")) }
