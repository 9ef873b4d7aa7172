package page

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/moreline/moreid/platform/secret"
)

// MinCSRFKeyLen is the shortest key the sign-in form's tokens may be
// signed with (MOREID_CSRF_KEY): 32 bytes, the size of the HMAC-SHA256 key
// that gives it its full strength.
const MinCSRFKeyLen = 32

// formTokens mints and checks the sign-in form's double-submit token: the
// moreid_csrf cookie and the form's csrf_token field must hold the same
// value, and the value must carry the gateway's signature.
//
// The form has no session to bind to yet. A plain random pair would be
// accepted from anyone who can plant a cookie in the browser (a sibling
// subdomain, a plain-HTTP hop on the way) together with a form carrying the
// same value; a signed one can only be minted by a gateway that holds the
// key (every replica shares MOREID_CSRF_KEY, so a form rendered by one is
// accepted by another). The signature also covers the UCA, so a pair the
// server minted for one sign-in request (an attacker's own, say) is worth
// nothing for another.
//
// A token is nonce "." base64url(HMAC-SHA256(key, "moreid-csrf-form\n" +
// uca + "\n" + nonce)): printable ASCII, a valid cookie value and gRPC
// metadata value.
type formTokens struct{ key []byte }

const formNonceLen = 22 // 131 bits from the alphanumeric alphabet

func newFormTokens(key []byte) (formTokens, error) {
	if len(key) < MinCSRFKeyLen {
		return formTokens{}, errors.New("page: the CSRF key must be at least 32 bytes")
	}
	return formTokens{key: append([]byte(nil), key...)}, nil
}

func (f formTokens) mint(uca string) string {
	nonce := secret.New("", formNonceLen, secret.Alphanumeric)
	return nonce + "." + f.sign(uca, nonce)
}

// valid reports whether token was minted by a gateway with this key for
// this UCA.
func (f formTokens) valid(token, uca string) bool {
	nonce, mac, ok := strings.Cut(token, ".")
	if !ok || len(nonce) != formNonceLen {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(f.sign(uca, nonce)))
}

func (f formTokens) sign(uca, nonce string) string {
	h := hmac.New(sha256.New, f.key)
	h.Write([]byte("moreid-csrf-form\n"))
	h.Write([]byte(uca))
	h.Write([]byte("\n"))
	h.Write([]byte(nonce))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
