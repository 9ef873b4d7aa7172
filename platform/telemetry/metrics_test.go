package telemetry

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestMetricsOnTheRegistryPassedIn: what a Telemetry records shows on its
// own registry, under the names operators scrape, and nowhere else.
func TestMetricsOnTheRegistryPassedIn(t *testing.T) {
	reg := prometheus.NewRegistry()
	tel, err := New(context.Background(), Settings{}, reg, "test")
	if err != nil {
		t.Fatal(err)
	}
	tel.StoreError(Redis)
	tel.StoreError(Redis)
	tel.Throttled("ip")
	tel.ProfileLookup(true)
	tel.ProfileLookup(false)
	tel.ProfileLookup(false)
	tel.ListenerLive("users", true)
	tel.DownstreamUp("auth", "user", false)
	tel.ObserveHTTP("/api/oauth/token", "POST", 200, time.Millisecond)
	info := &grpc.UnaryServerInfo{FullMethod: "/x.Y/Z"}
	_, _ = tel.UnaryServerInterceptor()(context.Background(), nil, info, func(context.Context, any) (any, error) {
		return nil, status.Error(codes.NotFound, "no")
	})

	for name, tt := range map[string]struct {
		c    prometheus.Collector
		want float64
	}{
		"store errors":   {tel.m.storeErrors.WithLabelValues(Redis), 2},
		"throttled":      {tel.m.throttled.WithLabelValues("ip"), 1},
		"profile hits":   {tel.m.profileLookups.WithLabelValues("hit"), 1},
		"profile misses": {tel.m.profileLookups.WithLabelValues("miss"), 2},
		"listener live":  {tel.m.listenerLive.WithLabelValues("users"), 1},
		"downstream up":  {tel.m.downstreamUp.WithLabelValues("auth", "user"), 0},
		"http requests":  {tel.m.httpHandled.WithLabelValues("/api/oauth/token", "POST", "200"), 1},
		"grpc calls":     {tel.m.rpcHandled.WithLabelValues("/x.Y/Z", "NotFound"), 1},
	} {
		if got := testutil.ToFloat64(tt.c); got != tt.want {
			t.Errorf("%s = %v, want %v", name, got, tt.want)
		}
	}
	n, err := testutil.GatherAndCount(reg, "moreid_store_errors_total", "moreid_throttled_total",
		"moreid_user_profile_cache_lookups_total", "moreid_postgres_listener_live", "moreid_downstream_up",
		"moreid_http_requests_total", "moreid_http_request_duration_seconds",
		"moreid_grpc_server_handled_total", "moreid_grpc_server_handling_seconds")
	if err != nil {
		t.Fatal(err)
	}
	if n != 10 { // the series above, with both profile results
		t.Errorf("%d series on the registry, want 10", n)
	}
	if n, _ := testutil.GatherAndCount(prometheus.DefaultGatherer, "moreid_store_errors_total"); n != 0 {
		t.Errorf("the default registry holds %d store error series: metrics leaked out of the registry passed in", n)
	}
}

// TestOneTelemetryPerRegistry: a second Telemetry on the same registry is
// an error, not a panic, and no Telemetry at all records nothing.
func TestOneTelemetryPerRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(context.Background(), Settings{}, reg, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), Settings{}, reg, "b"); err == nil || !strings.Contains(err.Error(), "register metrics") {
		t.Fatalf("second New on one registry: %v, want a registration error", err)
	}
	var none *Telemetry
	none.StoreError(Postgres)
	none.ProfileLookup(true)
	if none.UnaryServerInterceptor() != nil || none.Tracing() {
		t.Fatal("a nil Telemetry instruments something")
	}
}
