package grpcx

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/moreline/moreid/platform/run"
)

// TestHealthFailsFirstAtShutdown: once its unit is quiesced (SIGTERM), a
// server answers NOT_SERVING on connections it already had, while it still
// serves them, whatever its probes say.
func TestHealthFailsFirstAtShutdown(t *testing.T) {
	callers := run.NewCallers()
	srv := grpc.NewServer(grpc.StatsHandler(callers))
	healthpb.RegisterHealthServer(srv, NewHealth(map[string]Probe{"redis": func(context.Context) error { return nil }}))
	unit, err := run.GRPC("test", "127.0.0.1:0", srv, callers) // the unit keeps the port
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = unit.Serve() }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(unit.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("Check(%q): %v", service, err)
		}
		return r.GetStatus()
	}
	for _, service := range []string{"", "redis"} {
		if got := check(service); got != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("before shutdown, Check(%q) = %v", service, got)
		}
	}
	unit.Quiesce()
	for _, service := range []string{"", "redis"} {
		if got := check(service); got != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("after quiesce, Check(%q) = %v, want NOT_SERVING", service, got)
		}
	}
}
