package account_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/moreline/moreid/platform/account"
	"github.com/moreline/moreid/platform/apierr"
)

func ptr(s string) *string { return &s }

// Every rule at its boundaries: the last value accepted and the first
// refused, in the field's unit (bytes for user_id and password, characters
// for username and bio), with multi-byte characters where the unit matters.
func TestRules(t *testing.T) {
	x := strings.Repeat
	tests := []struct {
		name  string
		err   error
		field string // "" when the value is accepted; else what the message must name
	}{
		{"user_id of 64 characters", account.CheckUserID(x("a", 64)), ""},
		{"user_id of 65 characters", account.CheckUserID(x("a", 65)), "user_id"},
		{"user_id of every allowed character", account.CheckUserID("Az09_.@-"), ""},
		{"empty user_id", account.CheckUserID(""), "user_id"},
		{"user_id with a space", account.CheckUserID("carol smith"), "user_id"},
		{"user_id with a slash", account.CheckUserID("carol/x"), "user_id"},
		{"user_id with a control character", account.CheckUserID("carol\x00"), "user_id"},
		{"user_id of 21 multi-byte characters (63 bytes)", account.CheckUserID(x("用", 21)), "user_id"},
		{"user_id of invalid UTF-8", account.CheckUserID("carol\xff"), "user_id"},

		{"login password of 1024 bytes", account.CheckLoginPassword(x("p", 1024)), ""},
		{"login password of 1025 bytes", account.CheckLoginPassword(x("p", 1025)), "password"},
		{"login password of 512 two-byte characters (1024 bytes)", account.CheckLoginPassword(x("é", 512)), ""},
		{"login password of 1024 bytes and a character more", account.CheckLoginPassword(x("é", 512) + "a"), "password"},
		{"login password of 342 three-byte characters (1026 bytes)", account.CheckLoginPassword(x("用", 342)), "password"},
		{"empty login password", account.CheckLoginPassword(""), "password"},
		{"login password with a control character", account.CheckLoginPassword("pass\nword"), ""},

		{"new password of 8 bytes", account.CheckNewPassword(x("p", 8)), ""},
		{"new password of 7 bytes", account.CheckNewPassword(x("p", 7)), "password"},
		{"new password of 4 three-byte characters (12 bytes)", account.CheckNewPassword(x("密", 4)), ""},
		{"new password of 1024 bytes", account.CheckNewPassword(x("é", 512)), ""},
		{"new password of 1025 bytes", account.CheckNewPassword(x("é", 512) + "a"), "password"},
		{"new password with a newline", account.CheckNewPassword("Test1234\n"), "password"},

		{"username of 32 multi-byte characters", account.CheckUsername(x("名", 32)), ""},
		{"username of 33 characters", account.CheckUsername(x("é", 33)), "username"},
		{"empty username", account.CheckUsername(""), "username"},
		{"blank username", account.CheckUsername("   "), "username"},
		{"username with a leading space", account.CheckUsername(" Carol"), "username"},
		{"username with a trailing ideographic space", account.CheckUsername("Carol\u3000"), "username"},
		{"username with a newline", account.CheckUsername("Car\nol"), "username"},
		{"username of invalid UTF-8", account.CheckUsername("Car\xffol"), "username"},

		{"bio of 500 multi-byte characters", account.CheckBio(x("简", 500)), ""},
		{"bio of 501 characters", account.CheckBio(x("简", 501)), "bio"},
		{"empty bio", account.CheckBio(""), ""},
		{"bio with an escape character", account.CheckBio("line\x1bone"), "bio"},

		{"neither username nor bio", account.CheckProfileChange(nil, nil), "username"},
		{"only a bio", account.CheckProfileChange(nil, ptr("hi")), ""},
		{"only a username", account.CheckProfileChange(ptr("Carol"), nil), ""},
		{"an empty bio clears it", account.CheckProfileChange(nil, ptr("")), ""},
		{"a good bio, a bad username", account.CheckProfileChange(ptr("a\x7f"), ptr("ok")), "username"},
		{"a good username, a bad bio", account.CheckProfileChange(ptr("Carol"), ptr(x("b", 501))), "bio"},

		{"email", account.CheckEmail("carol@example.com"), ""},
		{"email of 254 bytes", account.CheckEmail(x("a", 64) + "@" + x("b", 185) + ".com"), ""},
		{"email of 255 bytes", account.CheckEmail(x("a", 64) + "@" + x("b", 186) + ".com"), "email"},
		{"empty email", account.CheckEmail(""), "email"},
		{"email with a display name", account.CheckEmail("Carol <carol@example.com>"), "email"},
		{"email at an undotted domain", account.CheckEmail("root@localhost"), "email"},
		{"email at an IP literal", account.CheckEmail("carol@[192.0.2.1]"), "email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.field == "" {
				if tt.err != nil {
					t.Fatalf("refused: %v", tt.err)
				}
				return
			}
			var e *apierr.Error
			if !errors.As(tt.err, &e) || e.Kind != apierr.InvalidRequest || !strings.Contains(e.Message, tt.field) {
				t.Fatalf("err = %v, want invalid_request naming %s", tt.err, tt.field)
			}
		})
	}
}
