// Command moreid runs the whole suite in one process: user, apikey, auth and
// the gateway. The internal calls (gateway→auth, auth→user, auth→apikey) go
// in-process, through each callee's full interceptor chain (auth's API-key
// check included), with no network hop; every service still listens on its
// usual address (MOREID_*_ADDR and the admin addresses) for other callers
// and moreidctl. One metrics listener (MOREID_METRICS_ADDR, default
// 127.0.0.1:9100), one drain, one shutdown.
//
// In-process callers present a loopback peer address: keep loopback in
// MOREID_GATEWAY_CIDRS (the default) so that auth believes the client IP
// the in-process gateway forwards.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"google.golang.org/grpc"

	gatewayapp "github.com/moreline/moreid/gateway/app"
	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/grpcx/inproc"
	"github.com/moreline/moreid/platform/ipset"
	"github.com/moreline/moreid/platform/logging"
	"github.com/moreline/moreid/platform/run"
	"github.com/moreline/moreid/platform/telemetry"
	apikeyapp "github.com/moreline/moreid/services/apikey/app"
	authapp "github.com/moreline/moreid/services/auth/app"
	userapp "github.com/moreline/moreid/services/user/app"
)

func main() {
	log := logging.New("moreid")
	logging.Exit(log, serve(log))
}

type settings struct {
	user    userapp.Settings
	apikey  apikeyapp.Settings
	auth    authapp.Settings
	gateway gatewayapp.Settings
	metrics string
	pprof   bool
	sec     *grpcx.Security
}

func readSettings(r *config.Reader) (settings, error) {
	var s settings
	var err error
	if s.user, err = userapp.ReadSettings(r); err != nil {
		return s, err
	}
	if s.apikey, err = apikeyapp.ReadSettings(r); err != nil {
		return s, err
	}
	if s.auth, err = authapp.ReadSettings(r); err != nil {
		return s, err
	}
	if s.gateway, err = gatewayapp.ReadSettings(r); err != nil {
		return s, err
	}
	s.metrics = r.String("MOREID_METRICS_ADDR", telemetry.DefaultMetricsAddrs["gateway"])
	s.pprof = telemetry.Profiling(r)
	if err := r.Err(); err != nil {
		return s, err
	}
	s.sec, err = grpcx.ReadSecurity(r)
	return s, err
}

// listener is one gRPC server on its TCP address.
func serve(log *slog.Logger) error {
	cfg, err := readSettings(config.FromEnv())
	if err != nil {
		return err
	}
	// Every component reads the same MOREID_DRAIN_TIMEOUT.
	sd, err := run.NewShutdown(config.FromEnv(), cfg.gateway.Drain)
	if err != nil {
		return err
	}
	ctx, stop := run.SignalContext()
	defer stop()

	shutdown, err := telemetry.SetupTracing(ctx, "moreid")
	if err != nil {
		return err
	}
	defer shutdown(context.Background())
	metrics, err := telemetry.MetricsServer(cfg.metrics, cfg.pprof)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}

	// Each component logs under its own name, as it does on its own.
	userLog, keysLog, authLog, gwLog := logging.New("user"), logging.New("apikey"), logging.New("auth"), logging.New("gateway")
	users, err := userapp.New(ctx, userLog, cfg.user)
	if err != nil {
		return err
	}
	defer users.Close()
	keys, err := apikeyapp.New(ctx, keysLog, cfg.apikey)
	if err != nil {
		return err
	}
	defer keys.Close()

	// The in-process servers run the same chain as the network ones.
	userIn := inproc.NewServer(grpcx.UnaryChain(userLog))
	users.Register(userIn)
	keysIn := inproc.NewServer(grpcx.UnaryChain(keysLog))
	keys.Register(keysIn)

	auth, err := authapp.New(ctx, authLog, cfg.auth, userIn.Conn(), keysIn.Conn())
	if err != nil {
		return err
	}
	defer auth.Close()
	authIn := inproc.NewServer(grpcx.UnaryChain(authLog, auth.KeyInterceptors()...))
	auth.Register(authIn)

	httpSrv, err := gatewayapp.NewServer(authIn.Conn(), cfg.gateway, gwLog)
	if err != nil {
		return err
	}

	// On an error the process exits, closing whatever listened already.
	httpUnit, err := run.HTTP("http", cfg.gateway.HTTPAddr, httpSrv)
	if err != nil {
		return err
	}
	// Stopped in this order: callers before callees. The gateway's
	// requests call auth, and other processes may call these listeners
	// too (a gateway elsewhere, moreidctl): auth finishes their calls
	// while user and apikey still serve it, in process and on the network.
	units := []run.Unit{httpUnit}
	for _, c := range []struct {
		name, addr, admin string
		log               *slog.Logger
		svc               grpcx.Service
		extra             []grpc.UnaryServerInterceptor
	}{
		{"auth", cfg.auth.Addr, cfg.auth.AdminAddr, authLog, auth, auth.KeyInterceptors()},
		{"user", cfg.user.Addr, cfg.user.AdminAddr, userLog, users, nil},
		{"apikey", cfg.apikey.Addr, cfg.apikey.AdminAddr, keysLog, keys, nil},
	} {
		listeners, err := grpcx.Listeners(c.log, c.name, c.addr, c.admin, cfg.sec, c.svc, c.extra...)
		if err != nil {
			return err
		}
		units = append(units, listeners...)
	}
	// The audit trails come after the listeners: stopped last, they flush
	// what the final calls recorded.
	units = append(units, users.Units()...)
	units = append(units, keys.Units()...)
	units = append(units, auth.Units()...)
	units = append(units, metrics)

	log.Info("starting", "http", cfg.gateway.HTTPAddr, "auth", cfg.auth.Addr, "user", cfg.user.Addr,
		"apikey", cfg.apikey.Addr, "metrics", cfg.metrics, "trusted_proxies", strings.Join(ipset.Strings(cfg.gateway.Trusted), ","))
	return run.Group(ctx, log, sd, units...)
}
