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
