// Command gateway serves Moreid's REST surface (/api/oauth/...) in front of
// AuthService. Wiring only: the behaviour lives in internal/gateway.
package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/moreline/moreid/gateway/internal/gateway"
	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/ipset"
	"github.com/moreline/moreid/platform/logging"
	"github.com/moreline/moreid/platform/run"
	"github.com/moreline/moreid/platform/telemetry"
)

func main() {
	log := logging.New("gateway")
	if err := serve(log); err != nil {
		log.Error("gateway stopped", "error", err.Error())
		os.Exit(1)
	}
}

func serve(log *slog.Logger) error {
	env := config.FromEnv()
	httpAddr := env.String("MOREID_HTTP_ADDR", ":8080")
	authAddr := env.String("MOREID_AUTH_ADDR", "127.0.0.1:9090")
	trusted := env.Prefixes("MOREID_TRUSTED_PROXIES", nil)
	drain := env.Duration("MOREID_DRAIN_TIMEOUT", 10*time.Second)
	if err := env.Err(); err != nil {
		return err
	}
	ctx, stop := run.SignalContext()
	defer stop()
	tel, err := telemetry.Setup(ctx, env, "gateway")
	if err != nil {
		return err
	}
	defer tel.Close(context.Background())

	conn, err := grpcx.Dial(authAddr)
	if err != nil {
		return err
	}
	defer conn.Close()

	handler, err := gateway.New(conn, trusted, log, grpcx.ServiceProbe(healthpb.NewHealthClient(conn)))
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           telemetry.HTTPHandler(handler, "gateway"),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		// Longer than the gateway's upstream timeout, so a slow backend
		// still gets its 503 written.
		WriteTimeout:   gateway.UpstreamTimeout + 5*time.Second,
		IdleTimeout:    90 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	unit, err := run.HTTP("http", httpAddr, srv)
	if err != nil {
		return err
	}
	log.Info("starting", "http", httpAddr, "auth", authAddr, "trusted_proxies", strings.Join(ipset.Strings(trusted), ","))
	return run.Group(ctx, log, drain, unit, tel.Metrics)
}
