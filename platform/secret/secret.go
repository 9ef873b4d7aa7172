// Package secret makes and handles the bearer secrets Moreid hands out (API
// keys, states, codes, tokens, sessions): random from crypto/rand, stored
// only as SHA-256 hashes, compared in constant time.
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
)

// Alphabets used by the documented formats.
const (
	Hex          = "0123456789abcdef"
	LowerAlnum   = "abcdefghijklmnopqrstuvwxyz0123456789"
	Alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// The login code, the one secret a person reads off the confirmation page
// and types into an app, is defined here once: the service makes codes of
// it, and tests and tools that check an issued code's format use it too.
//
// The documented format stays LoginCodeLen characters of [a-z0-9]
// (LowerAlnum), and any such string is a well-formed login_code; codes are
// only drawn from a subset without the look-alikes 0/o and 1/l/i, so that
// a person copying a code off the screen by hand never has to guess which
// of two similar glyphs it shows.
// A string holding an excluded character is well-formed but can never
// have been issued: a wrong answer, not a malformed request.
//
// Only those five go: the page shows the code in lowercase monospace
// (page.css .code), where the remaining pairs people cite (2/z, 5/s, 8/b,
// 9/g/q, u/v, rn/m) are distinct glyphs of one cell each, and every
// character dropped costs entropy for no gain in reading.
//
// Entropy: LoginCodeLen × log2(len(LoginCode)) = 10 × log2(31) ≈ 49.5
// bits (10 × log2(36) ≈ 51.7 with every character). That is plenty for a
// code that lives 5 minutes, is bound to one state, and whose state burns
// at the fifth wrong answer: a guesser gets at most 5 tries per state, a
// 5/31^10 ≈ 6e-15 chance, before having to start a new authorization (and
// the per-address failure limit caps how many states one address burns).
const (
	LoginCodeLen = 10
	LoginCode    = "abcdefghjkmnpqrstuvwxyz23456789"
)

// New returns prefix followed by n characters drawn uniformly from alphabet
// (len(alphabet) <= 256) with crypto/rand. It panics only if the operating
// system's randomness source fails, when no secret can be made safely.
func New(prefix string, n int, alphabet string) string {
	out := make([]byte, len(prefix), len(prefix)+n)
	copy(out, prefix)
	// Rejection sampling keeps every character equally likely.
	limit := 256 - 256%len(alphabet)
	buf := make([]byte, n+n/2+8)
	for len(out) < len(prefix)+n {
		if _, err := rand.Read(buf); err != nil {
			panic("secret: crypto/rand failed: " + err.Error())
		}
		for _, b := range buf {
			if int(b) >= limit {
				continue
			}
			out = append(out, alphabet[int(b)%len(alphabet)])
			if len(out) == len(prefix)+n {
				break
			}
		}
	}
	return string(out)
}

// Hash is the SHA-256 of s in lowercase hex: the only form in which a secret
// is stored or used as a lookup key.
func Hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Equal compares two secrets (or hashes) in constant time.
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
