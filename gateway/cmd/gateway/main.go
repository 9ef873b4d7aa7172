// Command gateway serves Moreid's REST surface (/api/oauth/...) in front of
// AuthService. Wiring only: the behaviour lives in internal/gateway, the
// server's construction in package app.
package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/moreline/moreid/gateway/app"
	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/ipset"
	"github.com/moreline/moreid/platform/logging"
	"github.com/moreline/moreid/platform/run"
	"github.com/moreline/moreid/platform/telemetry"
)

func main() {
	log := logging.New("gateway")
	logging.Exit(log, serve(log))
}

func serve(log *slog.Logger) error {
	env := config.FromEnv()
	cfg, err := app.ReadSettings(env)
	if err != nil {
		return err
	}
	sec, err := grpcx.ReadSecurity(env)
	if err != nil {
		return err
	}
	shutdown, err := run.NewShutdown(env, cfg.Drain)
	if err != nil {
		return err
	}
	ctx, stop := run.SignalContext()
	defer stop()
	tel, err := telemetry.Setup(ctx, env, "gateway")
	if err != nil {
		return err
	}
	defer tel.Close(context.Background())

	conn, err := grpcx.Dial(cfg.AuthAddr, sec.DialOptions()...)
	if err != nil {
		return err
	}
	defer conn.Close()

	srv, err := app.NewServer(conn, cfg, log)
	if err != nil {
		return err
	}
	unit, err := run.HTTP("http", cfg.HTTPAddr, srv)
	if err != nil {
		return err
	}
	log.Info("starting", "http", cfg.HTTPAddr, "auth", cfg.AuthAddr, "trusted_proxies", strings.Join(ipset.Strings(cfg.Trusted), ","))
	return run.Group(ctx, log, shutdown, unit, tel.Metrics)
}
