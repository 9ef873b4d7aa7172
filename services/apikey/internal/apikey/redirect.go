package apikey

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/moreline/moreid/platform/apierr"
)

// Limits of one list of redirect URIs (or of post-logout redirect URIs):
// enough for every environment of an application, small enough that a
// record stays small and a typo'd script cannot store megabytes.
const (
	MaxRedirectURIs   = 20
	MaxRedirectURILen = 2000 // bytes
)

// CleanRedirectURIs checks a list of redirect URIs (or post-logout redirect
// URIs) for registration, the one place these rules live (SPEC section 8,
// RFC 9700 section 4.1.3, RFC 8252):
//
//   - an absolute URI, ASCII only, with no fragment and no userinfo;
//   - https with a host; or http only when the host is a loopback host
//     (localhost, 127.0.0.0/8, [::1]), since plain http anywhere else lets
//     the network read the code;
//   - a public (native) client may also use a private-use scheme, which
//     must contain a dot (RFC 8252 section 7.1, com.example.app:/cb), so
//     that it names its owner's domain rather than a generic word.
//
// The authorization endpoint matches redirect URIs exactly, so what is
// stored is exactly what was given, trimmed of surrounding blanks and
// nothing else. Blank entries and repeats are dropped (a list is a set);
// the first bad entry is named in an InvalidRequest.
func CleanRedirectURIs(uris []string, public bool) ([]string, error) {
	out := make([]string, 0, len(uris))
	seen := make(map[string]bool, len(uris))
	for _, raw := range uris {
		u := strings.TrimSpace(raw)
		if u == "" || seen[u] {
			continue
		}
		if err := checkRedirectURI(u, public); err != nil {
			return nil, err
		}
		seen[u] = true
		out = append(out, u)
	}
	if len(out) > MaxRedirectURIs {
		return nil, apierr.Newf(apierr.InvalidRequest, "重定向URI过多（最多%d个）", MaxRedirectURIs)
	}
	return out, nil
}

func checkRedirectURI(s string, public bool) error {
	bad := func(why string) error {
		return apierr.Newf(apierr.InvalidRequest, "重定向URI无效：%q（%s）", shortenURI(s), why)
	}
	if len(s) > MaxRedirectURILen {
		return bad(fmt.Sprintf("超过%d字节", MaxRedirectURILen))
	}
	// A URI is ASCII (RFC 3986): anything else, a blank or a control
	// character inside it, would be compared byte for byte against what a
	// client sends after its own percent-encoding, and never match.
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f {
			return bad("只能包含可见的ASCII字符，其余字符须百分号编码")
		}
	}
	if strings.Contains(s, "#") {
		return bad("不能包含片段（#）")
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return bad("必须是有效的绝对URI")
	}
	if u.User != nil {
		return bad("不能包含用户信息")
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
			return bad("https URI必须包含主机名")
		}
		return nil
	case "http":
		if u.Opaque != "" || !loopbackHost(u.Hostname()) {
			return bad("http只允许用于本机回环地址（localhost、127.0.0.0/8、[::1]），其他地址须使用https")
		}
		return nil
	}
	if !strings.Contains(u.Scheme, ".") {
		return bad("协议必须是https，或本机回环地址上的http")
	}
	if !public {
		return bad("自定义协议只允许用于公开客户端（--public）")
	}
	if u.Host == "" && u.Opaque == "" && u.Path == "" {
		return bad("自定义协议后必须有路径")
	}
	return nil
}

// loopbackHost reports whether host (as url.URL.Hostname gives it: IPv6
// without brackets) is localhost or a loopback IP literal. Zones and
// IPv4-mapped forms are refused: no real client registers them, and an
// unusual spelling of a loopback address is better refused than reasoned
// about.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return false
	}
	return (a.Is4() && a.IsLoopback()) || a == netip.IPv6Loopback()
}

// shortenURI keeps an echoed bad URI readable in a message while still
// naming it: a whole 2000-byte URI would bury the reason.
func shortenURI(s string) string {
	const max = 200
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max]) + "…"
}
