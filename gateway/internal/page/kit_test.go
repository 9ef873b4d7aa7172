package page

import "testing"

// TestCSPSource: only a clean origin or scheme becomes a form-action
// source; anything that could break out of the policy is dropped.
func TestCSPSource(t *testing.T) {
	cases := []struct {
		uri, src string
		ok       bool
	}{
		{"https://app.example/cb?x=1", "https://app.example", true},
		{"http://127.0.0.1:7777/cb", "http://127.0.0.1:7777", true},
		{"http://[::1]:80/cb", "http://[::1]:80", true},
		{"com.example.app:/oauth", "com.example.app:", true},
		{"HTTPS://App.Example/cb", "https://App.Example", true},
		{"/relative", "", false},
		{"https:///nohost", "", false},
		{"https://a.example;script-src/cb", "", false},
		{"1bad:/x", "", false},
	}
	for _, c := range cases {
		src, ok := cspSource(c.uri)
		if src != c.src || ok != c.ok {
			t.Errorf("cspSource(%q) = %q, %v; want %q, %v", c.uri, src, ok, c.src, c.ok)
		}
	}
}
