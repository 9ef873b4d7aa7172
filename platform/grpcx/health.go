package grpcx

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/run"
	"github.com/moreline/moreid/platform/telemetry"
)

var errDraining = errors.New("shutting down")

// Probe reports whether one dependency (Redis, Postgres, another service)
// answers. It must return quickly; Health gives it a deadline.
type Probe func(ctx context.Context) error

// probeTimeout bounds one probe.
const probeTimeout = time.Second

// Health is a grpc.health.v1 service computed from live probes at every
// Check, so that "SERVING" means the component's own dependencies answered
// just now (auth: Redis; user and apikey: Postgres). The empty service name
// is the component's readiness; a named one checks one dependency.
//
// Other Moreid components it calls are downstream (see Downstream): never
// part of its readiness, or one store's outage would cascade through every
// caller and Kubernetes would pull every pod, also those that can still
// serve (auth redeems issued codes while Postgres is down).
type Health struct {
	healthpb.UnimplementedHealthServer
	probes     map[string]Probe
	downstream map[string]*watch
}

// NewHealth returns a health service whose readiness is the named probes
// of the component's own dependencies.
func NewHealth(probes map[string]Probe) *Health { return &Health{probes: probes} }

// Downstream adds the components this one calls (by name, each probed
// through its own health service, see ServiceProbe). They are not part of
// the readiness: each Check of the empty name probes them in the
// background and reports their state in moreid_downstream_up{component,
// downstream} (recorded by tel) and a log line when it changes; a Check of
// one of their names answers for it.
func (h *Health) Downstream(component string, log *slog.Logger, tel *telemetry.Telemetry, probes map[string]Probe) *Health {
	if h.downstream == nil {
		h.downstream = map[string]*watch{}
	}
	for name, p := range probes {
		h.downstream[name] = &watch{probe: p, report: newReporter(component, name, log, tel)}
	}
	return h
}

// Check implements grpc.health.v1.Health.
func (h *Health) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	// A process shutting down is not ready, whatever its dependencies say
	// (platform/run: the listener serves on through the pause).
	if run.Draining(ctx) {
		return answer(errDraining), nil
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if name := req.GetService(); name != "" {
		if p, ok := h.probes[name]; ok {
			return answer(p(ctx)), nil
		}
		if w, ok := h.downstream[name]; ok {
			err := w.probe(ctx)
			w.report(err)
			return answer(err), nil
		}
		return nil, status.Error(codes.NotFound, "unknown service")
	}
	for _, w := range h.downstream {
		w.observe()
	}
	for _, p := range h.probes {
		if err := p(ctx); err != nil {
			return answer(err), nil
		}
	}
	return answer(nil), nil
}

// List implements grpc.health.v1.Health.
func (h *Health) List(ctx context.Context, _ *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	out := &healthpb.HealthListResponse{Statuses: map[string]*healthpb.HealthCheckResponse{}}
	var names []string
	for name := range h.probes {
		names = append(names, name)
	}
	for name := range h.downstream {
		names = append(names, name)
	}
	for _, name := range names {
		r, _ := h.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		out.Statuses[name] = r
	}
	return out, nil
}

func answer(err error) *healthpb.HealthCheckResponse {
	if err != nil {
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}
}

// watch is one downstream component.
type watch struct {
	probe  Probe
	report func(error)
	busy   atomic.Bool
}

// observe probes the component in the background, one probe at a time,
// so that a slow callee never slows its caller's readiness answer.
func (w *watch) observe() {
	if !w.busy.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer w.busy.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		w.report(w.probe(ctx))
	}()
}

// newReporter records a downstream component's state in the gauge and logs
// each change (not each probe).
func newReporter(component, downstream string, log *slog.Logger, tel *telemetry.Telemetry) func(error) {
	var last atomic.Int32 // 0 unknown, 1 up, 2 down
	return func(err error) {
		tel.DownstreamUp(component, downstream, err == nil)
		state := int32(1)
		if err != nil {
			state = 2
		}
		if last.Swap(state) == state {
			return
		}
		if err != nil {
			log.Warn("downstream not ready", "downstream", downstream, "error", err.Error())
		} else {
			log.Info("downstream ready", "downstream", downstream)
		}
	}
}

// ServiceProbe probes a remote component through its own health service:
// it must answer SERVING.
func ServiceProbe(client healthpb.HealthClient) Probe {
	return func(ctx context.Context) error {
		r, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return errNotServing
		}
		return nil
	}
}

// ConnectionProbe probes the connection to a remote component: it is up
// when the component's health service answers at all, SERVING or not, so
// that the callee's own readiness does not cascade into the caller's. What
// the component answered is reported as a downstream state (see
// Downstream) of component, recorded by tel.
func ConnectionProbe(component, downstream string, log *slog.Logger, tel *telemetry.Telemetry, client healthpb.HealthClient) Probe {
	report := newReporter(component, downstream, log, tel)
	return func(ctx context.Context) error {
		r, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			report(err)
			return err
		}
		if r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			report(errNotServing)
		} else {
			report(nil)
		}
		return nil
	}
}

var errNotServing = status.Error(codes.Unavailable, "not serving")
