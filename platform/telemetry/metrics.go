// Package telemetry gives every Moreid component the same Prometheus
// metrics (served on a port of their own, never on the public listener) and
// OpenTelemetry tracing (exported over OTLP when configured, off otherwise).
//
// A process builds one Telemetry (New) over a registry of its own
// (NewRegistry) and hands it to everything that records a metric or
// traces: there is no package state, so the components of one process
// share one registry and tests read a fresh one.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/run"
)

// metrics are the series every component exports.
type metrics struct {
	rpcHandled     *prometheus.CounterVec
	rpcLatency     *prometheus.HistogramVec
	httpHandled    *prometheus.CounterVec
	httpLatency    *prometheus.HistogramVec
	storeErrors    *prometheus.CounterVec
	throttled      *prometheus.CounterVec
	profileLookups *prometheus.CounterVec
	listenerLive   *prometheus.GaugeVec
	downstreamUp   *prometheus.GaugeVec
	auditDropped   prometheus.Counter
	// Bound once: these are counted on the hottest read path.
	profileHits, profileMisses prometheus.Counter
}

// latencyBuckets span a cache hit (100 µs) to a slow argon2id login (2.5 s).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// newMetrics registers the metrics on reg. A second call on the same
// registry fails: one process has one Telemetry.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rpcHandled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moreid_grpc_server_handled_total",
			Help: "gRPC calls served, by method and status code.",
		}, []string{"method", "code"}),
		rpcLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "moreid_grpc_server_handling_seconds",
			Help:    "Time to serve a gRPC call, by method.",
			Buckets: latencyBuckets,
		}, []string{"method"}),
		httpHandled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moreid_http_requests_total",
			Help: "HTTP requests served by the gateway, by route, method and status.",
		}, []string{"route", "method", "status"}),
		httpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "moreid_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route.",
			Buckets: latencyBuckets,
		}, []string{"route", "method"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moreid_store_errors_total",
			Help: "Failed Redis or Postgres operations (outages, timeouts), by store.",
		}, []string{"store"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moreid_throttled_total",
			Help: "Requests refused by a brute-force limit, by limit.",
		}, []string{"limit"}),
		profileLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moreid_user_profile_cache_lookups_total",
			Help: "Profile reads in the user service, by result: hit (served from memory) or miss (read from Postgres).",
		}, []string{"result"}),
		listenerLive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "moreid_postgres_listener_live",
			Help: "1 while the Postgres change listener of a channel is connected; 0 means the cache it feeds is off.",
		}, []string{"channel"}),
		downstreamUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "moreid_downstream_up",
			Help: "1 while a Moreid component this one calls reports ready, 0 otherwise (updated at each readiness check). Not part of this component's own readiness.",
		}, []string{"component", "downstream"}),
		auditDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "moreid_audit_dropped_total",
			Help: "Audit events lost: the in-memory queue was full (Postgres slow or down for long), " +
				"Postgres refused a batch as invalid, or events were still queued when the shutdown drain deadline passed.",
		}),
	}
	m.profileHits, m.profileMisses = m.profileLookups.WithLabelValues("hit"), m.profileLookups.WithLabelValues("miss")
	for _, c := range []prometheus.Collector{m.rpcHandled, m.rpcLatency, m.httpHandled, m.httpLatency,
		m.storeErrors, m.throttled, m.profileLookups, m.listenerLive, m.downstreamUp, m.auditDropped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// NewRegistry returns the registry of one process: empty but for the Go
// runtime and process collectors (memory, file descriptors). Pass it to New
// and serve it with MetricsServer.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Store names for StoreError.
const (
	Redis    = "redis"
	Postgres = "postgres"
)

// The recording methods below accept a nil *Telemetry and record nothing:
// a tool (moreidctl) or a unit test that serves no metrics passes nil.

// StoreError counts one failed operation on store (Redis or Postgres).
func (t *Telemetry) StoreError(store string) {
	if t != nil {
		t.m.storeErrors.WithLabelValues(store).Inc()
	}
}

// Throttled counts one request refused by the named limit.
func (t *Telemetry) Throttled(limit string) {
	if t != nil {
		t.m.throttled.WithLabelValues(limit).Inc()
	}
}

// ProfileLookup counts one profile read, served from memory or not.
func (t *Telemetry) ProfileLookup(hit bool) {
	switch {
	case t == nil:
	case hit:
		t.m.profileHits.Inc()
	default:
		t.m.profileMisses.Inc()
	}
}

// ListenerLive records whether the change listener of channel is connected.
func (t *Telemetry) ListenerLive(channel string, live bool) {
	if t != nil {
		t.m.listenerLive.WithLabelValues(channel).Set(gauge(live))
	}
}

// DownstreamUp records whether downstream, a component that component
// calls, reported ready.
func (t *Telemetry) DownstreamUp(component, downstream string, up bool) {
	if t != nil {
		t.m.downstreamUp.WithLabelValues(component, downstream).Set(gauge(up))
	}
}

// AuditDropped counts n audit events lost.
func (t *Telemetry) AuditDropped(n int) {
	if t != nil {
		t.m.auditDropped.Add(float64(n))
	}
}

func gauge(on bool) float64 {
	if on {
		return 1
	}
	return 0
}

// UnaryServerInterceptor records every gRPC call's outcome and latency;
// nil when t is nil (nothing to record).
func (t *Telemetry) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	if t == nil {
		return nil
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := next(ctx, req)
		t.m.rpcLatency.WithLabelValues(info.FullMethod).Observe(time.Since(start).Seconds())
		t.m.rpcHandled.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
		return resp, err
	}
}

// ObserveHTTP records one HTTP answer. route must come from a fixed set (the
// mapped paths, or "other"), never from the raw URL, so that the number of
// series stays bounded whatever clients send.
func (t *Telemetry) ObserveHTTP(route, method string, status int, elapsed time.Duration) {
	if t == nil {
		return
	}
	t.m.httpHandled.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	t.m.httpLatency.WithLabelValues(route, method).Observe(elapsed.Seconds())
}

// MetricsServer returns a run.Unit serving g (the process's registry) as
// /metrics on addr, the operator's port, never the public listener. With
// profiling it also serves the Go profiler (/debug/pprof/), so that a
// process can be profiled under real load without a rebuild; it is off by
// default (MOREID_PPROF=1, see ReadSettings) because a profile shows
// whoever reaches the port the memory and command line of the process, and
// a CPU profile costs CPU.
func MetricsServer(addr string, profiling bool, g prometheus.Gatherer) (run.Unit, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	if profiling {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	// No WriteTimeout: a CPU profile streams for its whole duration.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	u, err := run.HTTP("metrics", addr, srv)
	if err != nil {
		return run.Unit{}, errors.Join(errors.New("metrics listener (MOREID_METRICS_ADDR)"), err)
	}
	return u, nil
}
