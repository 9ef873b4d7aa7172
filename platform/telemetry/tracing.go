package telemetry

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"google.golang.org/grpc"
)

var tracing atomic.Bool

// TracingEnabled reports whether SetupTracing turned tracing on.
func TracingEnabled() bool { return tracing.Load() }

// SetupTracing turns tracing on when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, exporting spans over OTLP/gRPC
// with the standard OTEL_* settings; otherwise it does nothing, so tracing
// costs nothing by default. Call it first in main, before building gRPC
// servers, clients or stores; call the returned function at exit to flush.
func SetupTracing(ctx context.Context, component string) (shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return noop, nil
	}
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		return noop, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	// Schemaless, so the merge with the SDK's default resource never fails
	// on a schema-version mismatch after an SDK upgrade.
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName("moreid-"+component), semconv.ServiceNamespace("moreid")))
	if err != nil {
		return noop, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	tracing.Store(true)
	return tp.Shutdown, nil
}

// GRPCServerOptions are the tracing options of a gRPC server (none when
// tracing is off).
func GRPCServerOptions() []grpc.ServerOption {
	if !TracingEnabled() {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler())}
}

// GRPCDialOptions are the tracing options of a gRPC client (none when
// tracing is off).
func GRPCDialOptions() []grpc.DialOption {
	if !TracingEnabled() {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler())}
}
