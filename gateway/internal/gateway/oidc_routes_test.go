package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/grpcx"
)

// TestOIDCPathsAreMountedExplicitly: the OIDC endpoints answer under the
// configured issuer, while everything else (health, the JSON API, unknown
// /oidc/ paths) keeps its own handling.
func TestOIDCPathsAreMountedExplicitly(t *testing.T) {
	b := startBackend(t)
	h, err := New(b.conn, nil, testCSRFKey, discard(), nil, grpcx.ConnectionProbe("gateway", "auth", discard(), nil, healthpb.NewHealthClient(b.conn)),
		WithIssuer("https://id.example"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	r := send(t, srv, request{method: "GET", path: "/.well-known/openid-configuration"})
	if r.status != 200 || r.json["issuer"] != "https://id.example" || r.json["token_endpoint"] != "https://id.example/oidc/token" {
		t.Fatalf("discovery %d %s", r.status, r.raw)
	}
	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/healthz", 200},
		{"GET", "/oidc/token", 405},
		{"GET", "/oidc/unknown", 404},
		{"GET", "/oidc/authorize/callback", 404},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
		})
	}
	// An unknown path under /oidc is the JSON API's 404, not the provider's.
	assertError(t, send(t, srv, request{method: "GET", path: "/oidc/unknown"}), 404, apierr.NotFound, "")
	// The authorization endpoint's error page is HTML from the kit.
	res, err := srv.Client().Get(srv.URL + "/oidc/authorize?client_id=mlc_x")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("authorize answer %d %v", res.StatusCode, res.Header)
	}
}
