// Command user serves the user directory: UserService on the internal
// listener, UserAdminService on the admin listener, both with gRPC health.
// With -migrate-only it applies the database migrations and exits, for a
// Kubernetes migration Job. The wiring lives in package app.
package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/logging"
	"github.com/moreline/moreid/platform/run"
	"github.com/moreline/moreid/platform/telemetry"
	"github.com/moreline/moreid/services/user/app"
)

func main() {
	migrateOnly := flag.Bool("migrate-only", false, "apply the database migrations and exit")
	flag.Parse()
	log := logging.New("user")
	logging.Exit(log, serve(log, *migrateOnly))
}

func serve(log *slog.Logger, migrateOnly bool) error {
	cfg, err := app.ReadSettings(config.FromEnv())
	if err != nil {
		return err
	}
	sec, err := grpcx.ReadSecurity(config.FromEnv())
	if err != nil {
		return err
	}
	shutdown, err := run.NewShutdown(config.FromEnv(), cfg.Drain)
	if err != nil {
		return err
	}
	ctx, stop := run.SignalContext()
	defer stop()

	tel, err := telemetry.Setup(ctx, config.FromEnv(), "user")
	if err != nil {
		return err
	}
	defer tel.Close(context.Background())

	a, err := app.New(ctx, log, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	if migrateOnly {
		log.Info("migrations applied")
		return nil
	}

	listeners, err := grpcx.Listeners(log, "user", cfg.Addr, cfg.AdminAddr, sec, a)
	if err != nil {
		return err
	}
	// The trail comes after the listeners: stopped last, it flushes what
	// their final calls recorded.
	units := append(listeners, a.Units()...)
	return run.Group(ctx, log, shutdown, append(units, tel.Metrics)...)
}
