package telemetry

import (
	"context"
	"testing"
)

// SetupTracing must succeed whenever an endpoint is configured: a failure
// here stops every component at start-up.
func TestSetupTracingWithAnEndpoint(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
	shutdown, err := SetupTracing(context.Background(), "test")
	if err != nil {
		t.Fatalf("SetupTracing: %v", err)
	}
	t.Cleanup(func() { tracing.Store(false); _ = shutdown(context.Background()) })
	if !TracingEnabled() || len(GRPCServerOptions()) == 0 || len(GRPCDialOptions()) == 0 {
		t.Fatal("tracing configured but not enabled")
	}
}

func TestTracingIsOffByDefault(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	if _, err := SetupTracing(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	if TracingEnabled() || GRPCServerOptions() != nil || GRPCDialOptions() != nil {
		t.Fatal("tracing is on without an endpoint")
	}
}
