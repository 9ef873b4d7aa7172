package grpcx

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/run"
)

var errDraining = errors.New("shutting down")

// Probe reports whether one dependency (Redis, Postgres, another service)
// answers. It must return quickly; Health gives it a deadline.
type Probe func(ctx context.Context) error

// Health is a grpc.health.v1 service computed from live probes at every
// Check, so that "SERVING" means the dependencies answered just now. The
// empty service name checks every probe; a named one only its own.
type Health struct {
	healthpb.UnimplementedHealthServer
	probes map[string]Probe
}

// NewHealth returns a health service over the named probes.
func NewHealth(probes map[string]Probe) *Health { return &Health{probes: probes} }

// Check implements grpc.health.v1.Health.
func (h *Health) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	// A process shutting down is not ready, whatever its dependencies say
	// (platform/run: the listener serves on through the pause).
	if run.Draining(ctx) {
		return answer(errDraining), nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if name := req.GetService(); name != "" {
		p, ok := h.probes[name]
		if !ok {
			return nil, status.Error(codes.NotFound, "unknown service")
		}
		return answer(p(ctx)), nil
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
	for name := range h.probes {
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

// ServiceProbe probes a remote component through its own health service.
func ServiceProbe(client healthpb.HealthClient) Probe {
	return func(ctx context.Context) error {
		r, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return status.Error(codes.Unavailable, "not serving")
		}
		return nil
	}
}
