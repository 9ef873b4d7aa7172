package page

import (
	"net/http/httptest"
	"testing"
)

func TestSameOrigin(t *testing.T) {
	tests := []struct {
		name    string
		host    string
		headers map[string]string
		want    bool
	}{
		{name: "no browser headers", host: "id.example", want: true},
		{name: "same origin", host: "id.example", headers: map[string]string{"Origin": "https://id.example"}, want: true},
		{name: "default port written out", host: "id.example:443", headers: map[string]string{"Origin": "https://id.example"}, want: true},
		{name: "host case", host: "ID.example", headers: map[string]string{"Origin": "https://id.EXAMPLE"}, want: true},
		{name: "IPv6 host", host: "[::1]:8080", headers: map[string]string{"Origin": "http://[::1]:8080"}, want: true},
		{name: "other port", host: "id.example:8443", headers: map[string]string{"Origin": "https://id.example"}, want: false},
		{name: "http origin on the https port", host: "id.example:443", headers: map[string]string{"Origin": "http://id.example"}, want: false},
		{name: "other host", host: "id.example", headers: map[string]string{"Origin": "https://evil.example"}, want: false},
		{name: "suffix host", host: "id.example", headers: map[string]string{"Origin": "https://id.example.evil.example"}, want: false},
		{name: "garbage origin", host: "id.example", headers: map[string]string{"Origin": "::::"}, want: false},
		{name: "origin wins over referer", host: "id.example", headers: map[string]string{"Origin": "https://evil.example", "Referer": "https://id.example/x"}, want: false},
		{name: "same referer", host: "id.example", headers: map[string]string{"Referer": "https://id.example/api/oauth/user_confirmation?uca=x"}, want: true},
		{name: "other referer", host: "id.example", headers: map[string]string{"Referer": "https://evil.example/"}, want: false},
		{name: "null origin, same-origin fetch", host: "id.example", headers: map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin"}, want: true},
		{name: "null origin alone", host: "id.example", headers: map[string]string{"Origin": "null"}, want: false},
		{name: "null origin, cross-site fetch", host: "id.example", headers: map[string]string{"Origin": "null", "Sec-Fetch-Site": "cross-site"}, want: false},
		{name: "same-site fetch with our origin", host: "id.example", headers: map[string]string{"Origin": "https://id.example", "Sec-Fetch-Site": "same-site"}, want: false},
		{name: "user-initiated", host: "id.example", headers: map[string]string{"Sec-Fetch-Site": "none"}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/oauth/user_confirmation", nil)
			r.Host = tt.host
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			if got := sameOrigin(r); got != tt.want {
				t.Fatalf("sameOrigin = %v, want %v", got, tt.want)
			}
		})
	}
}
