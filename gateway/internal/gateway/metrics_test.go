package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/telemetry/telemetrytest"
)

// TestAnswersCounted: every answer is counted on the Telemetry passed in,
// by mapped route (an unknown path is "other", so that clients cannot grow
// the number of series), method and status; the readiness check records
// whether auth answered.
func TestAnswersCounted(t *testing.T) {
	b := startBackend(t)
	tel, reg := telemetrytest.New(t)
	log := discard()
	h, err := New(b.conn, nil, testCSRFKey, log, tel, grpcx.ConnectionProbe("gateway", "auth", log, tel, healthpb.NewHealthClient(b.conn)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := &http.Client{Timeout: 10 * time.Second}
	for _, path := range []string{"/healthz", "/healthz", "/readyz", "/api/oauth/no-such-path-1", "/api/oauth/no-such-path-2"} {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for _, tt := range []struct {
		route, status string
		want          float64
	}{
		{"/healthz", "200", 2},
		{"/readyz", "200", 1},
		{"other", "404", 2},
	} {
		if got := reg.Counter("moreid_http_requests_total", "route", tt.route, "method", "GET", "status", tt.status); got != tt.want {
			t.Errorf("moreid_http_requests_total{route=%q,status=%s} = %v, want %v", tt.route, tt.status, got, tt.want)
		}
	}
	if got := reg.Counter("moreid_http_requests_total", "route", "/api/oauth/no-such-path-1"); got != 0 {
		t.Errorf("a raw path became a route label (%v requests)", got)
	}
	if got := reg.Gauge("moreid_downstream_up", "component", "gateway", "downstream", "auth"); got != 1 {
		t.Errorf("moreid_downstream_up{gateway,auth} = %v after a ready answer, want 1", got)
	}
}
