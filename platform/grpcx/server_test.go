package grpcx_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/grpcx/grpctest"
	"github.com/moreline/moreid/platform/telemetry/telemetrytest"
)

// TestServerCountsCalls: a server built with a Telemetry counts every call
// by method and code on that Telemetry's registry.
func TestServerCountsCalls(t *testing.T) {
	tel, reg := telemetrytest.New(t)
	srv := grpc.NewServer(grpcx.ServerOptions(slog.New(slog.DiscardHandler), tel)...)
	healthpb.RegisterHealthServer(srv, grpcx.NewHealth(map[string]grpcx.Probe{"redis": probe(nil)}))
	client := healthpb.NewHealthClient(grpctest.Dial(t, grpctest.Serve(t, srv)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, service := range []string{"", "redis", "no-such-service"} {
		_, _ = client.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	}
	const method = "/grpc.health.v1.Health/Check"
	for code, want := range map[string]float64{"OK": 2, "NotFound": 1, "Internal": 0} {
		if got := reg.Counter("moreid_grpc_server_handled_total", "method", method, "code", code); got != want {
			t.Errorf("moreid_grpc_server_handled_total{code=%q} = %v, want %v", code, got, want)
		}
	}
}
