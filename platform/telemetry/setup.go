package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/run"
)

// DefaultMetricsAddrs are the loopback metrics ports of a local suite, where
// the four processes share one machine. In Kubernetes every pod sets
// MOREID_METRICS_ADDR=:9100.
var DefaultMetricsAddrs = map[string]string{
	"gateway": "127.0.0.1:9100",
	"auth":    "127.0.0.1:9101",
	"user":    "127.0.0.1:9102",
	"apikey":  "127.0.0.1:9103",
	// A process serving several roles, as make run does: the gateway's port.
	"moreid": "127.0.0.1:9100",
}

// Telemetry is a component's metrics listener and tracing provider.
type Telemetry struct {
	// Metrics serves /metrics; add it to the component's run.Group.
	Metrics  run.Unit
	shutdown func(context.Context) error
}

// Setup starts tracing (when configured, see SetupTracing) and opens the
// metrics listener at MOREID_<COMPONENT>_METRICS_ADDR, else
// MOREID_METRICS_ADDR, else the component's default. Call it first in main:
// gRPC options, clients and stores built afterwards are instrumented.
func Setup(ctx context.Context, r *config.Reader, component string) (*Telemetry, error) {
	addr := r.String("MOREID_"+strings.ToUpper(component)+"_METRICS_ADDR",
		r.String("MOREID_METRICS_ADDR", DefaultMetricsAddrs[component]))
	profiling := Profiling(r)
	if err := r.Err(); err != nil {
		return nil, err
	}
	shutdown, err := SetupTracing(ctx, component)
	if err != nil {
		return nil, err
	}
	unit, err := MetricsServer(addr, profiling)
	if err != nil {
		_ = shutdown(ctx)
		return nil, fmt.Errorf("%s: %w", component, err)
	}
	return &Telemetry{Metrics: unit, shutdown: shutdown}, nil
}

// Profiling reads MOREID_PPROF: 1 serves /debug/pprof/ on the metrics
// listener (off by default).
func Profiling(r *config.Reader) bool { return r.Flag("MOREID_PPROF") }

// Close flushes the spans not exported yet.
func (t *Telemetry) Close(ctx context.Context) error { return t.shutdown(ctx) }

// HTTPHandler traces every request through h when tracing is on, taking the
// caller's trace context from the W3C headers; otherwise it returns h.
func HTTPHandler(h http.Handler, operation string) http.Handler {
	if !TracingEnabled() {
		return h
	}
	return otelhttp.NewHandler(h, operation)
}
