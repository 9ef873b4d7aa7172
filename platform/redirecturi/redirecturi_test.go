package redirecturi

import "testing"

func TestMatches(t *testing.T) {
	reg := []string{"https://app.example/cb", "http://127.0.0.1/callback", "http://[::1]:8080/cb?x=1", "http://localhost:3000/cb", "com.example.app:/cb"}
	tests := []struct {
		name      string
		requested string
		public    bool
		want      bool
	}{
		{"exact https", "https://app.example/cb", false, true},
		{"exact custom scheme", "com.example.app:/cb", true, true},
		{"https trailing slash", "https://app.example/cb/", true, false},
		{"https case", "https://APP.example/cb", true, false},
		{"https other port", "https://app.example:8443/cb", true, false},
		{"loopback any port, public", "http://127.0.0.1:54321/callback", true, true},
		{"loopback port on a portless registration, confidential", "http://127.0.0.1:54321/callback", false, false},
		{"loopback no port, public", "http://127.0.0.1/callback", true, true},
		{"loopback other path", "http://127.0.0.1:54321/callback2", true, false},
		{"loopback query must match", "http://127.0.0.1:5/callback?x=1", true, false},
		{"ipv6 loopback other port", "http://[::1]:9/cb?x=1", true, true},
		{"ipv6 loopback query differs", "http://[::1]:9/cb?x=2", true, false},
		{"localhost gets no leeway", "http://localhost:3001/cb", true, false},
		{"userinfo", "http://u@127.0.0.1:5/callback", true, false},
		{"fragment", "http://127.0.0.1:5/callback#f", true, false},
		{"non-numeric port", "http://127.0.0.1:x/callback", true, false},
		{"other loopback address", "http://127.0.0.2:5/callback", true, false},
		{"https loopback", "https://127.0.0.1:5/callback", true, false},
		{"encoded path differs", "http://127.0.0.1:5/%63allback", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Matches(reg, tt.requested, tt.public); got != tt.want {
				t.Errorf("Matches(%q, public=%v) = %v, want %v", tt.requested, tt.public, got, tt.want)
			}
		})
	}
}
