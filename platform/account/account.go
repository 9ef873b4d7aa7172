// Package account is the one definition of the rules for a user account's
// fields: the user service applies them to what it stores and checks, and
// the auth service applies the same functions before it counts, audits or
// consumes anything, so that both answer a value alike (400 invalid_request
// with the same message) and a value one accepts is never refused by the
// other. It lives in platform because both services import platform and
// neither imports the other; the rules are no wire contract (SPEC fixes no
// limits, only "field too long or invalid" → 400), so not proto/wire.
//
// Nothing is trimmed or otherwise rewritten: a value is either kept exactly
// as sent or refused with a message naming the field (its wire name too, so
// that an API client and a moreidctl user both know which one), so a
// profile read back always equals what was written and a user_id typed at
// login is compared with exactly what was registered.
//
// Units, chosen once per field:
//   - user_id: bytes. Its alphabet is ASCII, so bytes and characters are the
//     same thing, and len is the cheap exact count.
//   - password: bytes. The bound keeps requests small and bounds what argon2
//     hashes; counted in characters, 1024 four-byte characters would be 4 KiB.
//   - username, bio: characters (runes). They are text a person reads and
//     types, and Postgres's char_length constraints count characters too.
//   - email: bytes, as RFC 5321 counts its path limit.
package account

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/moreline/moreid/platform/apierr"
)

// The limits.
const (
	MaxUserIDBytes   = 64
	MaxUsernameRunes = 32
	MaxBioRunes      = 500
	MaxEmailBytes    = 254
	MinPasswordBytes = 8
	MaxPasswordBytes = 1024
)

// The fields, as people and clients name them.
const (
	userID   = "用户ID（user_id）"
	username = "用户名（username）"
	bio      = "个人简介（bio）"
	email    = "邮箱（email）"
	password = "密码（password）"
)

func invalid(field, format string, args ...any) error {
	return apierr.Newf(apierr.InvalidRequest, "%s%s", field, fmt.Sprintf(format, args...))
}

// singleLine refuses invalid UTF-8 and control characters (including
// newlines): every text field is a single line of text.
func singleLine(field, v string) error {
	if !utf8.ValidString(v) {
		return invalid(field, "包含无效的UTF-8字符")
	}
	if strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return invalid(field, "不能包含控制字符")
	}
	return nil
}

// CheckUserID is the user_id rule: 1 to 64 characters of letters, digits
// and _ . @ -. The alphabet leaves no room for spaces, control characters
// or invalid UTF-8.
func CheckUserID(v string) error {
	if v == "" {
		return invalid(userID, "不能为空")
	}
	if len(v) > MaxUserIDBytes {
		return invalid(userID, "不能超过%d个字符", MaxUserIDBytes)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '@' || c == '-') {
			return invalid(userID, "只能包含字母、数字和 _ . @ - 字符")
		}
	}
	return nil
}

// CheckUsername is the username rule: 1 to 32 characters on one line, not
// blank and without white space at either end, because such names look
// identical to others.
func CheckUsername(v string) error {
	if err := singleLine(username, v); err != nil {
		return err
	}
	if strings.TrimSpace(v) == "" {
		return invalid(username, "不能为空")
	}
	if utf8.RuneCountInString(v) > MaxUsernameRunes {
		return invalid(username, "不能超过%d个字符", MaxUsernameRunes)
	}
	first, _ := utf8.DecodeRuneInString(v)
	last, _ := utf8.DecodeLastRuneInString(v)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return invalid(username, "首尾不能包含空白字符")
	}
	return nil
}

// CheckBio is the bio rule: at most 500 characters on one line; empty
// clears it.
func CheckBio(v string) error {
	if err := singleLine(bio, v); err != nil {
		return err
	}
	if utf8.RuneCountInString(v) > MaxBioRunes {
		return invalid(bio, "不能超过%d个字符", MaxBioRunes)
	}
	return nil
}

// CheckProfileChange is the rule for a profile update: a username or a bio
// (nil keeps the field), each valid.
func CheckProfileChange(newUsername, newBio *string) error {
	if newUsername == nil && newBio == nil {
		return apierr.Newf(apierr.InvalidRequest, "请至少提供%s或%s中的一项", username, bio)
	}
	if newUsername != nil {
		if err := CheckUsername(*newUsername); err != nil {
			return err
		}
	}
	if newBio != nil {
		return CheckBio(*newBio)
	}
	return nil
}

// CheckEmail is the email rule: a bare address (no display name, no
// comment) that parses back to itself, at a dotted domain, at most 254
// bytes.
func CheckEmail(v string) error {
	if v == "" {
		return invalid(email, "不能为空")
	}
	if err := singleLine(email, v); err != nil {
		return err
	}
	if len(v) > MaxEmailBytes {
		return invalid(email, "不能超过%d个字符", MaxEmailBytes)
	}
	// net/mail accepts display names and comments ("Bob <b@x.org>"); only a
	// bare address that parses back to itself is stored. A dotted domain
	// rules out local names such as "root@localhost" and IP literals.
	a, err := mail.ParseAddress(v)
	if err != nil || a.Address != v {
		return invalid(email, "格式不正确")
	}
	domain := v[strings.LastIndexByte(v, '@')+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.ContainsAny(domain, "[]") {
		return invalid(email, "格式不正确")
	}
	return nil
}

// CheckNewPassword is the rule for a password being set: 8 to 1024 bytes
// on one line. The messages never repeat the value.
func CheckNewPassword(v string) error {
	if len(v) < MinPasswordBytes {
		return invalid(password, "不能少于%d字节", MinPasswordBytes)
	}
	if len(v) > MaxPasswordBytes {
		return invalid(password, "不能超过%d字节", MaxPasswordBytes)
	}
	return singleLine(password, v)
}

// CheckLoginPassword only bounds the size of a password presented at
// sign-in: the content rules apply when a password is set, and a string
// that breaks them simply cannot match.
func CheckLoginPassword(v string) error {
	if v == "" {
		return invalid(password, "不能为空")
	}
	if len(v) > MaxPasswordBytes {
		return invalid(password, "不能超过%d字节", MaxPasswordBytes)
	}
	return nil
}
