package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// signingPropagation is how long a rotated-in key waits before it signs in
// the rotation test: longer than every JWKS cache between auth and the
// relying party (the gateway's few seconds), so that "published before it
// signs" is observable from outside, with a margin for a loaded machine.
const signingPropagation = 20 * time.Second

// signingKeys is `moreidctl signing-key list --json`, by kid.
func signingKeys(t *testing.T, f *oidcSuite) map[string]map[string]any {
	t.Helper()
	out := f.MustCtl(t, "", "signing-key", "list", "--json")
	var keys []map[string]any
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		t.Fatalf("signing-key list --json is not a JSON array: %v\n%s", err, out)
	}
	byKid := map[string]map[string]any{}
	for _, k := range keys {
		kid, _ := k["kid"].(string)
		byKid[kid] = k
		for _, private := range []string{"d", "private", "private_enc", "private_key"} {
			if _, ok := k[private]; ok {
				t.Errorf("signing-key list shows %q", private)
			}
		}
	}
	return byKid
}

// jwksKids fetches /oidc/jwks and returns its kids.
func (f *oidcSuite) jwksKids(t *testing.T) []string {
	t.Helper()
	req, _ := http.NewRequest("GET", f.BaseURL+"/oidc/jwks", nil)
	a := f.send(t, req)
	if a.Status != 200 {
		t.Fatalf("jwks: %d %s", a.Status, a.Raw)
	}
	var kids []string
	for _, k := range jwksKeys(t, a) {
		kids = append(kids, k["kid"])
	}
	return kids
}

// Signing-key rotation: the next key is in the JWKS (and listed as next)
// before anything is signed with it, tokens keep being signed with the
// current key meanwhile, and once it signs, a token signed before and one
// signed after both verify against the JWKS with go-oidc.
func TestOIDCSigningKeyRotation(t *testing.T) {
	f := startOIDCSuite(t, map[string]string{"MOREID_SIGNING_KEY_PROPAGATION": signingPropagation.String()})
	alice := newOIDCPerson(t, f.BaseURL)
	scopes := []string{oidc.ScopeOpenID}
	before := f.login(t, alice, f.app, "alice", alicePassword, scopes...)
	oldKid := jwsKid(t, before.rawID)
	if !slices.Contains(f.jwksKids(t), oldKid) {
		t.Fatalf("the JWKS lacks the signing kid %q", oldKid)
	}
	if k := signingKeys(t, f)[oldKid]; k == nil || k["state"] != "current" {
		t.Errorf("signing-key list: the signing key %q is %v, want current", oldKid, k)
	}

	// A fresh ID token without a page: consent is remembered.
	idToken := func() (raw, kid string) {
		t.Helper()
		r := f.authURL(t, f.app, scopes, oauth2.SetAuthURLParam("prompt", "none"))
		alice.open(t, r.url)
		l := f.exchange(t, f.app, r, f.checkCallback(t, f.rp.await(t, "/callback", r.state), r), scopes...)
		return l.rawID, jwsKid(t, l.rawID)
	}

	rotated := time.Now()
	f.MustCtl(t, "", "signing-key", "rotate")
	var newKid string
	for kid, k := range signingKeys(t, f) {
		if k["state"] == "next" {
			newKid = kid
		}
	}
	if newKid == "" || newKid == oldKid {
		t.Fatalf("after rotate, signing-key list has no next key: %v", signingKeys(t, f))
	}

	// Until the new key is in the JWKS, nothing is signed with it; once it
	// is, tokens still come with the old kid for a while (propagation is
	// well above the JWKS caches).
	published := false
	var signedOldAfterPublish bool
	var after, afterKid string
	for deadline := rotated.Add(signingPropagation + 40*time.Second); ; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the new key %q never signed (published %v)", newKid, published)
		}
		kids := f.jwksKids(t)
		if !slices.Contains(kids, oldKid) {
			t.Fatalf("the retired key %q left the JWKS while its tokens live: %q", oldKid, kids)
		}
		published = published || slices.Contains(kids, newKid)
		raw, kid := idToken()
		switch kid {
		case oldKid:
			signedOldAfterPublish = signedOldAfterPublish || published
			continue
		case newKid:
			if !published {
				t.Fatalf("a token was signed with %q before the JWKS published it", newKid)
			}
			after, afterKid = raw, kid
		default:
			t.Fatalf("a token signed with %q, neither the old %q nor the new %q", kid, oldKid, newKid)
		}
		break
	}
	if !signedOldAfterPublish {
		t.Errorf("no token was signed with the old key once the new one was published: the next key was not published ahead")
	}
	if time.Since(rotated) < signingPropagation-time.Second {
		t.Errorf("the new key signed %v after the rotation, before the %v propagation", time.Since(rotated), signingPropagation)
	}
	keys := signingKeys(t, f)
	if keys[afterKid]["state"] != "current" || keys[oldKid]["state"] != "retired" {
		t.Errorf("after activation: new %v, old %v; want current and retired", keys[afterKid]["state"], keys[oldKid]["state"])
	}

	// A relying party that fetches the JWKS afresh verifies both.
	ctx, cancel := context.WithTimeout(f.ctx, 15*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, f.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	v := p.Verifier(&oidc.Config{ClientID: f.app.id})
	for name, raw := range map[string]string{"signed before the rotation": before.rawID, "signed after": after} {
		if _, err := v.Verify(ctx, raw); err != nil {
			t.Errorf("the token %s does not verify against the JWKS: %v", name, err)
		}
	}
	// And the old session's access token still works: rotation ends no
	// token.
	if u := f.userinfo(t, before.token.AccessToken); u.Status != 200 {
		t.Errorf("an access token from before the rotation: %d %s", u.Status, u.Raw)
	}
}
