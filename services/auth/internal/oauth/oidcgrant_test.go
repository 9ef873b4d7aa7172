package oauth

import (
	"strings"
	"testing"
)

func TestPKCE(t *testing.T) {
	// RFC 7636 appendix B.
	const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	tests := []struct {
		name                string
		challenge, verifier string
		want                bool
	}{
		{"RFC 7636 example", challenge, verifier, true},
		{"wrong verifier", challenge, verifier[:42] + "a", false},
		{"challenge, no verifier", challenge, "", false},
		{"no challenge, no verifier", "", "", true},
		{"verifier without challenge", "", verifier, false},
		{"verifier too short", challenge, verifier[:42], false},
		{"verifier too long", challenge, strings.Repeat("a", 129), false},
		{"the challenge as verifier (plain)", challenge, challenge, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pkceOK(tt.challenge, tt.verifier); got != tt.want {
				t.Fatalf("pkceOK = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFamilyOf(t *testing.T) {
	fam := strings.Repeat("F", familyIDLen)
	tests := []struct {
		token string
		fam   string
		ok    bool
	}{
		{refreshPrefix + fam + strings.Repeat("s", 40), fam, true},
		{refreshPrefix + fam + strings.Repeat("s", 39), "", false},
		{"token_" + fam + strings.Repeat("s", 39), "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if f, ok := familyOf(tt.token); f != tt.fam || ok != tt.ok {
			t.Errorf("familyOf(%q) = %q, %v", tt.token, f, ok)
		}
	}
}
