// Command apikey serves the API-key service: APIKeyService (with health) on
// the internal listener and APIKeyAdminService (with health) on the admin
// listener, over Postgres; admin changes go to the audit trail. The wiring
// lives in package app.
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
	"github.com/moreline/moreid/services/apikey/app"
)

func main() {
	migrateOnly := flag.Bool("migrate-only", false, "apply database migrations and exit")
	flag.Parse()
	log := logging.New("apikey")
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

	tel, err := telemetry.Setup(ctx, config.FromEnv(), "apikey")
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

	listeners, err := grpcx.Listeners(log, "apikey", cfg.Addr, cfg.AdminAddr, sec, a)
	if err != nil {
		return err
	}
	// The trail comes after the listeners: stopped last, it flushes what
	// their final calls recorded.
	units := append(listeners, a.Units()...)
	return run.Group(ctx, log, shutdown, append(units, tel.Metrics)...)
}
