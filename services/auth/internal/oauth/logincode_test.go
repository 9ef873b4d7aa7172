package oauth

import (
	"strings"
	"testing"

	"github.com/moreline/moreid/platform/secret"
)

// What a person reads off the confirmation page: never a character that
// looks like another, always the documented length, and (through
// wellFormedLoginCode) always accepted back by login_safe.
func TestNewLoginCode(t *testing.T) {
	const lookAlikes = "0o1li"
	drawn := map[rune]int{}
	for range 10000 {
		code := newLoginCode()
		if len(code) != 10 {
			t.Fatalf("login code %q has %d characters, want 10", code, len(code))
		}
		if strings.ContainsAny(code, lookAlikes) {
			t.Fatalf("login code %q holds a look-alike of %q", code, lookAlikes)
		}
		if !wellFormedLoginCode(code) {
			t.Fatalf("login code %q is refused by login_safe's format check", code)
		}
		for _, c := range code {
			drawn[c]++
		}
	}
	// 100000 draws from 31 characters: each is drawn about 3200 times, so
	// one never drawn means the alphabet lost it.
	for _, c := range secret.LoginCode {
		if drawn[c] == 0 {
			t.Errorf("%q never drawn in 10000 codes", c)
		}
	}
}

// The documented contract (10 characters of [a-z0-9]) decides what is a 400;
// the narrower alphabet codes are drawn from does not.
func TestWellFormedLoginCode(t *testing.T) {
	tests := []struct {
		code string
		ok   bool
	}{
		{"abc234def5", true},
		{"abcdefghjk", true},
		{"2345678923", true},
		// Look-alikes never appear in an issued code, but such a string is
		// of the documented format: a wrong code (409), not a malformed one.
		{"0o1li0o1li", true},
		{"abcdefghi1", true},
		{"0000000000", true},
		{"llllllllll", true},
		{"", false},
		{"abc", false},
		{"abcdefghj", false},
		{"abcdefghjkm", false},
		{"ABCDEFGHJK", false},
		{"abcdE23456", false},
		{"abcde-2345", false},
		{"abcde 2345", false},
		{"ａbcdefgh", false}, // 10 bytes, but a full-width a is not [a-z]
		{"abcdefghj\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			if got := wellFormedLoginCode(tt.code); got != tt.ok {
				t.Fatalf("wellFormedLoginCode(%q) = %v, want %v", tt.code, got, tt.ok)
			}
		})
	}
}
