// Package ipset parses and matches lists of IPs and CIDRs, IPv4 and IPv6:
// API-key whitelists and trusted-proxy ranges.
package ipset

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseList parses a comma-separated "10.0.0.0/8, 192.168.1.5, ::1".
func ParseList(list string) ([]netip.Prefix, error) {
	return Parse(strings.Split(list, ","))
}

// Parse parses each entry (blank entries are skipped) into its canonical,
// masked prefix; a bare IP becomes a single-address prefix.
func Parse(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		p, err := ParsePrefix(e)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ParsePrefix parses one CIDR or bare IP. IPv4-mapped IPv6 forms are unmapped
// so that "::ffff:10.0.0.1" and "10.0.0.1" are the same entry.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not an IP or CIDR: %q", s)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not an IP or CIDR: %q", s)
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Strings renders prefixes canonically; single addresses without "/32".
func Strings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		if p.IsSingleIP() {
			out[i] = p.Addr().String()
		} else {
			out[i] = p.String()
		}
	}
	return out
}

// Contains reports whether addr is inside any of the prefixes.
func Contains(prefixes []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
