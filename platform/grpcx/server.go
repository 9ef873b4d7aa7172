// Package grpcx holds the gRPC plumbing every Moreid binary shares: the
// server interceptors (request id, recovery, error mapping, access log), the
// client dial options, and a health service whose answer is computed from
// live probes.
package grpcx

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/logging"
	"github.com/moreline/moreid/platform/run"
	"github.com/moreline/moreid/platform/telemetry"
)

// ServerOptions returns the options every Moreid gRPC server uses. The
// interceptors run in order: metrics, request id, access log, panic recovery, error
// mapping, then extra (for instance the API-key check of AuthService). tel
// records and traces the calls (nil: neither).
func ServerOptions(log *slog.Logger, tel *telemetry.Telemetry, extra ...grpc.UnaryServerInterceptor) []grpc.ServerOption {
	return append([]grpc.ServerOption{
		// Chained, not grpc.UnaryInterceptor: interceptors passed in other
		// options before these ones stay outermost.
		grpc.ChainUnaryInterceptor(UnaryChain(log, tel, extra...)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// Connections are recycled every few minutes so that clients
		// re-resolve DNS and spread onto replicas added by a scale-up.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: 5 * time.Minute, MaxConnectionAgeGrace: 30 * time.Second}),
		grpc.MaxRecvMsgSize(1 << 20),
		// A fixed pool of stream workers instead of a goroutine per call:
		// the profiles showed 7-10% of auth's CPU in growing fresh stacks.
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
	}, tel.GRPCServerOptions()...)
}

// UnaryChain is the server interceptor chain of ServerOptions as one
// interceptor, so that in-process calls (package inproc) run exactly the
// checks and mappings a network call does.
func UnaryChain(log *slog.Logger, tel *telemetry.Telemetry, extra ...grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	var chain []grpc.UnaryServerInterceptor
	if m := tel.UnaryServerInterceptor(); m != nil {
		chain = append(chain, m)
	}
	chain = append(chain,
		requestIDInterceptor,
		accessLogInterceptor(log),
		recoverInterceptor(log),
		errorInterceptor(log),
	)
	chain = append(chain, extra...)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return chain[0](ctx, req, info, chainFrom(chain, 1, info, handler))
	}
}

// chainFrom builds the handler that runs chain[i:] and then handler.
func chainFrom(chain []grpc.UnaryServerInterceptor, i int, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) grpc.UnaryHandler {
	if i == len(chain) {
		return handler
	}
	return func(ctx context.Context, req any) (any, error) {
		return chain[i](ctx, req, info, chainFrom(chain, i+1, info, handler))
	}
}

func requestIDInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	id := ""
	// The one key, not metadata.FromIncomingContext: that copies the whole
	// map on every call.
	if v := metadata.ValueFromIncomingContext(ctx, logging.MetadataKey); len(v) > 0 {
		id = v[0]
	}
	return next(logging.WithRequestID(ctx, logging.CleanRequestID(id)), req)
}

// accessLogInterceptor logs one line per call: method, outcome, latency.
// Successes are debug, client mistakes info, faults warn: the one ERROR line
// of a fault is errorInterceptor's, in the component where it originated,
// so one failure behind auth and the gateway is one ERROR line, not one per
// hop and per interceptor.
func accessLogInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := next(ctx, req)
		attrs := []any{
			"request_id", logging.RequestID(ctx),
			"method", info.FullMethod,
			"latency_ms", float64(time.Since(start).Microseconds()) / 1000,
		}
		if err == nil {
			// Successful internal calls are debug: the gateway already logs
			// every request at the edge with the same request id, and a
			// line per hop cost 7-9% of each service's CPU under load.
			log.Debug("rpc", append(attrs, "code", "OK")...)
			return resp, nil
		}
		st := status.Convert(err)
		attrs = append(attrs, "code", st.Code().String(), "error", string(apierr.FromStatus(st).Kind))
		if k := apierr.FromStatus(st).Kind; k == apierr.Internal || k == apierr.Unavailable {
			log.Warn("rpc", attrs...)
		} else {
			log.Info("rpc", attrs...)
		}
		return resp, err
	}
}

func recoverInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic", "request_id", logging.RequestID(ctx), "method", info.FullMethod,
					"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = apierr.ToStatus(apierr.New(apierr.Internal)).Err()
			}
		}()
		return next(ctx, req)
	}
}

// errorInterceptor is the one place where domain errors become gRPC
// statuses. The cause of a fault is logged here, at ERROR, and dropped from
// the answer; a fault a downstream Moreid service answered is only passed
// on (debug): that service logged it with its cause, and a second ERROR
// line per hop would count one failure several times.
func errorInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		resp, err := next(ctx, req)
		if err == nil {
			return resp, nil
		}
		if apierr.IsFault(err) {
			attrs := []any{"request_id", logging.RequestID(ctx), "method", info.FullMethod, "cause", err.Error()}
			if apierr.OriginatedHere(err) {
				log.Error("rpc failure", attrs...)
			} else {
				log.Debug("rpc failure passed on", attrs...)
			}
		}
		return nil, apierr.ToStatus(err).Err()
	}
}

// DialOptions are the client options for calls between Moreid components:
// plaintext (Security.DialOptions, passed to Dial after these, switches to
// mutual TLS), request id propagated, keepalive. Tracing is the caller's
// to add (Telemetry.GRPCDialOptions): a client outside the suite has none.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(propagateRequestID),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
	}
}

// Dial connects (lazily) to a Moreid component at target, e.g.
// "127.0.0.1:9091" or "dns:///user:9091" for client-side load balancing over
// every replica behind a headless Kubernetes Service.
func Dial(target string, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(target, append(DialOptions(), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	return conn, nil
}

func propagateRequestID(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if id := logging.RequestID(ctx); id != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, logging.MetadataKey, id)
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// Service is a component with a public (internal-network) face and an
// operator face, each registered on its own gRPC server.
type Service interface {
	Register(grpc.ServiceRegistrar)
	RegisterAdmin(grpc.ServiceRegistrar)
}

// Listeners builds a component's gRPC servers with ServerOptions — the
// public one at addr, whose chain ends with extra (e.g. auth's API-key
// check), and the admin one at adminAddr, which the gateway never maps —
// each with the transport sec gives it (mutual TLS, operators only on the
// admin one), and returns them as run units, public first. When sec names a
// health address for the component, a third, plaintext server there
// answers grpc.health.v1 alone (the public listener's answer). tel records
// and traces the calls of all of them.
func Listeners(log *slog.Logger, tel *telemetry.Telemetry, name, addr, adminAddr string, sec *Security, svc Service, extra ...grpc.UnaryServerInterceptor) ([]run.Unit, error) {
	publicCreds, err := sec.serverOption(name+" listener", addr, false)
	if err != nil {
		return nil, err
	}
	adminCreds, err := sec.serverOption(name+" admin listener", adminAddr, true)
	if err != nil {
		return nil, err
	}
	// Each server's callers are followed for its shutdown (run.GRPC).
	publicCallers, adminCallers := run.NewCallers(), run.NewCallers()
	public := grpc.NewServer(append(ServerOptions(log, tel, extra...), append(creds(publicCreds), grpc.StatsHandler(publicCallers))...)...)
	svc.Register(public)
	admin := grpc.NewServer(append(ServerOptions(log, tel), append(creds(adminCreds), grpc.StatsHandler(adminCallers))...)...)
	svc.RegisterAdmin(admin)
	publicUnit, err := run.GRPC(name, addr, public, publicCallers)
	if err != nil {
		return nil, err
	}
	// On an error the caller exits, which closes the listener opened first.
	adminUnit, err := run.GRPC(name+"-admin", adminAddr, admin, adminCallers)
	if err != nil {
		return nil, err
	}
	units := []run.Unit{publicUnit, adminUnit}
	if healthAddr := sec.health[name]; healthAddr != "" {
		healthCallers := run.NewCallers()
		health := grpc.NewServer(append(ServerOptions(log, tel), grpc.StatsHandler(healthCallers))...)
		svc.Register(healthOnly{health})
		u, err := run.GRPC(name+"-health", healthAddr, health, healthCallers)
		if err != nil {
			return nil, err
		}
		units = append(units, u)
	}
	return units, nil
}

func creds(o grpc.ServerOption) []grpc.ServerOption {
	if o == nil {
		return nil
	}
	return []grpc.ServerOption{o}
}

// healthOnly registers grpc.health.v1 and drops every other service, so
// that the plaintext health listener serves nothing else.
type healthOnly struct{ grpc.ServiceRegistrar }

func (h healthOnly) RegisterService(desc *grpc.ServiceDesc, impl any) {
	if desc.ServiceName == healthpb.Health_ServiceDesc.ServiceName {
		h.ServiceRegistrar.RegisterService(desc, impl)
	}
}
