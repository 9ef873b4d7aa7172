package telemetry

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/moreline/moreid/platform/config"
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

// The OTLP variables the Reader reads: either endpoint turns tracing on,
// the traces-only one winning (as in the OpenTelemetry specification).
const (
	EnvOTLPEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvOTLPTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
)

// Settings are a process's telemetry configuration.
type Settings struct {
	// MetricsAddr is where /metrics is served (see ReadSettings).
	MetricsAddr string
	// Profiling serves /debug/pprof/ next to /metrics (MOREID_PPROF=1).
	Profiling bool
	// TraceEndpoint is the OTLP/gRPC collector's URL; "" turns tracing
	// off, so that it costs nothing by default.
	TraceEndpoint string
}

// ReadSettings reads the metrics address of component
// (MOREID_<COMPONENT>_METRICS_ADDR, else MOREID_METRICS_ADDR, else the
// component's default), MOREID_PPROF and the OTLP endpoint, recording bad
// values in r.
func ReadSettings(r *config.Reader, component string) Settings {
	s := Settings{
		MetricsAddr: r.String("MOREID_"+strings.ToUpper(component)+"_METRICS_ADDR",
			r.String("MOREID_METRICS_ADDR", DefaultMetricsAddrs[component])),
		Profiling: r.Flag("MOREID_PPROF"),
	}
	name := EnvOTLPTracesEndpoint
	s.TraceEndpoint = r.String(name, "")
	if s.TraceEndpoint == "" {
		name, s.TraceEndpoint = EnvOTLPEndpoint, r.String(EnvOTLPEndpoint, "")
	}
	if s.TraceEndpoint != "" {
		// The exporter would otherwise log the mistake and send nowhere.
		if u, err := url.Parse(s.TraceEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			r.Fail(name, s.TraceEndpoint, errors.New("want an http:// or https:// URL"))
			s.TraceEndpoint = ""
		}
	}
	return s
}

// Telemetry is a process's metrics and tracing: build one with New and pass
// it to every component of the process.
type Telemetry struct {
	m  *metrics
	tp *sdktrace.TracerProvider // nil: tracing off
}

// New registers the metrics on reg (the process's registry, see
// NewRegistry) and, with a trace endpoint, starts exporting the spans of
// component. Build it first in main: gRPC options, clients and stores
// built afterwards take it. Close flushes the spans at exit.
func New(ctx context.Context, s Settings, reg prometheus.Registerer, component string) (*Telemetry, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	t := &Telemetry{m: m}
	if s.TraceEndpoint != "" {
		if t.tp, err = newTracing(ctx, s.TraceEndpoint, component); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Close flushes the spans not exported yet.
func (t *Telemetry) Close(ctx context.Context) error {
	if t == nil || t.tp == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}
