package telemetry

import (
	"context"
	"fmt"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// propagator carries trace context between components in the W3C headers.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// newTracing starts exporting spans over OTLP/gRPC to endpoint for the
// named component. The endpoint is the Reader's (see ReadSettings); the
// exporter and the batch processor still read their other standard
// variables (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, OTEL_BSP_*) from the
// process environment themselves.
func newTracing(ctx context.Context, endpoint, component string) (*sdktrace.TracerProvider, error) {
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	// Schemaless, so the merge with the SDK's default resource never fails
	// on a schema-version mismatch after an SDK upgrade.
	// A process serving one role is moreid-<role>; one serving several
	// (component "moreid") is moreid.
	service := "moreid-" + component
	if component == "moreid" {
		service = component
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(service), semconv.ServiceNamespace("moreid")))
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// TracerProvider is the provider spans go to, nil when tracing is off.
func (t *Telemetry) TracerProvider() trace.TracerProvider {
	if t == nil || t.tp == nil {
		return nil
	}
	return t.tp
}

// Tracing reports whether spans are exported.
func (t *Telemetry) Tracing() bool { return t.TracerProvider() != nil }

// GRPCServerOptions are the tracing options of a gRPC server (none when
// tracing is off).
func (t *Telemetry) GRPCServerOptions() []grpc.ServerOption {
	if !t.Tracing() {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(t.tp), otelgrpc.WithPropagators(propagator)))}
}

// GRPCDialOptions are the tracing options of a gRPC client (none when
// tracing is off): pass them to grpcx.Dial.
func (t *Telemetry) GRPCDialOptions() []grpc.DialOption {
	if !t.Tracing() {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(t.tp), otelgrpc.WithPropagators(propagator)))}
}

// HTTPHandler traces every request through h when tracing is on, taking the
// caller's trace context from the W3C headers; otherwise it returns h.
func (t *Telemetry) HTTPHandler(h http.Handler, operation string) http.Handler {
	if !t.Tracing() {
		return h
	}
	return otelhttp.NewHandler(h, operation, otelhttp.WithTracerProvider(t.tp), otelhttp.WithPropagators(propagator))
}
