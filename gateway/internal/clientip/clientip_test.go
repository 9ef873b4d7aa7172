package clientip

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/moreline/moreid/platform/ipset"
)

func mustPrefixes(t testing.TB, list string) []netip.Prefix {
	t.Helper()
	ps, err := ipset.ParseList(list)
	if err != nil {
		t.Fatalf("ParseList(%q): %v", list, err)
	}
	return ps
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" means not an address
	}{
		{"192.0.2.1", "192.0.2.1"},
		{" 192.0.2.1 ", "192.0.2.1"},
		{"192.0.2.1:443", "192.0.2.1"},
		{"2001:db8::1", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"fe80::1%eth0", "fe80::1"},
		{"[fe80::1%eth0]:8080", "fe80::1"},
		{"", ""},
		{"   ", ""},
		{"unknown", ""},
		{"_hidden", ""},
		{"[192.0.2.1]", ""},
		{"[192.0.2.1]:80", ""},
		{"192.0.2.1:", ""},
		{"192.0.2.1:99999", ""},
		{"[2001:db8::1]:x", ""},
		{"[2001:db8::1", ""},
		{"300.0.0.1", ""},
		{"192.0.2.0/24", ""},
		{"example.com", ""},
		{"example.com:80", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, ok := Parse(tt.in)
			if tt.want == "" {
				if ok {
					t.Fatalf("Parse(%q) = %v, want not an address", tt.in, a)
				}
				return
			}
			if !ok || a.String() != tt.want {
				t.Fatalf("Parse(%q) = %v, %v, want %s", tt.in, a, ok, tt.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	trusted := mustPrefixes(t, "10.0.0.0/8, 192.168.1.1, fd00::/8, ::1")
	tests := []struct {
		name    string
		peer    string
		xff     []string
		trusted []netip.Prefix
		want    string // "" means the zero Addr
	}{
		{name: "untrusted peer, no header", peer: "203.0.113.7:5555", want: "203.0.113.7"},
		{name: "untrusted peer ignores forged header", peer: "203.0.113.7:5555", xff: []string{"1.1.1.1"}, want: "203.0.113.7"},
		{name: "untrusted peer ignores forged header naming a trusted proxy", peer: "203.0.113.7:5555", xff: []string{"10.0.0.1, 192.168.1.1"}, want: "203.0.113.7"},
		{name: "no trusted proxies configured", peer: "10.0.0.5:1", xff: []string{"1.1.1.1"}, trusted: []netip.Prefix{}, want: "10.0.0.5"},
		{name: "trusted peer, one hop", peer: "10.0.0.5:1234", xff: []string{"198.51.100.9"}, want: "198.51.100.9"},
		{name: "trusted peer, right-most untrusted hop wins over forged left", peer: "10.0.0.5:1234", xff: []string{"6.6.6.6, 198.51.100.9"}, want: "198.51.100.9"},
		{name: "trusted hops skipped", peer: "10.0.0.5:1234", xff: []string{"6.6.6.6, 198.51.100.9, 10.1.2.3, 192.168.1.1"}, want: "198.51.100.9"},
		{name: "several headers read as one list", peer: "10.0.0.5:1234", xff: []string{"6.6.6.6, 198.51.100.9", "10.1.2.3", "192.168.1.1"}, want: "198.51.100.9"},
		{name: "untrusted hop in last header", peer: "10.0.0.5:1234", xff: []string{"6.6.6.6", "198.51.100.10"}, want: "198.51.100.10"},
		{name: "trusted peer, no header", peer: "10.0.0.5:1234", want: "10.0.0.5"},
		{name: "trusted peer, empty header", peer: "10.0.0.5:1234", xff: []string{""}, want: "10.0.0.5"},
		{name: "all hops trusted: left-most", peer: "10.0.0.5:1234", xff: []string{"10.9.9.9, 192.168.1.1"}, want: "10.9.9.9"},
		{name: "garbage right-most hop: the peer", peer: "10.0.0.5:1234", xff: []string{"198.51.100.9, unknown"}, want: "10.0.0.5"},
		{name: "garbage after trusted hop: last trusted hop", peer: "10.0.0.5:1234", xff: []string{"198.51.100.9, garbage, 10.7.7.7"}, want: "10.7.7.7"},
		{name: "empty entry stops the walk", peer: "10.0.0.5:1234", xff: []string{"198.51.100.9,,10.7.7.7"}, want: "10.7.7.7"},
		{name: "garbage left of the client is never reached", peer: "10.0.0.5:1234", xff: []string{"garbage, 198.51.100.9"}, want: "198.51.100.9"},
		{name: "hop with port", peer: "10.0.0.5:1234", xff: []string{"198.51.100.9:4711"}, want: "198.51.100.9"},
		{name: "IPv6 hop", peer: "10.0.0.5:1234", xff: []string{"2001:db8::7"}, want: "2001:db8::7"},
		{name: "bracketed IPv6 hop with port", peer: "10.0.0.5:1234", xff: []string{"[2001:db8::7]:4711"}, want: "2001:db8::7"},
		{name: "bracketed IPv6 hop", peer: "10.0.0.5:1234", xff: []string{"[2001:db8::7]"}, want: "2001:db8::7"},
		{name: "IPv4-mapped hop", peer: "10.0.0.5:1234", xff: []string{"::ffff:198.51.100.9"}, want: "198.51.100.9"},
		{name: "IPv4-mapped trusted hop is skipped", peer: "10.0.0.5:1234", xff: []string{"198.51.100.9, ::ffff:10.3.3.3"}, want: "198.51.100.9"},
		{name: "zoned hop", peer: "10.0.0.5:1234", xff: []string{"fe80::9%eth0"}, want: "fe80::9"},
		{name: "IPv6 peer untrusted", peer: "[2001:db8::1]:443", xff: []string{"1.1.1.1"}, want: "2001:db8::1"},
		{name: "IPv6 trusted peer", peer: "[fd00::1]:443", xff: []string{"2001:db8::5, fd12::1"}, want: "2001:db8::5"},
		{name: "IPv6 loopback trusted peer", peer: "[::1]:443", xff: []string{"198.51.100.9"}, want: "198.51.100.9"},
		{name: "zoned peer", peer: "[fe80::1%lo0]:443", want: "fe80::1"},
		{name: "IPv4-mapped trusted peer", peer: "[::ffff:10.0.0.5]:443", xff: []string{"198.51.100.9"}, want: "198.51.100.9"},
		{name: "IPv4-mapped untrusted peer", peer: "[::ffff:203.0.113.7]:443", xff: []string{"198.51.100.9"}, want: "203.0.113.7"},
		{name: "peer without port", peer: "203.0.113.7", want: "203.0.113.7"},
		{name: "unparseable peer", peer: "@", xff: []string{"198.51.100.9"}, want: ""},
		{name: "empty peer", peer: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := trusted
			if tt.trusted != nil {
				tr = tt.trusted
			}
			got := Resolve(tt.peer, tt.xff, tr)
			if tt.want == "" {
				if got.IsValid() {
					t.Fatalf("Resolve = %v, want no address", got)
				}
				return
			}
			if got.String() != tt.want {
				t.Fatalf("Resolve(%q, %q) = %v, want %s", tt.peer, tt.xff, got, tt.want)
			}
		})
	}
}

// FuzzClientIP checks that no input panics and that the answer is always
// either the peer or an address that appears in the header: the function can
// never invent an address.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.5:1234", "198.51.100.9")
	f.Add("203.0.113.7:1", "1.1.1.1, 10.0.0.1")
	f.Add("[fd00::1]:443", "2001:db8::5, [fd12::1]:80\n::ffff:10.1.1.1")
	f.Add("[fe80::1%eth0]:1", "fe80::2%eth1")
	f.Add("10.0.0.5:1", "garbage,,10.7.7.7")
	trusted := mustPrefixes(f, "10.0.0.0/8, 192.168.1.1, fd00::/8, ::1, 127.0.0.0/8")
	f.Fuzz(func(t *testing.T, peer, header string) {
		// Newlines separate several X-Forwarded-For headers.
		xff := strings.Split(header, "\n")
		got := Resolve(peer, xff, trusted)
		p, ok := Parse(peer)
		if !ok {
			if got.IsValid() {
				t.Fatalf("unparseable peer %q gave %v", peer, got)
			}
			return
		}
		if !got.IsValid() {
			t.Fatalf("valid peer %q gave no address", peer)
		}
		if got == p {
			return
		}
		if !ipset.Contains(trusted, p) {
			t.Fatalf("untrusted peer %v, but the answer is %v", p, got)
		}
		for _, h := range xff {
			for _, hop := range strings.Split(h, ",") {
				if a, ok := Parse(hop); ok && a == got {
					return
				}
			}
		}
		t.Fatalf("Resolve(%q, %q) = %v: neither the peer nor a hop", peer, xff, got)
	})
}
