// Package telemetry gives every Moreid component the same Prometheus
// metrics (served on a port of their own, never on the public listener) and
// OpenTelemetry tracing (exported over OTLP when configured, off otherwise).
package telemetry

import (
	"context"
	"errors"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/run"
)

// The metrics every component exports. They live in the default registry,
// next to the Go runtime and process collectors (memory, file descriptors).
var (
	rpcHandled = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "moreid_grpc_server_handled_total",
		Help: "gRPC calls served, by method and status code.",
	}, []string{"method", "code"})
	rpcLatency = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "moreid_grpc_server_handling_seconds",
		Help:    "Time to serve a gRPC call, by method.",
		Buckets: latencyBuckets,
	}, []string{"method"})
	httpHandled = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "moreid_http_requests_total",
		Help: "HTTP requests served by the gateway, by route, method and status.",
	}, []string{"route", "method", "status"})
	httpLatency = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "moreid_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by route.",
		Buckets: latencyBuckets,
	}, []string{"route", "method"})
	storeErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "moreid_store_errors_total",
		Help: "Failed Redis or Postgres operations (outages, timeouts), by store.",
	}, []string{"store"})
	throttled = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "moreid_throttled_total",
		Help: "Requests refused by a brute-force limit, by limit.",
	}, []string{"limit"})
	profileLookups = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "moreid_user_profile_cache_lookups_total",
		Help: "Profile reads in the user service, by result: hit (served from memory) or miss (read from Postgres).",
	}, []string{"result"})
	listenerLive = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "moreid_postgres_listener_live",
		Help: "1 while the Postgres change listener of a channel is connected; 0 means the cache it feeds is off.",
	}, []string{"channel"})
	downstreamUp = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "moreid_downstream_up",
		Help: "1 while a Moreid component this one calls reports ready, 0 otherwise (updated at each readiness check). Not part of this component's own readiness.",
	}, []string{"component", "downstream"})
	// Bound once: these are counted on the hottest read path.
	profileHits, profileMisses = profileLookups.WithLabelValues("hit"), profileLookups.WithLabelValues("miss")
)

// latencyBuckets span a cache hit (100 µs) to a slow argon2id login (2.5 s).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// Store names for StoreError.
const (
	Redis    = "redis"
	Postgres = "postgres"
)

// StoreError counts one failed operation on store (Redis or Postgres).
func StoreError(store string) { storeErrors.WithLabelValues(store).Inc() }

// Throttled counts one request refused by the named limit.
func Throttled(limit string) { throttled.WithLabelValues(limit).Inc() }

// ProfileLookup counts one profile read, served from memory or not.
func ProfileLookup(hit bool) {
	if hit {
		profileHits.Inc()
	} else {
		profileMisses.Inc()
	}
}

// ListenerLive records whether the change listener of channel is connected.
func ListenerLive(channel string, live bool) {
	v := 0.0
	if live {
		v = 1
	}
	listenerLive.WithLabelValues(channel).Set(v)
}

// DownstreamUp records whether downstream, a component that component
// calls, reported ready.
func DownstreamUp(component, downstream string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	downstreamUp.WithLabelValues(component, downstream).Set(v)
}

// UnaryServerInterceptor records every gRPC call's outcome and latency.
func UnaryServerInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := next(ctx, req)
	rpcLatency.WithLabelValues(info.FullMethod).Observe(time.Since(start).Seconds())
	rpcHandled.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
	return resp, err
}

// ObserveHTTP records one HTTP answer. route must come from a fixed set (the
// mapped paths, or "other"), never from the raw URL, so that the number of
// series stays bounded whatever clients send.
func ObserveHTTP(route, method string, status int, elapsed time.Duration) {
	httpHandled.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	httpLatency.WithLabelValues(route, method).Observe(elapsed.Seconds())
}

// MetricsServer returns a run.Unit serving /metrics on addr, the
// operator's port, never the public listener. With profiling it also serves
// the Go profiler (/debug/pprof/), so that a process can be profiled under
// real load without a rebuild; it is off by default (MOREID_PPROF=1, see
// Profiling) because a profile shows whoever reaches the port the memory
// and command line of the process, and a CPU profile costs CPU.
func MetricsServer(addr string, profiling bool) (run.Unit, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.Handler())
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
