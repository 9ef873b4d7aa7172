package page

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// sameOrigin is the check every POST of the page passes before anything
// else: a browser says where a form came from, and it must be this host.
//
//   - Sec-Fetch-Site, when sent (every current browser), must be
//     same-origin (or none: typed or bookmarked, never a third-party page).
//   - Origin, when present, must name this host. The page's Referrer-Policy
//     is no-referrer, and under that policy browsers send "Origin: null" on
//     the page's own form posts (Fetch standard, "append a request Origin
//     header"); "null" is therefore accepted only together with
//     Sec-Fetch-Site: same-origin, which a cross-site page cannot produce.
//   - Without Origin, a Referer, when present, must name this host.
//
// A request with none of these headers (a non-browser client) passes: the
// CSRF tokens still protect it.
func sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if origin == "null" {
			return site == "same-origin"
		}
		return sameHost(origin, r.Host)
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		return sameHost(ref, r.Host)
	}
	return true
}

// sameHost reports whether the URL u names host (the request's Host), with
// the scheme's default port made explicit on both sides.
func sameHost(u, host string) bool {
	parsed, err := url.Parse(u)
	if err != nil || parsed.Host == "" {
		return false
	}
	def := "80"
	if parsed.Scheme == "https" {
		def = "443"
	}
	return strings.EqualFold(withPort(parsed.Host, def), withPort(host, def))
}

func withPort(hostport, def string) string {
	if _, _, err := net.SplitHostPort(hostport); err == nil {
		return hostport
	}
	return net.JoinHostPort(strings.Trim(hostport, "[]"), def)
}
