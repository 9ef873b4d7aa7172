// Package redirecturi is the one rule of which redirect URI a client may
// be sent back to (SPEC section 8), shared by the gateway, which must not
// redirect anywhere else, and auth, which stores the request.
package redirecturi

import (
	"net/url"
	"slices"
	"strings"
)

// Matches reports whether requested is one of a client's registered
// redirect URIs: the same string (RFC 9700 section 4.1.3: no prefix, no
// normalisation), except that a public (native) client's loopback IP
// redirect matches with any port, which the operating system hands the app
// at run time (RFC 8252 section 7.3; RFC 9700 section 2.1 keeps that
// exception). "localhost" gets no such leeway (RFC 8252 section 8.3).
func Matches(registered []string, requested string, public bool) bool {
	if slices.Contains(registered, requested) {
		return true
	}
	if !public {
		return false
	}
	want, ok := withoutLoopbackPort(requested)
	if !ok {
		return false
	}
	for _, r := range registered {
		if got, ok := withoutLoopbackPort(r); ok && got == want {
			return true
		}
	}
	return false
}

// withoutLoopbackPort is uri with the port removed, when uri is a plain
// http URI on a loopback IP literal with nothing but an optional port in
// its authority; ok is false for any other URI.
func withoutLoopbackPort(uri string) (string, bool) {
	const scheme = "http://"
	if !strings.HasPrefix(uri, scheme) {
		return "", false
	}
	u, err := url.Parse(uri)
	if err != nil || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return "", false
	}
	host := u.Hostname()
	if host != "127.0.0.1" && host != "::1" {
		return "", false
	}
	authority, rest, _ := strings.Cut(uri[len(scheme):], "/")
	// The authority must be exactly the literal, and a port of digits.
	lit := host
	if host == "::1" {
		lit = "[::1]"
	}
	port, hasPort := strings.CutPrefix(authority, lit)
	if !hasPort || (port != "" && (port[0] != ':' || !digits(port[1:]))) {
		return "", false
	}
	return scheme + lit + "/" + rest, true
}

func digits(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
