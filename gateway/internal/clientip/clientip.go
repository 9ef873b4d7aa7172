// Package clientip decides which address an HTTP request comes from
// (SPEC section 5), the address API-key whitelists are checked against.
//
// The rule:
//
//  1. The TCP peer (http.Request.RemoteAddr) is the client, unless the peer is
//     inside the trusted-proxy prefixes (MOREID_TRUSTED_PROXIES, none by
//     default). A peer outside them cannot change the answer with any header.
//  2. When the peer is a trusted proxy, X-Forwarded-For is read: every such
//     header, in order, each a comma-separated list, as if joined into one
//     list. The list is walked from the right (the hop appended by the proxy
//     closest to us) towards the left; hops that are themselves trusted
//     proxies are skipped, and the first untrusted hop is the client. The
//     left-most entries are never believed for their own sake: they are
//     whatever the client chose to send.
//  3. A hop that is not an IP address (garbage, "unknown", an empty entry)
//     stops the walk: the chain of trust is broken there, so the answer is the
//     last good address, that is the peer or the last trusted hop seen.
//  4. When every hop is trusted, the left-most hop is the client: it is the
//     last address a trusted proxy vouched for.
//
// Accepted spellings of an address, in RemoteAddr and in hops: "192.0.2.1",
// "192.0.2.1:443", "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:443", with
// an optional zone ("fe80::1%eth0"). IPv4-mapped IPv6 ("::ffff:192.0.2.1") is
// the IPv4 address, and zones are dropped, so the result compares equal to
// whitelist entries parsed by platform/ipset.
package clientip

import (
	"net/netip"
	"strings"

	"github.com/moreline/moreid/platform/ipset"
)

// Resolve returns the client address of a request whose TCP peer is
// remoteAddr and whose X-Forwarded-For header values are xff. It returns the
// zero Addr (IsValid false) only when remoteAddr itself is not an address.
func Resolve(remoteAddr string, xff []string, trusted []netip.Prefix) netip.Addr {
	client, ok := Parse(remoteAddr)
	if !ok {
		return netip.Addr{}
	}
	if !ipset.Contains(trusted, client) {
		return client
	}
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for k := len(hops) - 1; k >= 0; k-- {
			a, ok := Parse(hops[k])
			if !ok {
				return client
			}
			client = a
			if !ipset.Contains(trusted, a) {
				return a
			}
		}
	}
	return client
}

// Parse reads one address in any of the spellings the package accepts,
// surrounded by optional blanks, and returns it unmapped and without zone.
func Parse(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		// "host:port" or "[v6]:port"; ParseAddrPort rejects bare brackets.
		ap, perr := netip.ParseAddrPort(s)
		switch {
		case perr == nil:
			a = ap.Addr()
		case len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']':
			if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil || !a.Is6() {
				return netip.Addr{}, false
			}
		default:
			return netip.Addr{}, false
		}
	}
	return a.Unmap().WithZone(""), true
}
