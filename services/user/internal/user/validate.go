package user

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/moreline/moreid/platform/apierr"
)

// Input rules. Nothing is trimmed or otherwise rewritten: what a caller
// sends is either stored exactly as sent or refused with a message naming
// the field, so a profile read back always equals what was written and a
// user_id typed at login is compared with exactly what was registered.
// user_id and email cannot carry surrounding spaces anyway (their grammar
// has no room for them); a username may not start or end with white space
// and may not be blank, because such names look identical to others.
const (
	maxUserIDLen     = 64   // bytes (the alphabet is ASCII)
	maxUsernameRunes = 32   // characters
	maxEmailLen      = 254  // bytes, RFC 5321's path limit
	maxBioRunes      = 500  // characters
	minPasswordBytes = 8    // bytes
	maxPasswordBytes = 1024 // bytes: argon2 takes any length, the bound keeps requests small
)

func invalid(msg string) error { return apierr.Newf(apierr.InvalidRequest, "%s", msg) }

// checkText refuses invalid UTF-8 and control characters (including
// newlines): every field here is a single line of text.
func checkText(field, v string) error {
	if !utf8.ValidString(v) {
		return invalid(field + "包含无效的UTF-8字符")
	}
	if strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return invalid(field + "不能包含控制字符")
	}
	return nil
}

func validateUserID(v string) error {
	if v == "" {
		return invalid("用户ID不能为空")
	}
	if err := checkText("用户ID", v); err != nil {
		return err
	}
	if len(v) > maxUserIDLen {
		return invalid("用户ID长度不能超过64个字符")
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '@' || c == '-') {
			return invalid("用户ID只能包含字母、数字和 _ . @ - 字符")
		}
	}
	return nil
}

func validateUsername(v string) error {
	if err := checkText("用户名", v); err != nil {
		return err
	}
	if strings.TrimSpace(v) == "" {
		return invalid("用户名不能为空")
	}
	if utf8.RuneCountInString(v) > maxUsernameRunes {
		return invalid("用户名不能超过32个字符")
	}
	first, _ := utf8.DecodeRuneInString(v)
	last, _ := utf8.DecodeLastRuneInString(v)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return invalid("用户名首尾不能包含空白字符")
	}
	return nil
}

func validateEmail(v string) error {
	if v == "" {
		return invalid("邮箱不能为空")
	}
	if err := checkText("邮箱", v); err != nil {
		return err
	}
	if len(v) > maxEmailLen {
		return invalid("邮箱长度不能超过254个字符")
	}
	// net/mail accepts display names and comments ("Bob <b@x.org>"); only a
	// bare address that parses back to itself is stored. A dotted domain
	// rules out local names such as "root@localhost" and IP literals.
	a, err := mail.ParseAddress(v)
	if err != nil || a.Address != v {
		return invalid("邮箱格式不正确")
	}
	at := strings.LastIndexByte(v, '@')
	domain := v[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.ContainsAny(domain, "[]") {
		return invalid("邮箱格式不正确")
	}
	return nil
}

func validateBio(v string) error {
	if err := checkText("个人简介", v); err != nil {
		return err
	}
	if utf8.RuneCountInString(v) > maxBioRunes {
		return invalid("个人简介不能超过500个字符")
	}
	return nil
}

// validateNewPassword applies the rules for a password being set. The
// messages never repeat the value.
func validateNewPassword(v string) error {
	if len(v) < minPasswordBytes {
		return invalid("密码长度不能少于8个字符")
	}
	if len(v) > maxPasswordBytes {
		return invalid("密码长度不能超过1024字节")
	}
	return checkText("密码", v)
}

// validateLoginPassword only bounds the size of a password presented at
// login: the content rules apply when a password is set, and a string that
// breaks them simply cannot match.
func validateLoginPassword(v string) error {
	if v == "" {
		return invalid("密码不能为空")
	}
	if len(v) > maxPasswordBytes {
		return invalid("密码长度不能超过1024字节")
	}
	return nil
}
