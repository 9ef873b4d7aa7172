package secret

import (
	"math"
	"strings"
	"testing"
)

// The login-code alphabet is a decision the README and the page rely on:
// pin it, so that narrowing or widening it is a visible change here.
func TestLoginCodeAlphabet(t *testing.T) {
	const lookAlikes = "0o1li"
	seen := map[rune]bool{}
	for _, c := range LoginCode {
		if seen[c] {
			t.Errorf("%q appears twice in LoginCode: it would be drawn twice as often", c)
		}
		seen[c] = true
		if !strings.ContainsRune(LowerAlnum, c) {
			t.Errorf("%q is outside the documented [a-z0-9]", c)
		}
		if strings.ContainsRune(lookAlikes, c) {
			t.Errorf("look-alike %q in LoginCode", c)
		}
	}
	// Everything of [a-z0-9] but the look-alikes stays, for entropy.
	for _, c := range LowerAlnum {
		if !seen[c] && !strings.ContainsRune(lookAlikes, c) {
			t.Errorf("%q dropped from LoginCode without being a look-alike", c)
		}
	}
	if LoginCodeLen != 10 {
		t.Errorf("LoginCodeLen = %d, the documented format is 10", LoginCodeLen)
	}
	if bits := float64(LoginCodeLen) * math.Log2(float64(len(LoginCode))); bits < 49 {
		t.Errorf("a login code carries %.1f bits, the comment promises about 49.5", bits)
	}
}
